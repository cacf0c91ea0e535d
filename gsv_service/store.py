"""Task store: reading tasks, step runs and pipelines (SQLAlchemy Core; SQLite by default).

Every status change is written by lifecycle.py; this module reads, creates and deletes tasks,
and hands out frozen records (records.py), never rows, so no caller holds a session or a dict
another caller can change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from gsv_service.db import aware
from gsv_service.models import Counter, Event, Pipeline, StepRun, Task, TaskStep, table_of, utcnow
from gsv_service.records import (EventRecord, PipelineRecord, PipelineSpec, RunRecord, StepState,
                                 TaskRecord, parse_config)
from gsv_service.states import ACTIVE_VALUES, PipelineStatus, RunStatus, TaskStatus

_T, _S, _R, _E, _P = table_of(Task), table_of(TaskStep), table_of(StepRun), table_of(Event), table_of(Pipeline)


def take_number(c: Connection, counter: str) -> int:
    """The next number of a counter, in the caller's transaction. The UPDATE locks the counter's
    row (SQLite: the database) until the transaction ends, so concurrent takers wait their turn,
    never collide, and get their numbers in the order their transactions commit."""
    col = table_of(Counter).c
    c.execute(update(table_of(Counter)).where(col.name == counter).values(value=col.value + 1))
    return int(c.execute(select(col.value).where(col.name == counter)).scalar_one())


# ---------- rows -> records ----------
def _when(v: datetime) -> datetime:
    """A required timestamp, timezone-aware (SQLite hands back naive UTC)."""
    return v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)


def task_record(m: RowMapping, steps: Mapping[str, StepState]) -> TaskRecord:
    return TaskRecord(
        id=m["id"], seq=m["seq"], name=m["name"], status=TaskStatus(m["status"]),
        current_step=m["current_step"], progress=m["progress"], error_message=m["error_message"],
        config=parse_config(m["config"] or {}), active_run_id=m["active_run_id"],
        active_pipeline_id=m["active_pipeline_id"], created_at=_when(m["created_at"]),
        updated_at=_when(m["updated_at"]), steps=steps)


def step_state(m: RowMapping) -> StepState:
    return StepState(step=m["step"], status=RunStatus(m["status"]), run_id=m["run_id"],
                     updated_at=aware(m["updated_at"]), progress=m["progress"], message=m["message"],
                     error_message=m["error_message"], reason=m["reason"],
                     started_at=aware(m["started_at"]), finished_at=aware(m["finished_at"]))


def run_record(m: RowMapping) -> RunRecord:
    return RunRecord(
        id=m["id"], task_id=m["task_id"], step=m["step"], status=RunStatus(m["status"]),
        params=m["params"] or {}, progress=m["progress"] or 0.0, message=m["message"],
        metrics=m["metrics"], result=m["result"], error_message=m["error_message"], reason=m["reason"],
        log_path=m["log_path"], owner=m["owner"], pgids=m["pgids"],
        cancel_requested=bool(m["cancel_requested"]), pipeline_id=m["pipeline_id"],
        resources=m["resources"], seq=m["seq"], created_at=_when(m["created_at"]),
        started_at=aware(m["started_at"]), finished_at=aware(m["finished_at"]))


def pipeline_record(m: RowMapping) -> PipelineRecord:
    return PipelineRecord(
        id=m["id"], task_id=m["task_id"], status=PipelineStatus(m["status"]),
        spec=PipelineSpec.from_json(m["spec"]), failed_step=m["failed_step"],
        error_message=m["error_message"], reason=m["reason"], owner=m["owner"],
        cancel_requested=bool(m["cancel_requested"]), created_at=_when(m["created_at"]),
        finished_at=aware(m["finished_at"]))


def event_record(m: RowMapping) -> EventRecord:
    return EventRecord(id=m["id"], task_id=m["task_id"], run_id=m["run_id"], type=m["type"],
                       data=m["data"] or {}, created_at=_when(m["created_at"]))


_STEPS_OF = (select(_S.c.task_id, _S.c.step, _S.c.status, _S.c.run_id, _S.c.updated_at, _R.c.progress,
                    _R.c.message, _R.c.error_message, _R.c.reason, _R.c.started_at, _R.c.finished_at)
             .select_from(_S.outerjoin(_R, _R.c.id == _S.c.run_id)))
_TASK_BY_ID = select(_T).where(_T.c.id == bindparam("task_id"))
_STEPS_BY_TASK = _STEPS_OF.where(_S.c.task_id == bindparam("task_id"))


def get_run_in(c: Connection, run_id: str) -> RunRecord | None:
    m = c.execute(select(_R).where(_R.c.id == run_id)).mappings().first()
    return run_record(m) if m else None


def get_pipeline_in(c: Connection, pipeline_id: str) -> PipelineRecord | None:
    m = c.execute(select(_P).where(_P.c.id == pipeline_id)).mappings().first()
    return pipeline_record(m) if m else None


class Store:
    def __init__(self, db: Engine, step_names: Iterable[str]):
        self.db = db
        self.step_names = list(step_names)
        self._order = {s: i for i, s in enumerate(self.step_names)}
        # One statement per read: no BEGIN/ROLLBACK round trips on a server database (a public
        # execution option; the pool resets the connection when it comes back).
        self._reads = db.execution_options(isolation_level="AUTOCOMMIT") \
            if db.dialect.name == "postgresql" else db

    @property
    def backend(self) -> str:
        return self.db.url.get_backend_name()

    @property
    def url(self) -> str:
        return self.db.url.render_as_string(hide_password=True)

    def ping(self) -> bool:
        try:
            with self._reads.connect() as c:
                c.execute(select(1))
            return True
        except Exception:  # the answer is the status, never a 500
            return False

    # ---------- tasks ----------
    def create_task(self, name: str, config: dict[str, Any], owner: str | None = None) -> TaskRecord:
        """owner: the API key that creates it (None while the service has no keys)."""
        task_id, now = str(uuid.uuid4()), utcnow()
        with self.db.begin() as c:
            c.execute(insert(_T).values(
                id=task_id, seq=take_number(c, "task_seq"), name=name, status=TaskStatus.created.value,
                progress=0.0, config=config, owner_key_id=owner, created_at=now, updated_at=now))
            c.execute(insert(_S), [dict(task_id=task_id, step=s, status=RunStatus.pending.value,
                                        updated_at=now) for s in self.step_names])
        task = self.get_task(task_id)
        assert task is not None  # just committed
        return task

    def get_task(self, task_id: str) -> TaskRecord | None:
        """The task with its step records (clients poll it: two indexed SELECTs on one connection;
        the API's view cache answers most polls without either)."""
        with self._reads.connect() as c:
            m = c.execute(_TASK_BY_ID, {"task_id": task_id}).mappings().first()
            if m is None:
                return None
            steps = c.execute(_STEPS_BY_TASK, {"task_id": task_id}).mappings().all()
        return task_record(m, self._ordered(steps))

    def _ordered(self, steps: Iterable[RowMapping]) -> dict[str, StepState]:
        rows = sorted(steps, key=lambda m: self._order.get(m["step"], 99))
        return {m["step"]: step_state(m) for m in rows}

    def list_tasks(self, status: str | None, limit: int, offset: int,
                   newest_first: bool = False, owner: str | None = None) -> tuple[list[TaskRecord], int]:
        where = [_T.c.status == status] if status else []
        where += [_T.c.owner_key_id == owner] if owner else []  # owner: only that API key's tasks
        order = _T.c.seq.desc() if newest_first else _T.c.seq
        with self._reads.connect() as c:
            total = c.execute(select(func.count()).select_from(_T).where(*where)).scalar() or 0
            rows = c.execute(select(_T).where(*where).order_by(order).limit(limit).offset(offset)).mappings().all()
            ids = [m["id"] for m in rows]
            by_task: dict[str, list[RowMapping]] = {i: [] for i in ids}
            if ids:
                for s in c.execute(_STEPS_OF.where(_S.c.task_id.in_(ids))).mappings():
                    by_task[s["task_id"]].append(s)
        return [task_record(m, self._ordered(by_task[m["id"]])) for m in rows], int(total)

    def task_owner(self, task_id: str) -> tuple[bool, str | None]:
        """(exists, the API key id that owns it) of a task: the access check on every task route."""
        with self._reads.connect() as c:
            found = c.execute(select(_T.c.owner_key_id).where(_T.c.id == task_id)).first()
        return (found is not None, found[0] if found else None)

    def delete_task(self, task_id: str) -> None:
        with self.db.begin() as c:
            for table in (_E, _P, _R, _S):
                c.execute(delete(table).where(table.c.task_id == task_id))
            c.execute(delete(_T).where(_T.c.id == task_id))

    # ---------- runs ----------
    def get_run(self, run_id: str) -> RunRecord | None:
        with self._reads.connect() as c:
            return get_run_in(c, run_id)

    def list_runs(self, task_id: str, step: str | None = None) -> list[RunRecord]:
        where = [_R.c.task_id == task_id] + ([_R.c.step == step] if step else [])
        with self._reads.connect() as c:
            rows = c.execute(select(_R).where(*where).order_by(_R.c.created_at, _R.c.seq))
            return [run_record(m) for m in rows.mappings()]

    def latest_run(self, task_id: str) -> RunRecord | None:
        q = select(_R).where(_R.c.task_id == task_id).order_by(_R.c.created_at.desc(), _R.c.seq.desc()).limit(1)
        with self._reads.connect() as c:
            m = c.execute(q).mappings().first()
        return run_record(m) if m else None

    def active_runs(self) -> list[RunRecord]:
        q = select(_R).where(_R.c.status.in_(ACTIVE_VALUES)).order_by(_R.c.seq)
        with self._reads.connect() as c:
            return [run_record(m) for m in c.execute(q).mappings()]

    # ---------- pipelines ----------
    def get_pipeline(self, pipeline_id: str) -> PipelineRecord | None:
        with self._reads.connect() as c:
            return get_pipeline_in(c, pipeline_id)

    def latest_pipeline(self, task_id: str) -> PipelineRecord | None:
        q = select(_P).where(_P.c.task_id == task_id).order_by(_P.c.created_at.desc()).limit(1)
        with self._reads.connect() as c:
            m = c.execute(q).mappings().first()
        return pipeline_record(m) if m else None

    def unfinished_pipelines(self) -> list[PipelineRecord]:
        q = select(_P).where(_P.c.status == PipelineStatus.running.value)
        with self._reads.connect() as c:
            return [pipeline_record(m) for m in c.execute(q).mappings()]
