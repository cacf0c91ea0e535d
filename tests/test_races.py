"""Races and blocking calls found by reading the code (issue 9, item 5). Each test failed before
its fix: a pipeline driver losing its wake-up Event to the driver it replaced, the runner's lock held
across database transactions, task creation failing on sequence collisions, the GPU queue's
tie-break, and reads on the event loop holding up every other request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import uvicorn
from sqlalchemy import event

from gsv_service.app import create_app
from gsv_service.db import make_engine, migrate
from gsv_service.procs import LogTail
from gsv_service.scheduler import Scheduler
from gsv_service.states import Reason, RunStatus
from gsv_service.steps.registry import STEP_NAMES, WEIGHTS
from gsv_service.lifecycle import Lifecycle
from gsv_service.store import Store
from tests.conftest import free_port, make_settings, runner_env, submit_run, wait_for

# How long a call that must not wait may take: generous on a loaded machine, yet far below how
# long a Gate holds (until the test opens it).
ANSWER_S = 5.0
pytestmark = pytest.mark.timeout(240)


class Gate:
    """Stands in for a slow database or disk: while armed, a call says it has started and waits
    until the test opens the gate."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.armed = threading.Event()
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, *args, **kwargs):
        if self.armed.is_set() and not self.opened.is_set():
            self.entered.set()
            self.opened.wait(120)
        return self.fn(*args, **kwargs)

    def install(self, monkeypatch, owner, name: str) -> None:
        """Put the gate in place of owner.name (a plain function, so a method stays a method)."""
        def gated(*args, **kwargs):
            return self(*args, **kwargs)
        monkeypatch.setattr(owner, name, gated)


class Worker(threading.Thread):
    """Runs fn on its own thread, keeping its result or exception."""

    def __init__(self, fn: Callable):
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except Exception as e:  # reported by the test that reads it
            self.error = e


@contextmanager
def serving(app) -> Iterator[str]:
    """The app under uvicorn on a loopback port in this process, so a test can slow parts of it."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), what="uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)


# ---------- pipeline: an approve at the moment of the pause ----------

def test_approve_as_the_pipeline_pauses_keeps_the_new_drivers_wake_up(tmp_path):
    """The driver that paused for review used to pop the wake-up Event in its `finally`, after
    its end listeners ran: an approve in between had already put the new driver's Event there,
    so the new driver failed with KeyError after launching its step."""
    from tests.audio_fixtures import have_tools, long_speech
    from tests.engine_support import double_settings, service
    from tests.test_pipeline import prepared_task, wait_pipeline

    if not have_tools():
        pytest.skip("espeak-ng and ffmpeg are needed")
    recording = long_speech(tmp_path / "rec" / "reading.wav", n=6, lang="zh")
    with service(double_settings(tmp_path)) as client:
        tid = prepared_task(client, recording)
        pipelines = client.app.state.pipelines
        approved: list[dict] = []

        def approve_at_pause(rec: dict) -> None:  # on the pausing driver's thread, before it exits
            if rec.status == "awaiting_review" and not approved:
                approved.append(pipelines.approve(rec.task_id))

        pipelines.on_finished(approve_at_pause)
        r = client.post(f"/api/v1/task/{tid}/run", json={"to_step": "extract_text_features",
                                                         "stop_after_asr_for_review": True})
        assert r.status_code == 202, r.text
        p = wait_pipeline(client, tid, until=("completed", "failed", "cancelled"))
        assert approved, "the pipeline never paused for review"
        assert p["status"] == "completed", p
        steps = client.get(f"/api/v1/task/{tid}").json()["steps"]
        assert steps["extract_text_features"]["status"] == "completed"


# ---------- runner: its lock is never held across a database transaction ----------

def _quick(ctx) -> dict:
    return {}


def test_runner_answers_while_a_scheduling_decision_waits_on_the_database(tmp_path, db_url, monkeypatch):
    """_dispatch used to hold the runner's lock through scheduler.acquire (a transaction that waits
    for a busy database): submit and cancel, from request handlers, waited with it."""
    with runner_env(tmp_path, db_url, max_workers=2, cpu_slots=1) as (settings, store, runner):
        gate = Gate(runner.scheduler.acquire)
        gate.install(monkeypatch, runner.scheduler, "acquire")
        gate.armed.set()
        try:
            needy = Worker(lambda: submit_run(settings, store, runner, _quick, resources={"cpu_slots": 1}))
            assert gate.entered.wait(30), "the GPU run never reached the scheduler"
            (queued,) = store.active_runs()
            plain = Worker(lambda: submit_run(settings, store, runner, _quick, step="slice_audio"))
            cancel = Worker(lambda: runner.cancel(queued))
            for name, w in (("submit", plain), ("cancel", cancel)):
                w.join(ANSWER_S)
                assert not w.is_alive(), f"{name} waited for the scheduler's database transaction"
                assert w.error is None, w.error
        finally:
            gate.opened.set()
        needy.join(30)
        assert needy.error is None, needy.error
        _task, run = plain.result
        done = wait_for(lambda: (r := store.get_run(run.id)).status == "completed" and r,
                        what="the plain run to complete")
        assert done.status == "completed"
        assert store.get_run(queued.id).status == "cancelled"
        assert runner.scheduler.leases_of(queued.id) == []


# ---------- store: concurrent creators, FIFO order ----------

def test_concurrent_creators_each_get_their_task(tmp_path, db_url):
    """create_task took max(seq)+1 and gave up after five collisions, returning None (a 500):
    8 creators at once on a database with some latency collided every time."""
    app = create_app(make_settings(tmp_path, db_url))
    creators, each = 8, 3
    with serving(app) as base:
        engine = app.state.service.store.db

        def latency(_conn, _cursor, statement, *_args):
            if statement.lstrip().upper().startswith("INSERT INTO TASKS"):
                time.sleep(0.02)  # a database a little way off: time between reading and writing

        event.listen(engine, "before_cursor_execute", latency)
        start = threading.Barrier(creators)

        def create(i: int) -> list[httpx.Response]:
            with httpx.Client(base_url=base, timeout=60) as c:
                start.wait(30)
                return [c.post("/api/v1/task/create", json={"task_name": f"c{i}-{k}",
                                                            "config": {"exp_name": "x"}})
                        for k in range(each)]
        try:
            workers = [Worker(lambda i=i: create(i)) for i in range(creators)]
            for w in workers:
                w.join(120)
                assert w.error is None, w.error
        finally:
            event.remove(engine, "before_cursor_execute", latency)
        answers = [r for w in workers for r in w.result]
        assert [r.status_code for r in answers] == [200] * (creators * each), \
            [r.text for r in answers if r.status_code != 200][:3]
        listed = httpx.get(f"{base}/api/v1/tasks", params={"limit": 1000}).json()
        assert sorted(t["task_id"] for t in listed) == sorted(r.json()["task_id"] for r in answers)
        for i in range(creators):  # each creator's tasks are listed in the order it made them
            mine = [t["task_name"] for t in listed if t["task_name"].startswith(f"c{i}-")]
            assert mine == [f"c{i}-{k}" for k in range(each)]


@pytest.mark.parametrize("clock", ["frozen", "stepped back"])
def test_queue_order_is_submission_order_whatever_the_clock_says(tmp_path, db_url, monkeypatch, clock):
    """Queued runs were ordered by created_at, then by a random uuid: runs stamped with the same
    time (a coarse clock) came out shuffled, and a clock stepped back (NTP, or another host) jumped
    the queue. The order is now the order the store recorded them in."""
    db = make_engine(make_settings(tmp_path, db_url).db_url)
    store, lifecycle = Store(db, STEP_NAMES), Lifecycle(db, WEIGHTS)
    migrate(store.db)
    try:
        base = datetime(2030, 1, 1, tzinfo=timezone.utc)
        ticks = iter(base - timedelta(seconds=i if clock == "stepped back" else 0) for i in range(1000))
        monkeypatch.setattr("gsv_service.store.utcnow", lambda: next(ticks))
        monkeypatch.setattr("gsv_service.lifecycle.utcnow", lambda: next(ticks))
        runs = []
        for i in range(8):
            task = store.create_task(f"t{i}", {"exp_name": "x"})
            runs.append(lifecycle.start_run(task.id, "train_sovits", {}, lambda rid: tmp_path / f"{rid}.log",
                                            resources={"cpu_slots": 1}))
        scheduler = Scheduler(store.db, cpu_slots=1)
        assert [scheduler.position(r.id) for r in runs] == list(range(1, 9))
        assert scheduler.acquire({r.id for r in runs}) == {runs[0].id: ["cpu:0"]}
    finally:
        store.db.dispose()


# ---------- the event loop: slow reads never hold up other requests ----------

def _queued_task(base: str, svc) -> tuple[str, dict]:
    """A task whose step waits in the GPU queue (recorded, never handed to the runner)."""
    r = httpx.post(f"{base}/api/v1/task/create", json={"task_name": "q", "config": {"exp_name": "x"}})
    tid = r.json()["task_id"]
    ws = svc.workspace(svc.get(tid))
    run = svc.lifecycle.start_run(tid, "train_sovits", {}, lambda rid: ws.run_log("train_sovits", rid),
                              owner=svc.runner.owner, resources={"cpu_slots": 1})
    ws.run_log("train_sovits", run.id).parent.mkdir(parents=True, exist_ok=True)
    ws.run_log("train_sovits", run.id).write_text("line one\nline two\n")
    return tid, run


# case -> (what is slow, the request held up by it, armed only once the answer has started)
SLOW = {
    "GET task: queue position": (lambda app: (app.state.service.runner.scheduler, "position"),
                                 ("GET", "/api/v1/task/{tid}", {}), False),
    "logs: store read": (lambda app: (app.state.service.store, "get_run"),
                         ("GET", "/api/v1/task/{tid}/logs", {}), False),
    "logs follow: store poll": (lambda app: (app.state.service.store, "get_run"),
                                ("GET", "/api/v1/task/{tid}/logs", {"params": {"follow": "true"}}), True),
    "logs follow: file poll": (lambda app: (LogTail, "lines"),
                               ("GET", "/api/v1/task/{tid}/logs", {"params": {"follow": "true"}}), True),
    "upload: task read": (lambda app: (app.state.service.store, "get_task"),
                          ("POST", "/api/v1/task/{tid}/files/upload",
                           {"files": {"file": ("take.wav", b"RIFF not really audio")}}), False),
}


@pytest.mark.parametrize("case", list(SLOW))
def test_a_slow_read_does_not_hold_up_health(tmp_path, monkeypatch, case):
    """Async handlers read the store and log files on the event loop: while one waited for a
    slow disk or database, every other request of the server waited too."""
    slow, (method, path, kw), once_streaming = SLOW[case]
    app = create_app(make_settings(tmp_path))
    with serving(app) as base:
        svc = app.state.service
        tid, run = _queued_task(base, svc)
        owner, name = slow(app)
        gate = Gate(getattr(owner, name))
        gate.install(monkeypatch, owner, name)
        streaming = threading.Event()

        def request() -> int:
            with httpx.Client(base_url=base, timeout=120) as c, \
                    c.stream(method, path.format(tid=tid), **kw) as r:
                streaming.set()
                r.read()
                return r.status_code
        if not once_streaming:
            gate.armed.set()
        held = Worker(request)
        try:
            if once_streaming:
                assert streaming.wait(30), "the log stream did not start"
                gate.armed.set()
            assert gate.entered.wait(30), f"{case}: the slow call was never made"
            try:
                health = httpx.get(f"{base}/api/v1/health", timeout=ANSWER_S)
            except httpx.TimeoutException:
                pytest.fail(f"{case}: /api/v1/health waited for a slow read on the event loop")
            assert health.status_code == 200
        finally:
            gate.opened.set()
            svc.lifecycle.finish_run(run.id, RunStatus.cancelled, reason=Reason.cancelled_by_user.value,
                                 error_message="test over")  # ends a followed log
        held.join(60)
        assert held.error is None, held.error
        assert held.result < 500
