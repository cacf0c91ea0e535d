"""The task event log: reading it in order (SSE, WebSocket) and appending batches of log lines.

Every event is inserted by `emit`: state and progress events by lifecycle.py in the same
transaction as the change they describe, log lines in batches by running steps, webhook outcomes
by the deliverer.
"""

from __future__ import annotations

from typing import Any

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import and_, func, insert, select
from sqlalchemy.engine import Connection, Engine

from gsv_service.models import Event, table_of, utcnow
from gsv_service.records import EventRecord
from gsv_service.store import event_record

_E = table_of(Event)
MAX_LINE_CHARS = 2000
MAX_LINES_PER_BATCH = 200


def emit(c: Connection, task_id: str, run_id: str | None, type_: str, data: dict[str, Any]) -> None:
    """Append an event in the caller's transaction: it exists exactly when the change does."""
    c.execute(insert(_E).values(task_id=task_id, run_id=run_id, type=type_, data=data, created_at=utcnow()))


class EventLog:
    def __init__(self, db: Engine):
        self.db = db

    def since(self, task_id: str | None, after_id: int, limit: int = 500, run_id: str | None = None,
              types: tuple[str, ...] | None = None) -> list[EventRecord]:
        """Events after `after_id` of one task (or of every task: task_id None), oldest first."""
        where = [_E.c.id > after_id] + ([_E.c.task_id == task_id] if task_id else [])
        where += ([_E.c.run_id == run_id] if run_id else []) + ([_E.c.type.in_(types)] if types else [])
        q = (select(_E.c.id, _E.c.task_id, _E.c.run_id, _E.c.type, _E.c.data, _E.c.created_at)
             .where(and_(*where)).order_by(_E.c.id).limit(limit))
        with self.db.connect() as c:
            return [event_record(m) for m in c.execute(q).mappings()]

    def append_log_lines(self, task_id: str, run_id: str, step: str, lines: list[str]) -> None:
        """One event per batch; a flood keeps its last lines and says how many it skipped."""
        if not lines:
            return
        skipped = max(0, len(lines) - MAX_LINES_PER_BATCH)
        kept = [ln[:MAX_LINE_CHARS] for ln in lines[-MAX_LINES_PER_BATCH:]]
        with self.db.begin() as c:
            emit(c, task_id, run_id, "log", {"step": step, "lines": kept, "skipped": skipped})

    def last_id(self, task_id: str | None) -> int:
        q = select(func.max(_E.c.id))
        with self.db.connect() as c:
            return c.execute(q.where(_E.c.task_id == task_id) if task_id else q).scalar() or 0

    async def follow(self, task_id: str | None, after_id: int, is_done: Callable[[], Awaitable[bool]],
                     poll_s: float = 0.25, run_id: str | None = None,
                     types: tuple[str, ...] | None = None) -> AsyncIterator[EventRecord]:
        """Events after `after_id`, as they come, until is_done() says the client is gone."""
        last = after_id
        while not await is_done():
            batch = await asyncio.to_thread(self.since, task_id, last, 500, run_id, types)
            for ev in batch:
                last = ev.id
                yield ev
            if len(batch) < 500:
                await asyncio.sleep(poll_s)
