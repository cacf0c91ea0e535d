"""The one check every HTTP request and WebSocket handshake passes: which key (if any), whether its
scope allows the method, the cross-site rules (csrf.py), and the per-key stream limit.

While no active key exists the service is open (it refuses to bind beyond loopback then, see
bind.py) and every caller is OPEN; the cross-site rules hold all the same.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gsv_service.auth import csrf
from gsv_service.auth.keys import MISS, KeyStore
from gsv_service.auth.principal import OPEN, SCOPE_KEY, Principal
from gsv_service.auth.principal import Scope as KeyScope
from gsv_service.settings import Settings

HOW = ("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' (the page asks for one "
       "and keeps it in the gsv_key cookie); an admin creates keys with: python -m gsv_service keys "
       "create --name NAME --scope read|run|admin")
# Paths that need no key: the page and its files, the API documentation, health, and signing in.
_OPEN_PATHS = ("/api/v1/health", "/api/v1/session")
_STREAM = re.compile(r"^/api/v1/(events|task/[^/]+/(events|ws))/?$")
_LOGS = re.compile(r"^/api/v1/task/[^/]+/logs/?$")
COOKIE = "gsv_key"


class _Refusal(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def is_stream(scope: Scope) -> bool:
    path = scope["path"]
    if scope["type"] == "websocket" or _STREAM.match(path):
        return True
    if _LOGS.match(path):
        follow = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("follow", [""])[-1]
        return follow.lower() in ("1", "true", "yes", "on")
    return False


def sent_key(headers: Headers) -> tuple[str | None, str]:
    """The key in the request and how it came: header (Authorization or X-API-Key) or cookie."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip(), "header"
    if headers.get("x-api-key", "").strip():
        return headers["x-api-key"].strip(), "header"
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value, "cookie"
    return None, "none"


class AuthMiddleware:
    def __init__(self, app: ASGIApp, keys: KeyStore, settings: Settings):
        self.app, self.keys, self.settings = app, keys, settings
        self.origins = settings.cors_origin_list
        self._offload = keys.engine.dialect.name != "sqlite"  # a network database: off the event loop
        self.streams: dict[str, int] = defaultdict(int)     # key id -> open streams in this process

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._principal(scope)
        except _Refusal as r:
            await self._refuse(scope, receive, send, r)
            return
        scope[SCOPE_KEY] = principal
        if principal is None or principal.key_id is None or not is_stream(scope):
            await self.app(scope, receive, send)
            return
        await self._stream(principal, scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal | None:
        """The caller, or None (anonymous on an open path); raises _Refusal."""
        headers, method = Headers(scope=scope), scope.get("method", "GET")
        key, via = sent_key(headers)
        self._check_origin(scope, headers, method, via)
        if not await self._call(self.keys.any_active):
            principal: Principal | None = OPEN
        else:
            principal = await self._call(self.keys.principal, key, via) if key else None
        open_path = not scope["path"].startswith("/api/") or scope["path"].rstrip("/") in _OPEN_PATHS
        if principal is None:
            if open_path:
                return None
            raise _Refusal(401, ("the API key sent is unknown or revoked; " if key else "an API key is "
                                 "required; ") + HOW)
        if scope["path"].rstrip("/") not in _OPEN_PATHS:
            self._check_scope(principal, method)
        return principal

    def _check_origin(self, scope: Scope, headers: Headers, method: str, via: str) -> None:
        need_type = via == "cookie"
        problem = csrf.content_type_problem(method, headers, need_type) if scope["type"] == "http" else None
        if problem:
            raise _Refusal(415, problem)
        if via != "header" and (scope["type"] == "websocket" or method in csrf.STATE_CHANGING):
            problem = csrf.cross_site_problem(headers, self.origins)
            if problem:
                raise _Refusal(403, problem)

    @staticmethod
    def _check_scope(p: Principal, method: str) -> None:
        if p.scope is KeyScope.read and method not in ("GET", "HEAD", "OPTIONS"):
            raise _Refusal(403, f"key {p.name!r} has scope read: it may only read (GET); {method} "
                                "needs a key with scope run or admin")

    async def _stream(self, p: Principal, scope: Scope, receive: Receive, send: Send) -> None:
        # One event loop per process: the count needs no lock; it is per process (and per worker).
        limit = self.settings.max_streams_per_key
        key_id = p.key_id
        assert key_id is not None  # __call__ streams only callers with a key
        if self.streams[key_id] >= limit:
            await self._refuse(scope, receive, send, _Refusal(429, (
                f"key {p.name!r} already has {limit} event or log streams open (GSV_MAX_STREAMS_PER_KEY); "
                "close one, or follow every task at once with GET /api/v1/events")))
            return
        self.streams[key_id] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.streams[key_id] -= 1

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self._offload:
            return fn(*args)
        hit = fn(*args, cached_only=True)
        return hit if hit is not MISS else await asyncio.to_thread(fn, *args)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, r: _Refusal) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if r.status == 401 else {}
        response = JSONResponse({"detail": r.detail}, status_code=r.status, headers=headers)
        if scope["type"] == "http":
            await response(scope, receive, send)
        elif "websocket.http.response" in scope.get("extensions", {}):
            await response(scope, receive, send)  # Starlette sends it as the handshake's denial answer
        else:
            await send({"type": "websocket.close", "code": 4000 + r.status, "reason": r.detail[:120]})
