"""GPU/CPU-slot scheduling: FIFO, no overlap on a resource, reservation, cap, cancel while queued."""

from __future__ import annotations

import sys
import time

import pytest

from gsv_service.procs import Command
from gsv_service.scheduler import Scheduler
from tests.conftest import runner_env, submit_run, wait_for

SLEEP = [sys.executable, "-c", "import time; time.sleep(0.4)"]


@pytest.fixture
def env(tmp_path, db_url):
    with runner_env(tmp_path, db_url, max_workers=4, cpu_slots=1) as e:
        yield e


def submit(settings, store, runner, resources, step="train_sovits", argv=SLEEP):
    def execute(ctx):
        ctx.run([Command(argv)])
        return {"leases": ctx.leases}

    return submit_run(settings, store, runner, execute, step, resources)[1].id


def finished(store, ids):
    def check():
        runs = [store.get_run(i) for i in ids]
        return runs if all(r.status in ("completed", "failed", "cancelled") for r in runs) else None
    return check


def intervals(runs):
    return [(r.started_at, r.finished_at) for r in runs]


def test_one_cpu_slot_runs_three_tasks_fifo_without_overlap(env):
    settings, store, runner = env
    ids = []
    for _ in range(3):
        ids.append(submit(settings, store, runner, {"cpu_slots": 1}))
        time.sleep(0.01)
    runs = wait_for(finished(store, ids), timeout=30)
    assert [r.status for r in runs] == ["completed"] * 3
    spans = intervals(runs)
    assert spans == sorted(spans)  # FIFO: started in submission order
    for (s1, e1), (s2, _e2) in zip(spans, spans[1:]):
        assert e1 <= s2, "two runs held the only CPU slot at once"
    assert all(r.result["leases"] == ["cpu:0"] for r in runs)


def test_steps_without_resources_do_not_wait_for_gpus(env):
    settings, store, runner = env
    gpu_run = submit(settings, store, runner, {"cpu_slots": 1},
                     argv=[sys.executable, "-c", "import time; time.sleep(1.5)"])
    plain = submit(settings, store, runner, None, step="slice_audio")
    runs = wait_for(finished(store, [gpu_run, plain]), timeout=30)
    assert runs[1].finished_at < runs[0].finished_at


def test_gpu_sets_reserve_fifo_and_disjoint_sets_share(env, tmp_path):
    settings, store, runner = env
    a = submit(settings, store, runner, {"gpus": ["0", "1"]})
    time.sleep(0.05)
    b = submit(settings, store, runner, {"gpus": ["0"]})
    time.sleep(0.01)
    c = submit(settings, store, runner, {"gpus": ["1"]})
    runs = wait_for(finished(store, [a, b, c]), timeout=30)
    ra, rb, rc = runs
    assert ra.finished_at <= rb.started_at and ra.finished_at <= rc.started_at
    # b and c use different GPUs: they overlap
    assert rb.started_at < rc.finished_at and rc.started_at < rb.finished_at
    assert rb.result["leases"] == ["gpu:0"] and rc.result["leases"] == ["gpu:1"]


def test_queue_position_and_cancel_while_queued(env):
    settings, store, runner = env
    first = submit(settings, store, runner, {"cpu_slots": 1},
                   argv=[sys.executable, "-c", "import time; time.sleep(2)"])
    wait_for(lambda: store.get_run(first).status == "running")
    second = submit(settings, store, runner, {"cpu_slots": 1})
    third = submit(settings, store, runner, {"cpu_slots": 1})
    sched = Scheduler(store.db, 1)
    assert sched.position(second) == 1 and sched.position(third) == 2
    assert sched.position(first) is None  # holds its lease
    runner.cancel(store.get_run(second))
    assert store.get_run(second).status == "cancelled"
    assert sched.position(third) == 1
    runs = wait_for(finished(store, [first, third]), timeout=30)
    assert [r.status for r in runs] == ["completed", "completed"]
    assert store.get_run(second).started_at is None
    assert sched.leases_of(first) == [] and sched.leases_of(third) == []


def test_cap_limits_concurrent_runs(tmp_path, db_url):
    with runner_env(tmp_path, db_url, max_workers=1) as (settings, store, runner):
        ids = [submit(settings, store, runner, None, step="slice_audio") for _ in range(3)]
        runs = wait_for(finished(store, ids), timeout=30)
        spans = sorted(intervals(runs))
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:]))
