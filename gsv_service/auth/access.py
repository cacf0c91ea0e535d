"""Task ownership and per-key task limits, in one place.

A task belongs to the key that created it. Other keys get the same 404 as for a task that does not
exist (and do not see it in lists or in GET /events); admin keys see every task. Tasks created while
no key existed (owner NULL) are visible to admin keys only once keys exist.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, WebSocketException
from starlette.requests import HTTPConnection

from gsv_service.auth.principal import OPEN, Principal, principal_of
from gsv_service.errors import NotFound, ServiceError

if TYPE_CHECKING:
    from gsv_service.store import Store
    from gsv_service.tasks import TaskService


class TooManyTasks(ServiceError):
    status_code = 429


def current_principal(conn: HTTPConnection) -> Principal:
    # The middleware refuses keyless calls to every path that declares this; OPEN covers an app
    # built without the middleware (unit tests of single routers).
    return principal_of(conn) or OPEN


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def task_access(conn: HTTPConnection) -> None:
    """Every route with a {task_id}: a key that does not own the task gets the 404 of a missing
    task. Applied to all routers in app.create_app."""
    task_id = conn.path_params.get("task_id")
    p = principal_of(conn)
    if not task_id or p is None or p.sees_all:
        return
    store: Store = conn.app.state.service.store
    exists, owner = (store.task_owner(task_id) if store.backend == "sqlite"
                     else await asyncio.to_thread(store.task_owner, task_id))
    if exists and owner == p.key_id:
        return
    detail = f"task {task_id[:80]!r} not found; list tasks with GET /api/v1/tasks"
    if conn.scope["type"] == "websocket":
        raise WebSocketException(code=4404, reason=detail[:120])
    raise NotFound(detail)


TaskAccess = Depends(task_access)


def check_task_quota(svc: TaskService, p: Principal) -> None:
    """GSV_MAX_TASKS_PER_KEY: a key's tasks (deleted ones do not count). Checked before creating;
    concurrent creations by one key may pass it by a few, which is what a quota needs."""
    if p.key_id is None:
        return
    limit = svc.settings.max_tasks_per_key
    _, total = svc.store.list_tasks(None, 1, 0, owner=p.key_id)
    if total >= limit:
        raise TooManyTasks(f"key {p.name!r} has {total} tasks, the limit (GSV_MAX_TASKS_PER_KEY={limit}); "
                           "delete tasks you no longer need (DELETE /api/v1/task/{task_id}) and create again")


class VisibleTasks:
    """For GET /events: whether a task's events may go to this caller (owners cached per stream)."""

    def __init__(self, store: Store, p: Principal):
        self.store, self.p = store, p
        self._known: dict[str, bool] = {}

    async def __call__(self, task_id: str) -> bool:
        if self.p.sees_all:
            return True
        if task_id not in self._known:
            if len(self._known) > 50_000:
                self._known.clear()
            _, owner = await asyncio.to_thread(self.store.task_owner, task_id)
            self._known[task_id] = owner is not None and owner == self.p.key_id
        return self._known[task_id]
