"""Event retention: the events table is compacted so that it does not grow without end.

A training run writes thousands of `progress` events and a `log` event per batch of log lines.
Once a task has finished (no active run or pipeline, not queued or running) and an event is older
than the retention period (GSV_EVENT_RETENTION_DAYS, 30 by default), those two kinds are deleted:
what they said lives on elsewhere (the run's record keeps its final progress, message, metrics
and result; the run's log file keeps every line, GET /task/{id}/logs reads it; GET /metrics reads
the losses from the log file too). `state`, `pipeline` and `webhook` events are kept: they are
the task's history, a few per run. Events of tasks that no longer exist (a webhook outcome
recorded after its task was deleted) are deleted whatever their kind, once as old.

It runs in a daemon thread: once at start, then every GSV_RETENTION_INTERVAL_S seconds (hourly by
default; 0 = never). Deletes go in batches by id, each its own short transaction, so that a
large table never holds the database's write lock for long (SQLite has one for the whole file).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, delete, exists, not_, select
from sqlalchemy.engine import Engine

from gsv_service.models import Event, Task, table_of, utcnow

log = logging.getLogger("gsv_service.retention")

_E, _T = table_of(Event), table_of(Task)
COMPACTED_TYPES = ("progress", "log")
BATCH = 2000
_ACTIVE_STATUSES = ("queued", "running")


def _finished_tasks() -> Select[tuple[str]]:
    return select(_T.c.id).where(and_(_T.c.active_run_id.is_(None), _T.c.active_pipeline_id.is_(None),
                                      _T.c.status.not_in(_ACTIVE_STATUSES)))


def _old_events(cutoff: datetime) -> Select[tuple[int]]:
    """Ids of the events that may go: progress and log of finished tasks, anything of a task gone."""
    gone = not_(exists(select(_T.c.id).where(_T.c.id == _E.c.task_id)))
    compactable = and_(_E.c.type.in_(COMPACTED_TYPES), _E.c.task_id.in_(_finished_tasks()))
    return select(_E.c.id).where(and_(_E.c.created_at < cutoff, compactable | gone)).order_by(_E.c.id)


def compact_events(engine: Engine, older_than: datetime, batch: int = BATCH) -> int:
    """Delete the events described above created before `older_than`; returns how many."""
    total = 0
    while True:
        # Read, then write in a transaction of its own: nothing to delete takes no write lock, and
        # a SQLite reader never has to upgrade a stale snapshot to a writer (SQLITE_BUSY).
        with engine.connect() as c:
            ids = list(c.execute(_old_events(older_than).limit(batch)).scalars())
        if ids:
            with engine.begin() as c:
                c.execute(delete(_E).where(_E.c.id.in_(ids)))
        total += len(ids)
        if len(ids) < batch:
            return total


class Retention:
    """The periodic compaction, owned by the app's lifespan."""

    def __init__(self, engine: Engine, retention_days: float, interval_s: float):
        self.engine = engine
        self.retention = timedelta(days=retention_days)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        n = compact_events(self.engine, utcnow() - self.retention)
        if n:
            log.info("event retention: deleted %d events older than %s", n, self.retention)
        return n

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup: try again at the next interval
                log.warning("event retention pass failed", exc_info=True)
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="gsv-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
