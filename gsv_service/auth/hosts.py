"""Trusted Host headers (against DNS rebinding: a name the attacker controls, resolved to this
machine, arrives with that name as its Host), answered with a JSON detail a person can act on."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send


def host_name(header: str | None) -> str | None:
    """The Host header without its port; IPv6 literals keep their brackets."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[:end + 1] if end > 0 else None
    return header.split(":", 1)[0] or None


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's TrustedHostMiddleware patterns ("*", "*.example.com"), answering 400 with JSON."""

    def _trusted(self, host: str | None) -> bool:
        if host is None:
            return False
        return any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in self.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = host_name(Headers(scope=scope).get("host"))
        if self._trusted(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "untrusted Host header"})
            return
        shown = (host or "(none)")[:100]
        await JSONResponse({"detail": f"Host {shown!r} is not trusted; add it to GSV_TRUSTED_HOSTS (comma "
                                      "list, \"*\" for any) if this service is meant to answer to it"},
                           status_code=400)(scope, receive, send)
