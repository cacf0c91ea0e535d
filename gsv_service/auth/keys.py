"""The api_keys table: create (the key is returned once), list, revoke, and the lookups the
request check uses (cached a few seconds, so a revoke or a new key counts within KEY_CACHE_S)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal, overload

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Engine, RowMapping

from gsv_service.auth.principal import Principal, Scope
from gsv_service.db import row
from gsv_service.models import ApiKey, table_of, utcnow

_K = table_of(ApiKey)
KEY_PREFIX = "gsv_"
PREFIX_CHARS = 12          # "gsv_" and 8 characters of the key: enough to tell keys apart
KEY_CACHE_S = 2.0
NAME_MAX = 100


class _Miss(Enum):
    MISS = "MISS"


MISS: Final = _Miss.MISS  # a cached_only lookup that would need the database


def hash_key(key: str) -> str:
    # 256 random bits per key: a fast hash is safe (nothing to brute-force), and a lookup is one index read.
    return hashlib.sha256(key.encode()).hexdigest()


def _key_row(m: RowMapping) -> dict[str, Any]:
    d = row(m)
    assert d is not None  # row() gives None only for None
    return d


@dataclass(frozen=True)
class NewKey:
    id: str
    name: str
    scope: Scope
    key: str  # shown once, never stored


class KeyProblem(Exception):
    """A key operation a person must fix (duplicate name, unknown key)."""


class KeyStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._active: tuple[float, bool] | None = None
        self._by_hash: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def create(self, name: str, scope: Scope) -> NewKey:
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise KeyProblem(f"a key name is 1 to {NAME_MAX} characters")
        if self._active_named(name):
            raise KeyProblem(f"an active key is already named {name!r}; revoke it first or pick another name")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = uuid.uuid4().hex[:12]
        with self.engine.begin() as c:
            c.execute(insert(_K).values(id=key_id, name=name, scope=scope.value, prefix=key[:PREFIX_CHARS],
                                        key_hash=hash_key(key), created_at=utcnow(), revoked_at=None))
        self._forget()
        return NewKey(key_id, name, scope, key)

    def list(self, include_revoked: bool = True) -> list[dict[str, Any]]:
        q = select(_K.c.id, _K.c.name, _K.c.scope, _K.c.prefix, _K.c.created_at, _K.c.revoked_at)
        if not include_revoked:
            q = q.where(_K.c.revoked_at.is_(None))
        with self.engine.connect() as c:
            return [_key_row(m) for m in c.execute(q.order_by(_K.c.created_at)).mappings()]

    def revoke(self, id_or_name: str) -> dict[str, Any]:
        """Revoke the active key with this id (or name); the revoked row stays, for the record."""
        cond = _K.c.revoked_at.is_(None) & or_(_K.c.id == id_or_name, _K.c.name == id_or_name)
        with self.engine.begin() as c:
            found = [_key_row(m) for m in c.execute(select(_K).where(cond)).mappings()]
            if len(found) != 1:
                raise KeyProblem(f"no active key with id or name {id_or_name!r}; see `keys list`"
                                if not found else f"{id_or_name!r} names several keys; revoke by id")
            c.execute(update(_K).where(_K.c.id == found[0]["id"]).values(revoked_at=utcnow()))
        self._forget()
        return found[0]

    def _active_named(self, name: str) -> bool:
        with self.engine.connect() as c:
            q = select(func.count()).select_from(_K).where(_K.c.name == name, _K.c.revoked_at.is_(None))
            return bool(c.execute(q).scalar())

    # ---------- lookups for the request check (cached) ----------
    @overload
    def any_active(self, cached_only: Literal[False] = False) -> bool: ...
    @overload
    def any_active(self, cached_only: bool) -> bool | _Miss: ...

    def any_active(self, cached_only: bool = False) -> bool | _Miss:
        """Whether an active key exists (MISS: cached_only and the cache is stale)."""
        now = time.monotonic()
        cached = self._active
        if cached and now - cached[0] < KEY_CACHE_S:
            return cached[1]
        if cached_only:
            return MISS
        with self.engine.connect() as c:
            q = select(_K.c.id).where(_K.c.revoked_at.is_(None)).limit(1)
            found = c.execute(q).first() is not None
        self._active = (now, found)
        return found

    @overload
    def principal(self, key: str, via: str, cached_only: Literal[False] = False) -> Principal | None: ...
    @overload
    def principal(self, key: str, via: str, cached_only: bool) -> Principal | None | _Miss: ...

    def principal(self, key: str, via: str, cached_only: bool = False) -> Principal | None | _Miss:
        """The active key's principal, or None for an unknown or revoked key (MISS: not cached)."""
        digest, now = hash_key(key), time.monotonic()
        cached = self._by_hash.get(digest)
        if cached is None or now - cached[0] >= KEY_CACHE_S:
            if cached_only:
                return MISS
            with self.engine.connect() as c:
                m = c.execute(select(_K.c.id, _K.c.name, _K.c.scope).where(
                    _K.c.key_hash == digest, _K.c.revoked_at.is_(None))).mappings().first()
            cached = (now, dict(m) if m else None)
            with self._lock:
                if len(self._by_hash) > 10_000:  # unknown keys sent in bulk must not grow it forever
                    self._by_hash.clear()
                self._by_hash[digest] = cached
        k = cached[1]
        return Principal(k["id"], k["name"], Scope(k["scope"]), via) if k else None

    def _forget(self) -> None:
        self._active = None
        self._by_hash.clear()


def describe(k: dict[str, Any]) -> str:
    state = f"revoked {k['revoked_at']:%Y-%m-%d %H:%M}" if isinstance(k["revoked_at"], datetime) else "active"
    return f"{k['id']}  {k['name']:<20} {k['scope']:<6} {k['prefix']}…  {k['created_at']:%Y-%m-%d %H:%M}  {state}"
