"""Where a webhook may go: the URL's host is resolved once, every address it resolves to is checked,
and the delivery connects to the address that was checked (no second lookup: no DNS rebinding).

Refused unless GSV_WEBHOOK_ALLOW names them: loopback, private (RFC 1918, fc00::/7, 100.64/10),
link-local (169.254/16 with the cloud metadata address, fe80::/10), unspecified, multicast,
reserved and documentation ranges, and this machine's own addresses. The service's own listening
port is refused even when allow-listed: a webhook to itself is never useful, only an attack.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import psutil

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_getaddrinfo = socket.getaddrinfo  # module level, so tests can stand in for DNS


class WebhookRefused(ValueError):
    """The URL is not a destination the service may call; the message says why and what to do."""


class Unresolvable(WebhookRefused):
    """The host name did not resolve (may be temporary at delivery time)."""


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `ip`, present `host` (Host header, TLS name)."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str

    @property
    def destination(self) -> str:
        """What deliveries are serialised on: one request in flight per host and port."""
        return f"{self.host}:{self.port}"


def _embedded_v4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: IP) -> str | None:
    """Why an address is not public ("a loopback address"), or None when it is."""
    inner = _embedded_v4(ip)
    if inner is not None and _kind(inner):
        return _kind(inner)
    for name, hit in (("a loopback address", ip.is_loopback),
                      ("a link-local address (where cloud metadata lives)", ip.is_link_local),
                      ("the unspecified address", ip.is_unspecified), ("a multicast address", ip.is_multicast),
                      ("a private address", ip.is_private), ("a reserved address", ip.is_reserved),
                      ("not a public address", not ip.is_global)):
        if hit:
            return name
    return None


def _is_local(ip: IP) -> bool:
    """An address of this machine: binding to it succeeds (no list of interfaces needed)."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((str(ip), 0))
        return True
    except OSError:
        return False


class OwnPorts:
    """The TCP ports this process listens on (uvicorn's socket is inherited by each worker)."""

    def __init__(self, ttl_s: float = 5.0, fixed: set[int] | None = None):
        self.ttl_s = ttl_s
        self.fixed = fixed  # tests that run receivers in their own process name the service's ports
        self._at = -1e9
        self._ports: set[int] = set()

    def get(self) -> set[int]:
        if self.fixed is not None:
            return self.fixed
        if time.monotonic() - self._at > self.ttl_s:
            try:
                conns = psutil.Process().net_connections(kind="inet")
                self._ports = {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}
            except psutil.Error:
                pass  # keep the last known ports
            self._at = time.monotonic()
        return self._ports


class TargetPolicy:
    """Checks webhook URLs against the rules above and the allow-list (hosts, IPs or CIDRs)."""

    def __init__(self, allow: str = "", own_ports: OwnPorts | None = None):
        self.allow_hosts: set[str] = set()
        self.allow_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (e.strip() for e in allow.split(",")):
            if not entry:
                continue
            try:
                self.allow_nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.allow_hosts.add(entry.lower().rstrip("."))
        self.own_ports = own_ports or OwnPorts()

    def check(self, url: str) -> Target:
        """The checked destination of `url`, or WebhookRefused with a message a person can act on."""
        scheme, host, port = split_url(url)
        addrs = self._resolve(host, port)
        for ip in addrs:
            self._check_address(host, port, ip)
        return Target(url=url, scheme=scheme, host=host, port=port, ip=str(addrs[0]))

    def _resolve(self, host: str, port: int) -> list[IP]:
        try:
            literal = ipaddress.ip_address(host)
            return [literal]
        except ValueError:
            pass
        try:
            infos = _getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise Unresolvable(f"webhook_url: host {host!r} does not resolve; use a host name that "
                               "resolves in DNS from the service's machine") from None
        addrs: list[IP] = []
        for info in infos:
            # typeshed allows an int here (a family other than AF_INET/AF_INET6); these are IP hosts
            ip = ipaddress.ip_address(cast(str, info[4][0]).split("%", 1)[0])
            if ip not in addrs:
                addrs.append(ip)
        if not addrs:
            raise Unresolvable(f"webhook_url: host {host!r} resolves to no address")
        return addrs

    def _allowed(self, host: str, ip: IP) -> bool:
        return host in self.allow_hosts or any(ip in net for net in self.allow_nets if net.version == ip.version)

    def _check_address(self, host: str, port: int, ip: IP) -> None:
        local = ip.is_loopback or ip.is_unspecified or _is_local(ip)
        if local and port in self.own_ports.get():
            raise WebhookRefused(f"webhook_url: {host}:{port} is this service itself; a webhook must "
                                 "point at another service")
        if self._allowed(host, ip):
            return
        kind = _kind(ip) or ("an address of this machine" if local else None)
        if kind is None:
            return
        where = host if host == str(ip) else f"{host} (resolves to {ip})"
        raise WebhookRefused(f"webhook_url: {where} is {kind}; the service does not call such addresses. "
                             "Use a public address, or have the operator add it to GSV_WEBHOOK_ALLOW "
                             "(hosts, IPs or CIDRs)")


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, lower-case host without brackets."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookRefused("webhook_url: not a valid URL (a bad port or bracketed host); use "
                             "http(s)://host[:port]/path") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused("webhook_url must be an http:// or https:// URL")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookRefused("webhook_url has no host; use http(s)://host[:port]/path")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)
