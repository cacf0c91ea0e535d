"""One webhook POST to a checked destination: to its IP (no second DNS lookup), with the URL's
host in the Host header and as the TLS name (SNI and certificate check), no redirects, no proxy
from the environment, the answer's body never read, and the whole attempt bounded in time."""

from __future__ import annotations

import socket
import ssl
import threading
from functools import cache
from typing import Any

import httpx

from gsv_service.webhook_targets import Target


class _Deadline:
    """Shuts the attempt's socket down when the attempt's time is up: httpx's timeouts are per
    read, so a receiver that drips its answer a byte at a time would otherwise hold on for hours."""

    def __init__(self, seconds: float):
        self.sock: socket.socket | None = None
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            self.sock = info["return_value"].get_extra_info("socket")
            if self.expired:  # connected just after the time was up
                self._expire()

    def _expire(self) -> None:
        self.expired = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


@cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every attempt (making one loads the CA bundle: ~0.2 s)."""
    return httpx.create_ssl_context()


def post(target: Target, body: bytes, headers: dict[str, str], timeout_s: float) -> int | None:
    """The HTTP status code of the answer, or None when no answer came (whatever the reason)."""
    url = httpx.URL(target.url)
    with _Deadline(timeout_s) as deadline, \
            httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False,
                         verify=_tls()) as client:
        extensions: dict[str, Any] = {"trace": deadline.trace}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        request = client.build_request("POST", url.copy_with(host=target.ip), content=body,
                                       headers={**headers, "Host": url.netloc.decode("ascii")},
                                       extensions=extensions)
        try:
            answer = client.send(request, stream=True)
        except (httpx.HTTPError, OSError):
            return None
        answer.close()  # its body is never read
        return None if deadline.expired else answer.status_code
