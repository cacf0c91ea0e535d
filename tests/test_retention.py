"""Event retention (issue 10, item 5): progress and log events of finished tasks older than
GSV_EVENT_RETENTION_DAYS are deleted, state/pipeline/webhook events kept, running tasks untouched;
the service compacts at start and then periodically. Real rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update

from gsv_service.db import make_engine, migrate
from gsv_service.models import Event, Task, utcnow
from gsv_service.retention import Retention, compact_events
from gsv_service.steps.registry import STEP_NAMES
from gsv_service.store import Store
from tests.conftest import make_settings, wait_for
from tests.engine_support import service, tone

pytestmark = pytest.mark.timeout(120)
_E, _T = Event.__table__, Task.__table__
KINDS = ("state", "progress", "log", "pipeline", "webhook")


@pytest.fixture
def store(tmp_path, db_url):
    s = Store(make_engine(make_settings(tmp_path, db_url).db_url), STEP_NAMES)
    migrate(s.db)
    yield s
    s.db.dispose()


def _events(store: Store, task_id: str, days_old: float, kinds=KINDS) -> None:
    at = utcnow() - timedelta(days=days_old)
    with store.db.begin() as c:
        c.execute(insert(_E), [dict(task_id=task_id, run_id="r", type=k, data={"k": k}, created_at=at)
                               for k in kinds])


def _kinds(store: Store, task_id: str) -> list[str]:
    with store.db.connect() as c:
        return sorted(c.execute(select(_E.c.type).where(_E.c.task_id == task_id)).scalars())


def _task(store: Store, **values) -> str:
    tid = store.create_task("t", {"exp_name": "spk"}).id
    if values:
        with store.db.begin() as c:
            c.execute(update(_T).where(_T.c.id == tid).values(**values))
    return tid


def test_old_progress_and_logs_of_finished_tasks_go_the_rest_stays(store):
    done = _task(store, status="completed")
    _events(store, done, 40)
    _events(store, done, 5)  # within the retention period
    failed = _task(store, status="failed")
    _events(store, failed, 40, ("progress", "state"))
    n = compact_events(store.db, utcnow() - timedelta(days=30))
    assert n == 3
    assert _kinds(store, done) == sorted(["state", "pipeline", "webhook"] + list(KINDS))
    assert _kinds(store, failed) == ["state"]


def test_tasks_still_at_work_keep_every_event(store):
    running = _task(store, status="running", active_run_id="run-1")
    paused = _task(store, status="awaiting_review", active_pipeline_id="pipe-1")  # a pipeline waits on it
    queued = _task(store, status="queued")
    for tid in (running, paused, queued):
        _events(store, tid, 90)
    assert compact_events(store.db, utcnow() - timedelta(days=30)) == 0
    assert all(_kinds(store, t) == sorted(KINDS) for t in (running, paused, queued))


def test_events_of_deleted_tasks_go_once_old(store):
    _events(store, "gone-old", 40)
    _events(store, "gone-new", 1)
    assert compact_events(store.db, utcnow() - timedelta(days=30)) == len(KINDS)
    assert _kinds(store, "gone-old") == [] and _kinds(store, "gone-new") == sorted(KINDS)


def test_a_big_backlog_goes_in_batches(store):
    tid = _task(store, status="completed")
    for _ in range(7):
        _events(store, tid, 60, ("progress", "log", "state"))
    assert compact_events(store.db, utcnow() - timedelta(days=30), batch=3) == 14
    assert _kinds(store, tid) == ["state"] * 7


def test_retention_thread_compacts_at_start_and_stops(store):
    tid = _task(store, status="completed")
    _events(store, tid, 3)
    idle = Retention(store.db, retention_days=30, interval_s=0)  # 0: never runs
    idle.start()
    idle.stop()
    assert len(_kinds(store, tid)) == len(KINDS)
    r = Retention(store.db, retention_days=2, interval_s=3600)
    r.start()
    wait_for(lambda: _kinds(store, tid) == ["pipeline", "state", "webhook"], 10, what="compaction at start")
    r.stop()
    assert not r._thread.is_alive()


def test_the_service_compacts_a_real_runs_events_and_its_log_survives(tmp_path, db_url):
    s = make_settings(tmp_path, db_url, event_retention_days=1)
    with service(s) as c:
        tid = c.post("/api/v1/task/create", json={"task_name": "r", "config": {"exp_name": "spk"}}).json()["task_id"]
        wav = tone(tmp_path / "r.wav", 2.0)
        assert c.post(f"/api/v1/task/{tid}/files/upload", files={"file": ("r.wav", wav.read_bytes())}).status_code == 200
        rid = c.post(f"/api/v1/task/{tid}/step/convert_audio", json={"params": {}}).json()["run_id"]
        wait_for(lambda: c.get(f"/api/v1/task/{tid}/runs/{rid}").json()["status"] == "completed", 60, what="run")
        logs_before = c.get(f"/api/v1/task/{tid}/logs", params={"run_id": rid}).json()["logs"]
        engine = c.app.state.service.store.db
    # the run is over: age its events past the retention period, then start the service again
    with engine.begin() as conn:
        conn.execute(update(_E).where(_E.c.task_id == tid).values(created_at=utcnow() - timedelta(days=2)))
        kinds_before = sorted(conn.execute(select(_E.c.type).where(_E.c.task_id == tid)).scalars())
    assert "progress" in kinds_before and "state" in kinds_before
    with service(s) as c:
        engine = c.app.state.service.store.db

        def compacted() -> bool:
            with engine.connect() as conn:
                q = select(func.count()).where(_E.c.task_id == tid, _E.c.type.in_(("progress", "log")))
                return conn.execute(q).scalar() == 0
        wait_for(compacted, 10, what="compaction at start")
        with engine.connect() as conn:
            kinds_after = sorted(conn.execute(select(_E.c.type).where(_E.c.task_id == tid)).scalars())
        run = c.get(f"/api/v1/task/{tid}/runs/{rid}").json()
        logs_after = c.get(f"/api/v1/task/{tid}/logs", params={"run_id": rid}).json()["logs"]
    assert kinds_after == [k for k in kinds_before if k not in ("progress", "log")]
    assert run["status"] == "completed" and run["progress"] == 1.0 and run["message"]
    assert logs_after == logs_before  # the run's log lives in its file, not in the events
