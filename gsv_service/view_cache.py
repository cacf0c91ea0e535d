"""Answers kept per process until the database changes, with an ETag for pollers.

Clients poll GET task many times a second while nothing changes. SQLite says cheaply whether
anything changed: `PRAGMA data_version` on a connection of our own moves whenever any other
connection commits (this process's pool and other processes alike), so an answer built at version
v is still the truth while the version reads v. Other databases have no such counter here: every
answer is built afresh (an ETag still spares the client the body).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.engine import Engine


class StoreVersion:
    """A number that changes whenever the store may have changed; None when it cannot tell."""

    def __init__(self, db: Engine):
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        path = db.url.database
        if db.dialect.name == "sqlite" and path and path != ":memory:":
            # Its own connection, outside the pool: data_version ignores this connection's own
            # commits, and it makes none.
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    @property
    def available(self) -> bool:
        return self._conn is not None

    def read(self) -> int | None:
        if self._conn is None:
            return None
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class ViewCache:
    """key -> (version, expiry, body, etag), least recently used out first."""

    def __init__(self, version: StoreVersion, size: int = 1024,
                 clock: Callable[[], float] = time.monotonic):
        self.version = version
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[int, float, bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, key: str) -> tuple[bytes, str] | None:
        """The answer for `key` if the store has not changed since it was built (and it is not
        older than the max_age it was built with)."""
        v = self.version.read()
        if v is None:
            return None
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0] != v or self._clock() >= hit[1]:
                return None
            self._entries.move_to_end(key)
            return hit[2], hit[3]

    def build(self, key: str, make: Callable[[], bytes], max_age: float = float("inf")) -> tuple[bytes, str]:
        """Build the answer and keep it under the version read before building: a write that
        lands meanwhile moves the version, so the next read builds again. max_age bounds how long
        a part the database does not hold (a folder's size) may be served from here."""
        v = self.version.read()
        body = make()
        etag = etag_of(body)
        if v is not None:
            with self._lock:
                self._entries[key] = (v, self._clock() + max_age, body, etag)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return body, etag
