"""The one writer of task, run and pipeline status.

Every change is one transaction: the run's or pipeline's row moves only along the state table
(states.py) with a conditional UPDATE, the task's row follows, leases are released when a run
leaves the active states, and the event describing the change is inserted with it, so what a
client reads (GET task, SSE) never disagrees with what happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine

from gsv_service.events import emit
from gsv_service.models import Pipeline, StepRun, Task, TaskStep, table_of, utcnow
from gsv_service.records import PipelineRecord, PipelineSpec, RunRecord
from gsv_service.scheduler import Scheduler
from gsv_service.states import (ACTIVE, ACTIVE_VALUES, PipelineStatus, Reason, RunStatus, TaskStatus,
                                sources_of, task_status_for_run)
from gsv_service.store import get_pipeline_in, get_run_in, take_number

_T, _S, _R, _P = table_of(Task), table_of(TaskStep), table_of(StepRun), table_of(Pipeline)


class TaskBusy(Exception):
    """Another run owns the task."""

    def __init__(self, run: RunRecord | None):
        super().__init__("task busy")
        self.run = run


class RunStateConflict(Exception):
    """A status change that the state table does not allow (e.g. finishing a finished run)."""


INTERRUPTED = ("interrupted: the service stopped while this step was active; run the step again "
               "to continue")


class Lifecycle:
    def __init__(self, db: Engine, step_weights: Mapping[str, float]):
        self.db = db
        total = float(sum(step_weights.values())) or 1.0
        self._weight = {s: w / total for s, w in step_weights.items()}

    # ---------- runs ----------
    def start_run(self, task_id: str, step: str, params: dict[str, Any], log_path_for: Callable[[str], Path],
                  owner: str | None = None, resources: dict[str, Any] | None = None,
                  pipeline_id: str | None = None) -> RunRecord:
        """Create a queued run. A manual run must take the task's lock (a conditional UPDATE, so
        it holds across threads and worker processes alike); a pipeline's run needs the
        pipeline to own the task. Raises TaskBusy otherwise."""
        run_id, now = uuid.uuid4().hex, utcnow()
        with self.db.begin() as c:
            if pipeline_id is None:
                cond = and_(_T.c.id == task_id, _T.c.active_run_id.is_(None), _T.c.active_pipeline_id.is_(None))
                values: dict[str, Any] = dict(active_run_id=run_id, status=TaskStatus.queued.value,
                                              current_step=step, error_message=None, updated_at=now)
            else:
                cond = and_(_T.c.id == task_id, _T.c.active_pipeline_id == pipeline_id)
                values = dict(current_step=step, updated_at=now)
            if c.execute(update(_T).where(cond).values(**values)).rowcount != 1:
                active = c.execute(select(_T.c.active_run_id).where(_T.c.id == task_id)).scalar()
                raise TaskBusy(get_run_in(c, active) if active else None)
            c.execute(insert(_R).values(id=run_id, task_id=task_id, step=step, owner=owner,
                                        status=RunStatus.queued.value, params=params, progress=0.0,
                                        resources=resources, pipeline_id=pipeline_id,
                                        log_path=str(log_path_for(run_id)), created_at=now,
                                        seq=take_number(c, "run_seq")))
            self._set_step(c, task_id, step, RunStatus.queued, run_id)
            self._refresh_progress(c, task_id)
            emit(c, task_id, run_id, "state", {"step": step, "status": RunStatus.queued.value,
                                               "pipeline_id": pipeline_id})
            return _one_run(c, run_id)

    def mark_running(self, run_id: str, owner: str) -> RunRecord:
        with self.db.begin() as c:
            return self._transition(c, run_id, RunStatus.running, owner=owner, started_at=utcnow())

    def finish_run(self, run_id: str, status: RunStatus, *, result: dict[str, Any] | None = None,
                   error_message: str | None = None, reason: str | None = None,
                   invalidates: Iterable[str] = ()) -> RunRecord:
        """Move an active run to completed/failed/cancelled and release its task and leases.
        `invalidates`: later steps whose completed outputs were built from what this run just
        replaced; they become stale."""
        values: dict[str, Any] = dict(finished_at=utcnow(), error_message=error_message, reason=reason,
                                      pgids=None)
        if result is not None:
            values["result"] = result
        if status == RunStatus.completed:
            values["progress"] = 1.0
        with self.db.begin() as c:
            run = self._transition(c, run_id, status, **values)
            if status == RunStatus.completed:
                self._stale(c, run.task_id, list(invalidates))
            self._refresh_progress(c, run.task_id)
            return _one_run(c, run_id)

    def finish_run_if_active(self, run_id: str, status: RunStatus, **kw: Any) -> RunRecord | None:
        """finish_run, or None when the run has already finished elsewhere (e.g. cancelled while queued)."""
        try:
            return self.finish_run(run_id, status, **kw)
        except RunStateConflict:
            return None

    def fail_interrupted(self, run_id: str) -> RunRecord | None:
        return self.finish_run_if_active(run_id, RunStatus.failed, reason=Reason.interrupted.value,
                                         error_message=INTERRUPTED)

    def request_cancel(self, run_id: str) -> RunRecord | None:
        with self.db.begin() as c:
            c.execute(update(_R).where(and_(_R.c.id == run_id, _R.c.status.in_(ACTIVE_VALUES)))
                      .values(cancel_requested=True))
            return get_run_in(c, run_id)

    def set_progress(self, run_id: str, progress: float, message: str | None = None,
                     metrics: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = dict(progress=max(0.0, min(1.0, float(progress))))
        if message is not None:
            values["message"] = message[:2000]
        if metrics is not None:
            values["metrics"] = metrics
        with self.db.begin() as c:
            res = c.execute(update(_R).where(and_(_R.c.id == run_id, _R.c.status == RunStatus.running.value))
                            .values(**values))
            if res.rowcount:
                task_id, step = c.execute(select(_R.c.task_id, _R.c.step).where(_R.c.id == run_id)).one()
                self._refresh_progress(c, task_id)
                emit(c, task_id, run_id, "progress", {"step": step, "progress": values["progress"],
                                                      "message": message, "metrics": metrics})

    def set_pgids(self, run_id: str, pgids: list[int]) -> None:
        """The process groups of a run's live children (a cancel from any process kills them)."""
        with self.db.begin() as c:
            c.execute(update(_R).where(_R.c.id == run_id).values(pgids=pgids))

    def mark_stale(self, task_id: str, steps: Iterable[str]) -> list[str]:
        """Completed steps among `steps` become stale (an input they used was edited outside a
        run, e.g. the transcript); returns those that changed."""
        with self.db.begin() as c:
            return self._stale(c, task_id, list(steps))

    # ---------- pipelines ----------
    def start_pipeline(self, task_id: str, spec: PipelineSpec, owner: str) -> PipelineRecord | None:
        """A running pipeline that owns the task, or None if a step or pipeline owns it already."""
        pipeline_id, now = uuid.uuid4().hex, utcnow()
        with self.db.begin() as c:
            if not _take_task(c, task_id, pipeline_id):
                return None
            c.execute(insert(_P).values(id=pipeline_id, task_id=task_id, status=PipelineStatus.running.value,
                                        spec=spec.to_json(), owner=owner, created_at=now))
            emit(c, task_id, None, "pipeline", {"pipeline_id": pipeline_id, "status": "running",
                                                "steps": list(spec.steps)})
            return get_pipeline_in(c, pipeline_id)

    def resume_pipeline(self, pipeline_id: str, task_id: str, spec: PipelineSpec,
                        owner: str) -> PipelineRecord | None:
        """Take the task again for a pipeline paused for review."""
        with self.db.begin() as c:
            if not _take_task(c, task_id, pipeline_id):
                return None
            c.execute(update(_P).where(and_(_P.c.id == pipeline_id,
                                            _P.c.status == PipelineStatus.awaiting_review.value))
                      .values(status=PipelineStatus.running.value, spec=spec.to_json(), owner=owner,
                              reason=None, error_message=None))
            emit(c, task_id, None, "pipeline", {"pipeline_id": pipeline_id, "status": "running"})
            return get_pipeline_in(c, pipeline_id)

    def finish_pipeline(self, pipeline_id: str, status: PipelineStatus, *, failed_step: str | None = None,
                        error_message: str | None = None, reason: str | None = None) -> PipelineRecord:
        """End (or pause) the pipeline and give the task back, with the task's final status."""
        now = utcnow()
        with self.db.begin() as c:
            task_id = c.execute(select(_P.c.task_id).where(_P.c.id == pipeline_id)).scalar_one()
            c.execute(update(_P).where(_P.c.id == pipeline_id).values(
                status=status.value, failed_step=failed_step, error_message=error_message, reason=reason,
                finished_at=None if status == PipelineStatus.awaiting_review else now))
            c.execute(update(_T).where(and_(_T.c.id == task_id, _T.c.active_pipeline_id == pipeline_id))
                      .values(active_pipeline_id=None, status=TaskStatus(status.value).value,
                              error_message=error_message, updated_at=now))
            emit(c, task_id, None, "pipeline", {
                "pipeline_id": pipeline_id, "status": status.value, "failed_step": failed_step,
                "error_message": error_message, "reason": reason})
            rec = get_pipeline_in(c, pipeline_id)
            assert rec is not None
            return rec

    def request_pipeline_cancel(self, pipeline_id: str) -> None:
        with self.db.begin() as c:
            c.execute(update(_P).where(_P.c.id == pipeline_id).values(cancel_requested=True))

    # ---------- in the caller's transaction ----------
    @staticmethod
    def _set_step(c: Connection, task_id: str, step: str, status: RunStatus, run_id: str) -> None:
        c.execute(update(_S).where(and_(_S.c.task_id == task_id, _S.c.step == step))
                  .values(status=status.value, run_id=run_id, updated_at=utcnow()))

    def _transition(self, c: Connection, run_id: str, new: RunStatus, **values: Any) -> RunRecord:
        now = utcnow()
        res = c.execute(update(_R).where(and_(_R.c.id == run_id, _R.c.status.in_(sources_of(new))))
                        .values(status=new.value, **values))
        run = get_run_in(c, run_id)
        if res.rowcount != 1 or run is None:
            raise RunStateConflict(f"run {run_id} cannot move from {run and run.status.value} to {new.value}")
        self._set_step(c, run.task_id, run.step, new, run_id)
        if new not in ACTIVE:
            Scheduler.release(c, run_id)
        if run.pipeline_id:  # the pipeline sets the task's status when it ends
            if new == RunStatus.running:
                c.execute(update(_T).where(_T.c.id == run.task_id)
                          .values(status=TaskStatus.running.value, updated_at=now))
        else:
            task_values: dict[str, Any] = dict(status=task_status_for_run(new).value, updated_at=now)
            if new not in ACTIVE:
                task_values["active_run_id"] = None
                task_values["error_message"] = values.get("error_message")
            c.execute(update(_T).where(and_(_T.c.id == run.task_id, _T.c.active_run_id == run_id))
                      .values(**task_values))
        emit(c, run.task_id, run_id, "state", {
            "step": run.step, "status": new.value, "reason": run.reason,
            "error_message": run.error_message, "pipeline_id": run.pipeline_id})
        return run

    def _stale(self, c: Connection, task_id: str, steps: list[str]) -> list[str]:
        if not steps:
            return []
        where = and_(_S.c.task_id == task_id, _S.c.step.in_(steps), _S.c.status == RunStatus.completed.value)
        changed = list(c.execute(select(_S.c.step).where(where)).scalars())
        if changed:
            c.execute(update(_S).where(where).values(status=RunStatus.stale.value, updated_at=utcnow()))
            self._refresh_progress(c, task_id)
        return changed

    def _refresh_progress(self, c: Connection, task_id: str) -> None:
        """Task progress in percent: finished steps by weight, plus the active run's fraction."""
        done = 0.0
        q = (select(_S.c.step, _S.c.status, _R.c.progress)
             .select_from(_S.outerjoin(_R, _R.c.id == _S.c.run_id)).where(_S.c.task_id == task_id))
        for step, status, frac in c.execute(q):
            w = self._weight.get(step, 0.0)
            if status == RunStatus.completed.value:
                done += w
            elif status == RunStatus.running.value:
                done += w * (frac or 0.0)
        c.execute(update(_T).where(_T.c.id == task_id).values(progress=round(100.0 * done, 2)))


def _take_task(c: Connection, task_id: str, pipeline_id: str) -> bool:
    """The pipeline becomes the task's owner, unless a step or another pipeline owns it."""
    took = c.execute(update(_T).where(and_(_T.c.id == task_id, _T.c.active_run_id.is_(None),
                                           _T.c.active_pipeline_id.is_(None)))
                     .values(active_pipeline_id=pipeline_id, status=TaskStatus.running.value,
                             error_message=None, updated_at=utcnow()))
    return took.rowcount == 1


def _one_run(c: Connection, run_id: str) -> RunRecord:
    run = get_run_in(c, run_id)
    assert run is not None  # written in this transaction
    return run
