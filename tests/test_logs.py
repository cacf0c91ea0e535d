"""Step-run logs over HTTP: tail, choose a run or step, bounded tail, follow while running."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import LiveServer, server_env
from tests.engine_support import DOUBLE, DOUBLE_PYTHON, arrange_inputs, zh_lines

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def srv(tmp_path):
    s = LiveServer(server_env(tmp_path, None, GSV_ROOT=str(DOUBLE), GSV_PYTHON=DOUBLE_PYTHON,
                              DOUBLE_ITEM_DELAY_S="0.3"), tmp_path).start()
    yield s
    s.stop()


def _task(api: str, tmp_path) -> str:
    tid = httpx.post(api + "/task/create", json={"task_name": "logs", "config": {"exp_name": "spk"}}).json()["task_id"]
    arrange_inputs(tmp_path / "api_tasks" / tid, "spk", zh_lines(4))
    return tid


def _wait(api, tid, run_id):
    deadline = time.monotonic() + 60
    while httpx.get(f"{api}/task/{tid}/runs/{run_id}").json()["status"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_logs_tail_by_run_and_step_and_follow(srv, tmp_path):
    api = srv.url + "/api/v1"
    tid = _task(api, tmp_path)
    assert httpx.get(f"{api}/task/{tid}/logs").json() == {"logs": "", "run_id": None, "step": None,
                                                          "status": None, "truncated": False}
    run1 = httpx.post(f"{api}/task/{tid}/step/extract_text_features", json={}).json()["run_id"]
    # follow streams the log while the run is active and ends when it ends
    with httpx.stream("GET", f"{api}/task/{tid}/logs", params={"follow": "true"}, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        followed = "".join(r.iter_text())
    assert "1-get-text.py" in followed and "[service] completed" in followed
    run = httpx.get(f"{api}/task/{tid}/runs/{run1}").json()
    assert run["status"] == "completed"
    full = httpx.get(f"{api}/task/{tid}/logs").json()
    assert full["run_id"] == run1 and full["step"] == "extract_text_features" and full["status"] == "completed"
    assert full["logs"].endswith("[service] completed\n")
    # the original client reads {"logs": ...}
    assert "1-get-text.py" in full["logs"]
    run2 = httpx.post(f"{api}/task/{tid}/step/extract_audio_features", json={}).json()["run_id"]
    _wait(api, tid, run2)
    assert httpx.get(f"{api}/task/{tid}/logs").json()["run_id"] == run2  # the latest run by default
    assert httpx.get(f"{api}/task/{tid}/logs", params={"run_id": run1}).json()["logs"] == full["logs"]
    by_step = httpx.get(f"{api}/task/{tid}/logs", params={"step": "extract_text_features"}).json()
    assert by_step["run_id"] == run1
    small = httpx.get(f"{api}/task/{tid}/logs", params={"run_id": run1, "tail_bytes": 40}).json()
    assert small["truncated"] is True and len(small["logs"].encode()) <= 40
    assert full["logs"].endswith(small["logs"])
    for bad in ({"run_id": "nope"}, {"step": "nope"}, {"tail": 0}):
        r = httpx.get(f"{api}/task/{tid}/logs", params=bad)
        assert r.status_code in (404, 422) and "detail" in r.json()
