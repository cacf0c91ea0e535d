"""A crash in the middle of a pipeline (SIGKILL of the real server process): after a restart
the task says `interrupted`, no engine process survives, and POST /run continues the pipeline,
training resuming from its latest checkpoint."""

from __future__ import annotations

import time

import httpx
import psutil
import pytest

from tests.audio_fixtures import have_tools, long_speech
from tests.conftest import LiveServer, server_env
from tests.engine_support import DOUBLE, DOUBLE_PYTHON

pytestmark = pytest.mark.timeout(300)


def _wait(pred, timeout=90, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


def _alive(pids):
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_crash_mid_training_then_resume(tmp_path):
    if not have_tools():
        pytest.skip("espeak-ng and ffmpeg are needed")
    rec = long_speech(tmp_path / "rec" / "reading.wav", n=4, lang="zh")
    pidfile = tmp_path / "pids"
    env = server_env(tmp_path, None, GSV_ROOT=str(DOUBLE), GSV_PYTHON=DOUBLE_PYTHON, DOUBLE_STEP_S="0.05",
                     DOUBLE_PIDFILE=str(pidfile))
    srv = LiveServer(env, tmp_path).start()
    api = srv.url + "/api/v1"
    try:
        cfg = {"exp_name": "spk", "language": "zh", "epochs_s2": 3, "save_every_epoch_s2": 1, "batch_size": 2}
        tid = httpx.post(api + "/task/create", json={"task_name": "crash", "config": cfg}).json()["task_id"]
        with open(rec.path, "rb") as f:
            httpx.post(f"{api}/task/{tid}/files/upload", files={"file": ("reading.wav", f)})
        httpx.post(f"{api}/task/{tid}/run", json={"to_step": "slice_audio"})
        _wait(lambda: httpx.get(f"{api}/task/{tid}/pipeline").json()["status"] == "completed")
        sliced = httpx.get(f"{api}/task/{tid}/files", params={"folder": "sliced"}).json()["folders"]["sliced"]
        listing = "".join(f"{f['name']}|spk|ZH|今天天气很好，我们一起去公园散步吧。\n" for f in sliced)
        httpx.post(f"{api}/task/{tid}/files/upload", files={"file": ("t.list", listing.encode())})
        httpx.post(f"{api}/task/{tid}/run", json={"to_step": "train_sovits"})

        def in_epoch_two():
            step = httpx.get(f"{api}/task/{tid}").json()["steps"]["train_sovits"]
            return step["status"] == "running" and "epoch 2/" in (step["message"] or "")
        _wait(in_epoch_two, what="SoVITS training in epoch 2")
        pids = [int(p) for p in pidfile.read_text().split()]
        assert _alive(pids)
    finally:
        srv.kill()
    # the engine processes live in their own sessions: the crash did not take them down
    assert _alive(pids)
    srv = LiveServer(env, tmp_path).start()
    try:
        assert _alive(pids) == []  # start-up recovery killed the orphans
        api = srv.url + "/api/v1"
        task = httpx.get(f"{api}/task/{tid}").json()
        assert task["status"] == "failed" and task["active_pipeline_id"] is None
        run = httpx.get(f"{api}/task/{tid}/runs", params={"step": "train_sovits"}).json()[-1]
        assert run["status"] == "failed" and run["reason"] == "interrupted"
        p = httpx.get(f"{api}/task/{tid}/pipeline").json()
        assert p["status"] == "failed" and p["reason"] == "interrupted"
        assert httpx.post(f"{api}/task/{tid}/run", json={"to_step": "train_sovits"}).status_code == 202
        _wait(lambda: httpx.get(f"{api}/task/{tid}/pipeline").json()["status"] in ("completed", "failed"),
              what="resumed pipeline")
        assert httpx.get(f"{api}/task/{tid}/pipeline").json()["status"] == "completed"
        runs = httpx.get(f"{api}/task/{tid}/runs", params={"step": "train_sovits"}).json()
        assert runs[-1]["status"] == "completed" and runs[-1]["result"]["resumed"] is True
        # steps before the crash were kept
        assert len(httpx.get(f"{api}/task/{tid}/runs", params={"step": "extract_text_features"}).json()) == 1
    finally:
        srv.stop()
