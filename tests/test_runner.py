"""The runner: process groups, exit codes, cancel escalation, no orphans, restart recovery."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from gsv_service.procs import Command, group_alive
from gsv_service.runner import LocalRunner
from gsv_service.steps.base import StepFailed
from gsv_service.states import RunStatus
from gsv_service.workspace import task_workspace
from tests.conftest import runner_env, submit_run, wait_for

# A "training" that forks two children which ignore SIGTERM-less shutdown by sleeping, and
# writes its pids so the test can look for survivors.
FAMILY = textwrap.dedent("""
    import multiprocessing as mp, os, sys, time, signal
    def child():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # only SIGKILL stops this one
        time.sleep(600)
    if __name__ == "__main__":
        kids = [mp.Process(target=child) for _ in range(2)]
        for k in kids: k.start()
        with open(sys.argv[1], "w") as f:
            f.write(" ".join(str(p) for p in [os.getpid()] + [k.pid for k in kids]))
        print("Train Epoch: 1 [0%]", flush=True)
        time.sleep(600)
""")


@pytest.fixture
def env(tmp_path, db_url):
    with runner_env(tmp_path, db_url, kill_grace_s=1.0) as e:
        yield e


def _submit(settings, store, runner, execute, step="train_sovits"):
    return submit_run(settings, store, runner, execute, step, invalidates=["test_inference"])


def _finished(store, run_id):
    return lambda: (r := store.get_run(run_id)).status in ("completed", "failed", "cancelled") and r


def test_exit_code_zero_completes_and_logs_output(env):
    settings, store, runner = env

    def execute(ctx):
        codes = ctx.run([Command([sys.executable, "-c", "print('hello from child')"])])
        return {"codes": codes}

    task, run = _submit(settings, store, runner, execute)
    done = wait_for(_finished(store, run.id), what="run end")
    assert done.status == "completed" and done.result == {"codes": [0]}
    assert "hello from child" in Path(done.log_path).read_text()
    t = store.get_task(task.id)
    assert t.status == "completed" and t.active_run_id is None
    assert t.steps["train_sovits"].status == "completed"


def test_nonzero_exit_fails_with_message(env):
    settings, store, runner = env

    def execute(ctx):
        codes = ctx.run([Command([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])])
        if codes != [0]:
            raise StepFailed(f"engine exited with {codes[0]}")
        return {}

    task, run = _submit(settings, store, runner, execute)
    done = wait_for(_finished(store, run.id))
    assert done.status == "failed" and "exited with 3" in done.error_message
    assert store.get_task(task.id).error_message == done.error_message


def test_cancel_kills_whole_group_including_sigterm_ignoring_children(env, tmp_path):
    settings, store, runner = env
    script = tmp_path / "family.py"
    script.write_text(FAMILY)
    pids_file = tmp_path / "pids"
    lines = []

    def execute(ctx):
        ctx.run([Command([sys.executable, str(script), str(pids_file)])], on_line=lines.append)
        return {}

    task, run = _submit(settings, store, runner, execute)
    pids = [int(p) for p in wait_for(lambda: pids_file.exists() and pids_file.read_text().split(),
                                     what="children started")]
    assert len(pids) == 3 and all(psutil.pid_exists(p) for p in pids)
    pgid = os.getpgid(pids[0])
    assert pgid != os.getpgid(0)  # its own process group, not ours
    wait_for(lambda: store.get_run(run.id).pgids, what="pgids recorded")
    wait_for(lambda: any("Train Epoch" in ln for ln in lines), what="output parsed while running")
    t0 = time.monotonic()
    runner.cancel(store.get_run(run.id))
    done = wait_for(_finished(store, run.id), timeout=20)
    assert done.status == "cancelled" and done.reason == "cancelled_by_user"
    # children ignore SIGTERM, so the SIGKILL after the 1 s grace is what stopped them
    assert time.monotonic() - t0 >= 1.0
    survivors = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert survivors == []
    assert not group_alive(pgid)
    assert store.get_task(task.id).status == "cancelled"


def test_step_exception_becomes_failed_run_with_traceback_in_log(env):
    settings, store, runner = env

    def execute(ctx):
        raise RuntimeError("bug in step")

    _task, run = _submit(settings, store, runner, execute)
    done = wait_for(_finished(store, run.id))
    assert done.status == "failed" and "bug in step" in done.error_message
    assert "Traceback" in Path(done.log_path).read_text()


def test_recover_marks_dead_owner_runs_interrupted_and_kills_orphans(env, tmp_path):
    settings, store, runner = env
    task = store.create_task("t", {"exp_name": "x"})
    ws = task_workspace(Path(settings.task_root), task.id, "x")
    run = runner.lifecycle.start_run(task.id, "train_gpt", {}, lambda rid: ws.run_log("train_gpt", rid),
                          owner="somehost:1:1.0")
    runner.lifecycle.mark_running(run.id, "otherhost:999999:1.0")  # an owner that is not alive
    orphan = psutil.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    runner.lifecycle.set_pgids(run.id, [orphan.pid])
    fresh = LocalRunner(store, runner.lifecycle, settings, max_workers=1)
    recovered = fresh.recover()
    assert [r.id for r in recovered] == [run.id]
    row = store.get_run(run.id)
    assert row.status == "failed" and row.reason == "interrupted"
    orphan.wait(10)
    assert not group_alive(orphan.pid)
    t = store.get_task(task.id)
    assert t.status == "failed" and t.active_run_id is None
    fresh.shutdown()


def test_completed_rerun_marks_consumers_stale(env):
    settings, store, runner = env
    task, run = _submit(settings, store, runner, lambda ctx: {})
    wait_for(_finished(store, run.id))
    with store.db.begin() as c:  # pretend inference had completed before
        from sqlalchemy import update
        from gsv_service.models import TaskStep
        c.execute(update(TaskStep.__table__).where(TaskStep.__table__.c.task_id == task.id,
                                                   TaskStep.__table__.c.step == "test_inference")
                  .values(status="completed"))
    run2 = runner.lifecycle.start_run(task.id, "train_sovits", {}, lambda rid: "/dev/null", owner=runner.owner)
    runner.lifecycle.mark_running(run2.id, runner.owner)
    runner.lifecycle.finish_run(run2.id, RunStatus.completed, result={}, invalidates=["test_inference"])
    assert store.get_task(task.id).steps["test_inference"].status == "stale"
