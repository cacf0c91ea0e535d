"""The one-call pipeline against the contract double: end to end, failure and resume, review
pause, cancel, graph concurrency, and GPU queueing across tasks through the API."""

from __future__ import annotations

import time

import pytest

from gsv_service.pipeline import dependencies
from gsv_service.steps.registry import STEP_NAMES
from tests.audio_fixtures import long_speech
from tests.engine_support import create_task, double_settings, service, slices_transcript, task_dir

pytestmark = pytest.mark.timeout(240)
FAST = {"epochs_s2": 1, "epochs_s1": 1, "batch_size": 2, "save_every_epoch_s2": 1, "save_every_epoch_s1": 1}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from tests.audio_fixtures import have_tools
    if not have_tools():
        pytest.skip("espeak-ng and ffmpeg are needed")
    return long_speech(tmp_path_factory.mktemp("rec") / "reading.wav", n=6, lang="zh")


def wait_pipeline(client, tid: str, timeout: float = 120, until=("completed", "failed", "cancelled",
                                                                  "awaiting_review")) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/task/{tid}/pipeline")
        if r.status_code == 200 and r.json()["status"] in until:
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"pipeline did not end: {client.get(f'/api/v1/task/{tid}/pipeline').json()}")


def prepared_task(client, recording, **cfg) -> str:
    """A task with its recording sliced and a reviewed transcript uploaded (method provided)."""
    tid = create_task(client, **{**FAST, **cfg})["task_id"]
    with open(recording.path, "rb") as f:
        assert client.post(f"/api/v1/task/{tid}/files/upload", files={"file": ("reading.wav", f)}).status_code == 200
    r = client.post(f"/api/v1/task/{tid}/run", json={"to_step": "slice_audio"})
    assert r.status_code == 202, r.text
    assert wait_pipeline(client, tid)["status"] == "completed"
    texts = ["今天天气很好，我们一起去公园散步吧。", "这本书讲述了一个关于勇气和友谊的故事。",
             "请把桌子上的文件交给明天来开会的同事。", "春天来了，花园里的花都开得非常漂亮。"] * 2
    listing = slices_transcript(client, tid, recording.spans, texts[:6]).replace("{LANG}", "ZH")
    r = client.post(f"/api/v1/task/{tid}/files/upload", files={"file": ("reviewed.list", listing.encode())})
    assert r.status_code == 200
    return tid


def runs_by_step(client, tid) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for run in client.get(f"/api/v1/task/{tid}/runs").json():
        out.setdefault(run["step"], []).append(run)
    return out


def test_dependency_graph_lets_independent_steps_overlap():
    deps = dependencies(list(STEP_NAMES))
    assert deps["extract_text_features"] == {"asr_transcribe"}
    assert "extract_text_features" not in deps["extract_audio_features"]
    assert deps["extract_speaker_vectors"] == deps["extract_semantic_features"] == {"extract_audio_features"}
    assert "train_sovits" not in deps["train_gpt"]
    assert deps["test_inference"] >= {"train_sovits", "train_gpt"}


def test_whole_pipeline_produces_weights_and_inference(tmp_path, recording):
    settings = double_settings(tmp_path, cpu_slots=2)
    with service(settings) as client:
        tid = prepared_task(client, recording)
        r = client.post(f"/api/v1/task/{tid}/run", json={"steps_params": {
            "test_inference": {"target_text": "你好，世界。"}}})
        assert r.status_code == 202, r.text
        # a running pipeline owns its task
        assert client.post(f"/api/v1/task/{tid}/step/slice_audio", json={}).status_code == 409
        p = wait_pipeline(client, tid, timeout=180)
        assert p["status"] == "completed", p
        task = client.get(f"/api/v1/task/{tid}").json()
        assert task["status"] == "completed" and task["progress"] == pytest.approx(100.0 - 3 / 87 * 100, abs=0.5)
        states = {s: v["status"] for s, v in task["steps"].items()}
        assert states.pop("denoise_audio") == "pending"  # off in the task config, as in the web UI
        assert set(states.values()) == {"completed"}
        root = task_dir(settings, tid)
        assert list((root / "weights" / "sovits").glob("*.pth")) and list((root / "weights" / "gpt").glob("*.ckpt"))
        assert client.get(f"/api/v1/task/{tid}/files/download/output.wav").status_code == 200
        runs = runs_by_step(client, tid)
        assert all(len(v) == 1 for v in runs.values())  # slice ran once: kept, not redone


def test_failure_stops_the_pipeline_and_a_second_call_resumes(tmp_path, recording, monkeypatch):
    settings = double_settings(tmp_path, cpu_slots=2)
    with service(settings) as client:
        tid = prepared_task(client, recording)
        monkeypatch.setenv("DOUBLE_CRASH", "semantic")
        client.post(f"/api/v1/task/{tid}/run", json={"to_step": "train_gpt"})
        p = wait_pipeline(client, tid)
        assert p["status"] == "failed" and p["failed_step"] == "extract_semantic_features"
        assert "extract_semantic_features" in p["error_message"]
        task = client.get(f"/api/v1/task/{tid}").json()
        assert task["status"] == "failed" and "extract_semantic_features" in task["error_message"]
        assert task["steps"]["train_sovits"]["status"] == "pending"  # never started after the failure
        before = runs_by_step(client, tid)
        monkeypatch.delenv("DOUBLE_CRASH")
        client.post(f"/api/v1/task/{tid}/run", json={"to_step": "train_gpt"})
        assert wait_pipeline(client, tid)["status"] == "completed"
        after = runs_by_step(client, tid)
        for kept in ("convert_audio", "slice_audio", "asr_transcribe", "extract_text_features",
                     "extract_audio_features"):
            assert len(after[kept]) == len(before[kept]), kept  # completed steps were kept
        assert len(after["extract_semantic_features"]) == 2
        assert after["train_gpt"][-1]["status"] == "completed"


def test_review_pause_then_approve(tmp_path, recording):
    settings = double_settings(tmp_path)
    with service(settings) as client:
        tid = prepared_task(client, recording)
        client.post(f"/api/v1/task/{tid}/run", json={"to_step": "extract_text_features",
                                                     "stop_after_asr_for_review": True})
        p = wait_pipeline(client, tid)
        assert p["status"] == "awaiting_review"
        task = client.get(f"/api/v1/task/{tid}").json()
        assert task["status"] == "awaiting_review"
        assert task["steps"]["asr_transcribe"]["status"] == "completed"
        assert task["steps"]["extract_text_features"]["status"] == "pending"
        lines = client.get(f"/api/v1/task/{tid}/transcripts").json()
        assert lines
        r = client.post(f"/api/v1/task/{tid}/transcripts/approve")
        assert r.status_code == 202, r.text
        assert wait_pipeline(client, tid, until=("completed", "failed"))["status"] == "completed"
        assert client.get(f"/api/v1/task/{tid}").json()["steps"]["extract_text_features"]["status"] == "completed"
        assert client.post(f"/api/v1/task/{tid}/transcripts/approve").status_code == 409


def test_cancel_stops_pipeline_and_its_processes(tmp_path, recording, monkeypatch):
    import psutil
    pidfile = tmp_path / "pids"
    settings = double_settings(tmp_path)
    with service(settings) as client:
        tid = prepared_task(client, recording)
        monkeypatch.setenv("DOUBLE_STEP_S", "0.5")
        monkeypatch.setenv("DOUBLE_PIDFILE", str(pidfile))
        client.post(f"/api/v1/task/{tid}/run", json={"to_step": "train_sovits"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (pidfile.exists() and pidfile.read_text().split()):
            time.sleep(0.1)
        pids = [int(p) for p in pidfile.read_text().split()]
        r = client.post(f"/api/v1/task/{tid}/cancel")
        assert r.status_code == 200 and r.json()["cancelled"] is True
        p = wait_pipeline(client, tid, until=("cancelled",), timeout=60)
        assert p["status"] == "cancelled"
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert alive == []
        task = client.get(f"/api/v1/task/{tid}").json()
        assert task["status"] == "cancelled" and task["steps"]["train_sovits"]["status"] == "cancelled"
        assert task["active_run_id"] is None


def _overlap(a: dict, b: dict) -> bool:
    return a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]


@pytest.mark.parametrize("parallel", [True, False])
def test_parallel_flag_controls_graph_concurrency(tmp_path, recording, monkeypatch, parallel):
    settings = double_settings(tmp_path, cpu_slots=2)
    with service(settings) as client:
        tid = prepared_task(client, recording)
        monkeypatch.setenv("DOUBLE_ITEM_DELAY_S", "0.3")
        client.post(f"/api/v1/task/{tid}/run", json={"to_step": "extract_audio_features", "parallel": parallel})
        assert wait_pipeline(client, tid)["status"] == "completed"
        runs = runs_by_step(client, tid)
        text, audio = runs["extract_text_features"][-1], runs["extract_audio_features"][-1]
        assert _overlap(text, audio) is parallel


def test_gpu_queue_across_three_tasks_is_fifo_without_overlap(tmp_path, recording, monkeypatch):
    """One GPU (GSV_GPUS=0) and three tasks wanting it: one at a time, in the order asked."""
    settings = double_settings(tmp_path, gpus="0")
    with service(settings) as client:
        tids = [prepared_task(client, recording) for _ in range(3)]
        for tid in tids:
            client.post(f"/api/v1/task/{tid}/run", json={"to_step": "asr_transcribe"})
            wait_pipeline(client, tid)
        monkeypatch.setenv("DOUBLE_ITEM_DELAY_S", "0.2")
        run_ids = []
        for tid in tids:
            r = client.post(f"/api/v1/task/{tid}/step/extract_text_features", json={})
            assert r.status_code == 202
            run_ids.append((tid, r.json()["run_id"]))
        queued = client.get(f"/api/v1/task/{tids[2]}").json()
        assert queued["status"] in ("queued", "running")
        if queued["status"] == "queued":
            assert queued["queue_position"] in (1, 2)
        runs = []
        for tid, rid in run_ids:
            deadline = time.monotonic() + 90
            while (run := client.get(f"/api/v1/task/{tid}/runs/{rid}").json())["status"] not in (
                    "completed", "failed", "cancelled"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            runs.append(run)
        assert [r["status"] for r in runs] == ["completed"] * 3
        starts = [r["started_at"] for r in runs]
        assert starts == sorted(starts)
        for a, b in zip(runs, runs[1:]):
            assert a["finished_at"] <= b["started_at"]
