"""Shared fixtures: settings in a temp dir, the app over httpx (ASGI), and a live uvicorn server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gsv_service.app import create_app
from gsv_service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # The contract double's interpreter (tests/engine_double/python) runs this one, with its stubs.
    os.environ.setdefault("DOUBLE_PYTHON", sys.executable)


def database_urls() -> list:
    """SQLite always; PostgreSQL too when TEST_DATABASE_URL is set (CI sets it)."""
    urls = [pytest.param(None, id="sqlite")]
    if os.environ.get("TEST_DATABASE_URL"):
        urls.append(pytest.param(os.environ["TEST_DATABASE_URL"], id="postgresql"))
    return urls


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS api_keys, webhook_deliveries, webhook_secrets, counters, events, leases, scheduler_lock, pipelines, step_runs, task_steps, tasks, alembic_version CASCADE"))
    eng.dispose()


@pytest.fixture(params=database_urls())
def db_url(request, tmp_path) -> str | None:
    url = request.param
    if url:
        reset_postgres(url)
    return url


def make_settings(tmp_path: Path, db_url: str | None = None, **over) -> Settings:
    values = dict(task_root=tmp_path / "api_tasks", log_dir=tmp_path / "logs",
                  sqlite_path=tmp_path / "service.db", database_url=db_url, kill_grace_s=2.0,
                  engine_root=None, engine_python=None, gpus="",
                  trusted_hosts="localhost,127.0.0.1,::1,testserver")  # TestClient's Host is "testserver"
    values.update(over)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[httpx.Client]:
    """The real app over HTTP semantics, in-process (lifespan run by the TestClient)."""
    from fastapi.testclient import TestClient
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`python training_service.py` in a subprocess on a loopback port."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.env, self.cwd = env, cwd
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> LiveServer:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "training_service.py"), "--host",
                                      "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                                     cwd=self.cwd, env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def server_env(tmp_path: Path, db_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSV_")}
    env.update(GSV_TASK_ROOT=str(tmp_path / "api_tasks"), GSV_LOG_DIR=str(tmp_path / "logs"),
               GSV_SQLITE_PATH=str(tmp_path / "service.db"), GSV_KILL_GRACE_S="2", GSV_GPUS="",
               PYTHONPATH=str(ROOT))
    if db_url:
        env["GSV_DATABASE_URL"] = db_url
    env.update(extra)
    return env


@pytest.fixture
def live_server(tmp_path, db_url) -> Iterator[LiveServer]:
    srv = LiveServer(server_env(tmp_path, db_url), tmp_path).start()
    yield srv
    srv.stop()


def wait_for(pred, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def runner_env(tmp_path: Path, db_url: str | None, max_workers: int = 2, **over):
    """A migrated store and a LocalRunner on it, torn down afterwards."""
    from gsv_service.db import make_engine, migrate
    from gsv_service.lifecycle import Lifecycle
    from gsv_service.runner import LocalRunner
    from gsv_service.steps.registry import STEP_NAMES, WEIGHTS
    from gsv_service.store import Store

    settings = make_settings(tmp_path, db_url, **over)
    db = make_engine(settings.db_url)
    store = Store(db, STEP_NAMES)
    migrate(db)
    runner = LocalRunner(store, Lifecycle(db, WEIGHTS), settings, max_workers=max_workers)
    try:
        yield settings, store, runner
    finally:
        runner.shutdown()
        db.dispose()


def submit_run(settings, store, runner, execute, step: str = "train_sovits", resources: dict | None = None,
               invalidates: list[str] | None = None):
    """Record a queued run of a fresh task and hand `execute(ctx)` to the runner."""
    from gsv_service.steps.base import RunContext
    from gsv_service.workspace import task_workspace

    task = store.create_task("t", {"exp_name": "x"})
    ws = task_workspace(Path(settings.task_root), task.id, "x")
    run = runner.lifecycle.start_run(task.id, step, {}, lambda rid: ws.run_log(step, rid), owner=runner.owner,
                                     resources=resources)

    def make_ctx(r, ev):
        return RunContext(run_id=r.id, task_id=task.id, step=step, config=task.config,
                          workspace=ws, engine=None, settings=settings, log_path=Path(r.log_path),
                          store=runner.lifecycle, cancel_event=ev)

    runner.submit(run, make_ctx, execute, invalidates or [])
    return task, run
