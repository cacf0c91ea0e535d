"""Who is calling: the key behind a request (or nobody, when no key exists), and what its scope allows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from starlette.requests import HTTPConnection


class Scope(str, Enum):
    """read < run < admin. read: GET only; run: everything on its own tasks; admin: every task."""

    read = "read"
    run = "run"
    admin = "admin"


@dataclass(frozen=True)
class Principal:
    key_id: str | None      # None: the service has no keys (open on loopback)
    name: str
    scope: Scope
    via: str                # "header" | "cookie" | "open"

    @property
    def sees_all(self) -> bool:
        """Admin keys, and everyone while no key exists, see every task."""
        return self.key_id is None or self.scope is Scope.admin

    def owner_filter(self) -> str | None:
        """The owner a task list is limited to; None: no limit."""
        return None if self.sees_all else self.key_id


OPEN = Principal(key_id=None, name="(no keys configured)", scope=Scope.admin, via="open")
SCOPE_KEY = "gsv.principal"  # where the middleware leaves the principal in the ASGI scope


def principal_of(conn: HTTPConnection) -> Principal | None:
    """The caller, as the auth middleware found it; None: anonymous on an open path (health)."""
    return conn.scope.get(SCOPE_KEY)
