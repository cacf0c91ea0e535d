"""Pipeline rows: taking the task for a pipeline, its state changes, and giving the task back."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine

from gsv_service.models import Pipeline, Task, utcnow
from gsv_service.states import PipelineStatus, TaskStatus
from gsv_service.db import row
from gsv_service.store import emit

_P, _T = Pipeline.__table__, Task.__table__


def _take_task(c, task_id: str, pid: str, now) -> bool:
    """The pipeline becomes the task's owner, unless a step or another pipeline owns it."""
    took = c.execute(update(_T).where(and_(_T.c.id == task_id, _T.c.active_run_id.is_(None),
                                           _T.c.active_pipeline_id.is_(None)))
                     .values(active_pipeline_id=pid, status=TaskStatus.running.value,
                             error_message=None, updated_at=now))
    return took.rowcount == 1


class PipelineRecords:
    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, task_id: str, spec: dict, owner: str) -> dict | None:
        """A running pipeline that owns the task, or None if a step or pipeline owns it already."""
        pid, now = uuid.uuid4().hex, utcnow()
        with self.engine.begin() as c:
            if not _take_task(c, task_id, pid, now):
                return None
            c.execute(insert(_P).values(id=pid, task_id=task_id, status=PipelineStatus.running.value,
                                        spec=spec, owner=owner, created_at=now))
            emit(c, task_id, None, "pipeline", {"pipeline_id": pid, "status": "running",
                                                "steps": spec["steps"]})
        return self.get(pid)

    def resume(self, pid: str, task_id: str, spec: dict, owner: str) -> dict | None:
        """Take the task again for a pipeline paused for review."""
        now = utcnow()
        with self.engine.begin() as c:
            if not _take_task(c, task_id, pid, now):
                return None
            c.execute(update(_P).where(and_(_P.c.id == pid, _P.c.status == PipelineStatus.awaiting_review.value))
                      .values(status=PipelineStatus.running.value, spec=spec, owner=owner, reason=None,
                              error_message=None))
            emit(c, task_id, None, "pipeline", {"pipeline_id": pid, "status": "running"})
        return self.get(pid)

    def finish(self, pid: str, status: PipelineStatus, *, failed_step: str | None = None,
               error_message: str | None = None, reason: str | None = None) -> dict:
        """End (or pause) the pipeline and give the task back, with the task's final status."""
        now = utcnow()
        with self.engine.begin() as c:
            row = c.execute(select(_P).where(_P.c.id == pid)).mappings().one()
            c.execute(update(_P).where(_P.c.id == pid).values(
                status=status.value, failed_step=failed_step, error_message=error_message, reason=reason,
                finished_at=None if status == PipelineStatus.awaiting_review else now))
            c.execute(update(_T).where(and_(_T.c.id == row["task_id"], _T.c.active_pipeline_id == pid))
                      .values(active_pipeline_id=None, status=TaskStatus(status.value).value,
                              error_message=error_message, updated_at=now))
            emit(c, row["task_id"], None, "pipeline", {
                "pipeline_id": pid, "status": status.value, "failed_step": failed_step,
                "error_message": error_message, "reason": reason})
        return self.get(pid)

    def request_cancel(self, pid: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(_P).where(_P.c.id == pid).values(cancel_requested=True))

    def get(self, pid: str) -> dict | None:
        with self.engine.connect() as c:
            return row(c.execute(select(_P).where(_P.c.id == pid)).mappings().first())

    def latest(self, task_id: str) -> dict | None:
        with self.engine.connect() as c:
            q = select(_P).where(_P.c.task_id == task_id).order_by(_P.c.created_at.desc()).limit(1)
            return row(c.execute(q).mappings().first())

    def unfinished(self) -> list[dict]:
        with self.engine.connect() as c:
            q = select(_P).where(_P.c.status == PipelineStatus.running.value)
            return [row(m) for m in c.execute(q).mappings()]
