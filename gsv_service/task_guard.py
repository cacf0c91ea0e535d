"""Keeping a deleted task deleted: files written into a task's folder (an upload that was still
streaming when the task was deleted) are moved into place only while its row is held.

DELETE /task removes the row first (store.delete_task) and the folder after. A writer holds the
row (PostgreSQL: a row lock; SQLite: the database write lock) while it renames its files into
place, so either its files land before the delete, and go with the folder, or the row is already
gone and it keeps nothing. Being in the database, this holds across worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from gsv_service.models import Task, table_of

_T = table_of(Task)


@contextmanager
def task_row_held(engine: Engine, task_id: str) -> Iterator[bool]:
    """Yields whether the task still exists; while the block runs, a delete of it waits."""
    with engine.begin() as c:
        # An UPDATE that changes nothing still takes the row's (SQLite: the database's) write lock.
        n = c.execute(update(_T).where(_T.c.id == task_id).values(updated_at=_T.c.updated_at)).rowcount
        yield n == 1


def task_exists(engine: Engine, task_id: str) -> bool:
    with engine.connect() as c:
        return c.execute(select(_T.c.id).where(_T.c.id == task_id)).first() is not None
