"""Task store: every task, step record and step run, through SQLAlchemy (SQLite by default).

All writes happen in short transactions, and every state change is written here before anyone
reports it. Rows leave this module as plain dicts so no caller holds a session.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, null, select, union_all, update
from sqlalchemy.engine import Connection, Engine

from gsv_service.db import aware as _aware
from gsv_service.db import row
from gsv_service.models import Counter, Event, Pipeline, StepRun, Task, TaskStep, utcnow
from gsv_service.scheduler import Scheduler
from gsv_service.states import ACTIVE, Reason, RunStatus, TaskStatus, sources_of, task_status_for_run

_T, _S, _R, _E = Task.__table__, TaskStep.__table__, StepRun.__table__, Event.__table__


class TaskBusy(Exception):
    """Another run owns the task."""

    def __init__(self, run: dict | None):
        super().__init__("task busy")
        self.run = run


class RunStateConflict(Exception):
    """A status change that the state table does not allow (e.g. finishing a finished run)."""


def take_number(c: Connection, counter: str) -> int:
    """The next number of a counter, in the caller's transaction. The UPDATE locks the counter's
    row (SQLite: the database) until the transaction ends, so concurrent takers wait their turn,
    never collide, and get their numbers in the order their transactions commit."""
    col = Counter.__table__.c
    c.execute(update(Counter.__table__).where(col.name == counter).values(value=col.value + 1))
    return c.execute(select(col.value).where(col.name == counter)).scalar_one()


def emit(c: Connection, task_id: str, run_id: str | None, type_: str, data: dict) -> None:
    """Append an event in the caller's transaction: it exists exactly when the change does."""
    c.execute(insert(_E).values(task_id=task_id, run_id=run_id, type=type_, data=data, created_at=utcnow()))


_STEP_COLS = (_S.c.step, _S.c.status, _S.c.run_id, _S.c.updated_at, _R.c.progress, _R.c.message,
              _R.c.error_message, _R.c.reason, _R.c.started_at, _R.c.finished_at)
_DATETIMES = frozenset(("created_at", "updated_at", "started_at", "finished_at"))


def _datetime_converter(proc):
    """Raw datetime value -> aware datetime. SQLite returns text, parsed by `proc`: memoised, as a
    poll sees the same few timestamps again and again (datetimes are immutable, so sharing is safe)."""
    if proc is None:
        return _aware

    @functools.lru_cache(maxsize=4096)
    def convert(v):
        return _aware(proc(v))
    return convert


class _TaskReader:
    """The task row UNION ALL its step records joined to their runs: one statement (one round
    trip, one snapshot), the task's columns not repeated on every step row, compiled once for the
    engine's dialect. Values come back as Connection.execute would give them: each column's result
    processor (JSON decoding, SQLite datetime parsing) is taken from its type with the cursor's
    type code, as SQLAlchemy itself does; naive datetimes become UTC as in row()."""

    def __init__(self, dialect, step_names: list[str]):
        task_id = bindparam("task_id")
        stmt = union_all(
            select(*_T.c, *[null().label(f"s{i}") for i in range(len(_STEP_COLS))]).where(_T.c.id == task_id),
            select(*[null().label(f"t{i}") for i in range(len(_T.c))], *_STEP_COLS)
            .select_from(_S.outerjoin(_R, _R.c.id == _S.c.run_id)).where(_S.c.task_id == task_id))
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = compiled.positional
        self.n_params = len(compiled.positiontup or ())
        self.autocommit = dialect.name == "postgresql" and dialect.driver in ("psycopg", "psycopg2")
        self.dialect = dialect
        self.columns = [*_T.c, *_STEP_COLS]
        self.nt = len(_T.c)
        self.task_keys = [c.key for c in self.columns[:self.nt]]
        self.step_keys = [c.key for c in self.columns[self.nt + 1:]]
        self.order = {s: i for i, s in enumerate(step_names)}
        self.fixers: tuple[list, list] | None = None

    def params(self, task_id: str):
        return (task_id,) * self.n_params if self.positional else {"task_id": task_id}

    def _fixers(self, description, lo: int, hi: int) -> list:
        out = []
        for i in range(lo, hi):
            col = self.columns[i]
            proc = col.type._cached_result_processor(self.dialect, description[i][1])
            if col.key in _DATETIMES:
                out.append((i - lo, _datetime_converter(proc)))
            elif proc is not None:
                out.append((i - lo, proc))
        return out

    @staticmethod
    def _convert(values: list, fixers: list) -> list:
        for j, fn in fixers:
            v = values[j]
            if v is not None:
                values[j] = fn(v)
        return values

    def build(self, rows: list, description) -> dict | None:
        nt = self.nt
        task_row = next((r for r in rows if r[nt] is None), None)  # step rows all name their step
        if task_row is None:
            return None
        if self.fixers is None:
            self.fixers = (self._fixers(description, 0, nt), self._fixers(description, nt + 1, len(self.columns)))
        task_fix, step_fix = self.fixers
        task = dict(zip(self.task_keys, self._convert(list(task_row[:nt]), task_fix), strict=True))
        order, keys = self.order, self.step_keys
        rows = sorted((r for r in rows if r[nt] is not None), key=lambda r: order.get(r[nt], 99))
        task["steps"] = {r[nt]: dict(zip(keys, self._convert(list(r[nt + 1:]), step_fix), strict=True)) for r in rows}
        return task


class Store:
    def __init__(self, engine: Engine, step_names: Iterable[str], step_weights: Mapping[str, float]):
        self.engine = engine
        self.step_names = list(step_names)
        total = float(sum(step_weights.values())) or 1.0
        self._weight = {s: step_weights.get(s, 0.0) / total for s in self.step_names}

    # ---------- tasks ----------
    def create_task(self, name: str, config: dict) -> dict:
        task_id, now = str(uuid.uuid4()), utcnow()
        with self.engine.begin() as c:
            c.execute(insert(_T).values(
                id=task_id, seq=take_number(c, "task_seq"), name=name, status=TaskStatus.created.value,
                progress=0.0, config=config, created_at=now, updated_at=now))
            c.execute(insert(_S), [dict(task_id=task_id, step=s, status=RunStatus.pending.value,
                                        updated_at=now) for s in self.step_names])
        return self.get_task(task_id)

    def get_task(self, task_id: str) -> dict | None:
        """The task row with its step records, as `list_tasks` gives them. Hot path (clients poll
        it): one joined SELECT, compiled once, on the pooled DB-API cursor, values converted by the
        column types' own result processors (see _TaskReader)."""
        reader = self.__dict__.get("_task_reader")
        if reader is None:
            reader = self._task_reader = _TaskReader(self.engine.dialect, self.step_names)
        raw = self.engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            # psycopg: one statement needs no BEGIN ... ROLLBACK round trips (as SQLAlchemy's own
            # ping does it); pysqlite opens no transaction for a SELECT anyway.
            autocommit = reader.autocommit and not dbapi.autocommit
            if autocommit:
                dbapi.autocommit = True
            cur = raw.cursor()
            try:
                cur.execute(reader.sql, reader.params(task_id))
                rows = cur.fetchall()
                description = cur.description
            finally:
                cur.close()
                if autocommit and not dbapi.closed:
                    dbapi.autocommit = False
        finally:
            raw.close()
        return reader.build(rows, description)

    def list_tasks(self, status: str | None, limit: int, offset: int,
                   newest_first: bool = False) -> tuple[list[dict], int]:
        where = [_T.c.status == status] if status else []
        with self.engine.connect() as c:
            total = c.execute(select(func.count()).select_from(_T).where(*where)).scalar() or 0
            order = _T.c.seq.desc() if newest_first else _T.c.seq
            rows = c.execute(select(_T).where(*where).order_by(order).limit(limit).offset(offset))
            tasks = [row(m) for m in rows.mappings()]
            steps = self._steps(c, [t["id"] for t in tasks])
        for t in tasks:
            t["steps"] = steps.get(t["id"], {})
        return tasks, int(total)

    def _steps(self, c: Connection, task_ids: list[str]) -> dict[str, dict[str, dict]]:
        out: dict[str, dict[str, dict]] = {t: {} for t in task_ids}
        if not task_ids:
            return out
        q = (select(_S.c.task_id, _S.c.step, _S.c.status, _S.c.run_id, _S.c.updated_at,
                    _R.c.progress, _R.c.message, _R.c.error_message, _R.c.reason, _R.c.started_at,
                    _R.c.finished_at)
             .select_from(_S.outerjoin(_R, _R.c.id == _S.c.run_id))
             .where(_S.c.task_id.in_(task_ids)))
        order = {s: i for i, s in enumerate(self.step_names)}
        for m in sorted(c.execute(q).mappings(), key=lambda m: order.get(m["step"], 99)):
            d = row(m)
            out[d.pop("task_id")][d.pop("step")] = d
        return out

    def delete_task(self, task_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(_E).where(_E.c.task_id == task_id))
            c.execute(delete(Pipeline.__table__).where(Pipeline.__table__.c.task_id == task_id))
            c.execute(delete(_R).where(_R.c.task_id == task_id))
            c.execute(delete(_S).where(_S.c.task_id == task_id))
            c.execute(delete(_T).where(_T.c.id == task_id))

    # ---------- runs ----------
    def start_run(self, task_id: str, step: str, params: dict, log_path_for, owner: str | None = None,
                  resources: dict | None = None, pipeline_id: str | None = None) -> dict:
        """Create a queued run. A manual run must take the task's lock (a conditional UPDATE, so
        it holds across threads and worker processes alike); a pipeline's run needs the
        pipeline to own the task. Raises TaskBusy otherwise."""
        run_id, now = uuid.uuid4().hex, utcnow()
        with self.engine.begin() as c:
            if pipeline_id is None:
                cond = and_(_T.c.id == task_id, _T.c.active_run_id.is_(None),
                            _T.c.active_pipeline_id.is_(None))
                values = dict(active_run_id=run_id, status=TaskStatus.queued.value, current_step=step,
                              error_message=None, updated_at=now)
            else:
                cond = and_(_T.c.id == task_id, _T.c.active_pipeline_id == pipeline_id)
                values = dict(current_step=step, updated_at=now)
            if c.execute(update(_T).where(cond).values(**values)).rowcount != 1:
                active = c.execute(select(_T.c.active_run_id).where(_T.c.id == task_id)).scalar()
                raise TaskBusy(self._get_run(c, active) if active else None)
            c.execute(insert(_R).values(id=run_id, task_id=task_id, step=step, owner=owner,
                                        status=RunStatus.queued.value, params=params, progress=0.0,
                                        resources=resources, pipeline_id=pipeline_id,
                                        log_path=str(log_path_for(run_id)), created_at=now,
                                        seq=take_number(c, "run_seq")))
            self._set_step(c, task_id, step, RunStatus.queued, run_id, now)
            self._refresh_progress(c, task_id)
            emit(c, task_id, run_id, "state", {"step": step, "status": RunStatus.queued.value,
                                               "pipeline_id": pipeline_id})
        return self.get_run(run_id)

    def _set_step(self, c: Connection, task_id: str, step: str, status: RunStatus, run_id: str, now) -> None:
        c.execute(update(_S).where(and_(_S.c.task_id == task_id, _S.c.step == step))
                  .values(status=status.value, run_id=run_id, updated_at=now))

    def _transition(self, c: Connection, run_id: str, new: RunStatus, **values) -> dict:
        now = utcnow()
        res = c.execute(update(_R).where(and_(_R.c.id == run_id, _R.c.status.in_(sources_of(new))))
                        .values(status=new.value, **values))
        run = self._get_run(c, run_id)
        if res.rowcount != 1:
            raise RunStateConflict(f"run {run_id} cannot move from {run and run['status']} to {new.value}")
        self._set_step(c, run["task_id"], run["step"], new, run_id, now)
        if new not in ACTIVE:
            Scheduler.release(c, run_id)
        if run["pipeline_id"]:  # the pipeline sets the task's status when it ends
            if new == RunStatus.running:
                c.execute(update(_T).where(_T.c.id == run["task_id"])
                          .values(status=TaskStatus.running.value, updated_at=now))
        else:
            task_values: dict[str, Any] = dict(status=task_status_for_run(new).value, updated_at=now)
            if new not in ACTIVE:
                task_values["active_run_id"] = None
                task_values["error_message"] = values.get("error_message")
            c.execute(update(_T).where(and_(_T.c.id == run["task_id"], _T.c.active_run_id == run_id))
                      .values(**task_values))
        emit(c, run["task_id"], run_id, "state", {
            "step": run["step"], "status": new.value, "reason": run["reason"],
            "error_message": run["error_message"], "pipeline_id": run.get("pipeline_id")})
        return run

    def mark_running(self, run_id: str, owner: str) -> dict:
        with self.engine.begin() as c:
            return self._transition(c, run_id, RunStatus.running, owner=owner, started_at=utcnow())

    def finish_run(self, run_id: str, status: RunStatus, *, result: dict | None = None,
                   error_message: str | None = None, reason: str | None = None,
                   invalidates: Iterable[str] = ()) -> dict:
        """Move an active run to completed/failed/cancelled and release its task.

        `invalidates`: later steps whose completed outputs were built from what this run
        just replaced; they become stale.
        """
        values: dict[str, Any] = dict(finished_at=utcnow(), error_message=error_message,
                                      reason=reason, pgids=None)
        if result is not None:
            values["result"] = result
        if status == RunStatus.completed:
            values["progress"] = 1.0
        with self.engine.begin() as c:
            run = self._transition(c, run_id, status, **values)
            stale = list(invalidates) if status == RunStatus.completed else []
            if stale:
                c.execute(update(_S).where(and_(_S.c.task_id == run["task_id"], _S.c.step.in_(stale),
                                                _S.c.status == RunStatus.completed.value))
                          .values(status=RunStatus.stale.value, updated_at=utcnow()))
            self._refresh_progress(c, run["task_id"])
            return self._get_run(c, run_id)

    def mark_stale(self, task_id: str, steps: Iterable[str]) -> list[str]:
        """Completed steps among `steps` become stale (an input they used was edited outside a
        run, e.g. the transcript); returns those that changed."""
        steps = list(steps)
        if not steps:
            return []
        where = and_(_S.c.task_id == task_id, _S.c.step.in_(steps), _S.c.status == RunStatus.completed.value)
        with self.engine.begin() as c:
            changed = list(c.execute(select(_S.c.step).where(where)).scalars())
            if changed:
                c.execute(update(_S).where(where).values(status=RunStatus.stale.value, updated_at=utcnow()))
                self._refresh_progress(c, task_id)
        return changed

    def set_progress(self, run_id: str, progress: float, message: str | None = None,
                     metrics: dict | None = None) -> None:
        values: dict[str, Any] = dict(progress=max(0.0, min(1.0, float(progress))))
        if message is not None:
            values["message"] = message[:2000]
        if metrics is not None:
            values["metrics"] = metrics
        with self.engine.begin() as c:
            res = c.execute(update(_R).where(and_(_R.c.id == run_id,
                                                  _R.c.status == RunStatus.running.value)).values(**values))
            if res.rowcount:
                task_id, step = c.execute(select(_R.c.task_id, _R.c.step).where(_R.c.id == run_id)).one()
                self._refresh_progress(c, task_id)
                emit(c, task_id, run_id, "progress", {"step": step, "progress": values["progress"],
                                                      "message": message, "metrics": metrics})

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

    def set_pgids(self, run_id: str, pgids: list[int]) -> None:
        with self.engine.begin() as c:
            c.execute(update(_R).where(_R.c.id == run_id).values(pgids=pgids))

    def request_cancel(self, run_id: str) -> dict | None:
        with self.engine.begin() as c:
            c.execute(update(_R).where(and_(_R.c.id == run_id,
                                            _R.c.status.in_([s.value for s in ACTIVE])))
                      .values(cancel_requested=True))
            return self._get_run(c, run_id)

    def get_run(self, run_id: str) -> dict | None:
        with self.engine.connect() as c:
            return self._get_run(c, run_id)

    @staticmethod
    def _get_run(c: Connection, run_id: str) -> dict | None:
        return row(c.execute(select(_R).where(_R.c.id == run_id)).mappings().first())

    def list_runs(self, task_id: str, step: str | None = None) -> list[dict]:
        where = [_R.c.task_id == task_id] + ([_R.c.step == step] if step else [])
        with self.engine.connect() as c:
            rows = c.execute(select(_R).where(*where).order_by(_R.c.created_at))
            return [row(m) for m in rows.mappings()]

    def latest_run(self, task_id: str) -> dict | None:
        with self.engine.connect() as c:
            q = select(_R).where(_R.c.task_id == task_id).order_by(_R.c.created_at.desc()).limit(1)
            return row(c.execute(q).mappings().first())

    def active_runs(self) -> list[dict]:
        with self.engine.connect() as c:
            q = select(_R).where(_R.c.status.in_([s.value for s in ACTIVE])).order_by(_R.c.created_at)
            return [row(m) for m in c.execute(q).mappings()]

    def fail_interrupted(self, run_id: str) -> dict | None:
        try:
            return self.finish_run(run_id, RunStatus.failed, reason=Reason.interrupted.value,
                                   error_message="interrupted: the service stopped while this step "
                                                 "was active; run the step again to continue")
        except RunStateConflict:
            return None
