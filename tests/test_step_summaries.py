"""Status people can read: a finished run's message summarises its result (converted 5 of 7 and
which failed, slices without a transcript...), and the task view says how far the task got and
whether it has trained weights, so `completed` after convert_audio is not taken for a voice."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from gsv_service.api.views import task_view
from gsv_service.records import StepState, TaskRecord
from gsv_service.states import RunStatus, TaskStatus
from gsv_service.task_config import TaskConfig
from gsv_service.steps.registry import STEP_NAMES
from gsv_service.steps.summaries import short_reason, summarise
from tests.audio_fixtures import have_tools, text_as_wav, zero_bytes
from tests.engine_support import run_step, tone


@pytest.fixture
def db_url():  # the summaries do not depend on the database
    return None


def _task(tid: str, statuses: dict[str, str], status: str = "completed", current: str | None = None,
          messages: dict[str, str] | None = None, error: str | None = None) -> TaskRecord:
    steps = {s: StepState(step=s, status=RunStatus(statuses.get(s, "pending")), message=(messages or {}).get(s))
             for s in STEP_NAMES}
    now = datetime.now(timezone.utc)
    return TaskRecord(id=tid, seq=1, name="demo", status=TaskStatus(status), current_step=current, progress=0.0,
                      error_message=error, config=TaskConfig(), active_run_id=None, active_pipeline_id=None,
                      created_at=now, updated_at=now, steps=steps)


def test_the_task_view_says_how_far_it_got():
    audio_only = task_view(_task("t1", {"convert_audio": "completed"}, current="convert_audio",
                                 messages={"convert_audio": "converted 5 of 7; failed: fake.wav (not audio)"}))
    assert audio_only["status"] == "completed" and audio_only["has_weights"] is False
    assert audio_only["last_completed_step"] == "convert_audio"
    assert audio_only["summary"] == ("convert_audio completed: converted 5 of 7; failed: fake.wav (not audio); "
                                     "not trained yet (1 of 11 steps completed, no weights)")

    every = {s: "completed" for s in STEP_NAMES if s != "denoise_audio"}
    trained = task_view(_task("t1", every, current="test_inference",
                              messages={"test_inference": "wrote output/output.wav"}))
    assert trained["has_weights"] is True and trained["last_completed_step"] == "test_inference"
    assert trained["summary"].endswith("trained weights are ready (GET /api/v1/task/t1/models)")

    stale = task_view(_task("t1", {**every, "train_sovits": "stale", "train_gpt": "stale"}))
    assert stale["has_weights"] is True  # weights from older inputs are still weights

    fresh = task_view(_task("t1", {}, status="created"))
    assert fresh["last_completed_step"] is None and fresh["has_weights"] is False
    assert fresh["summary"].startswith("nothing has run yet")

    failed = task_view(_task("t1", {"convert_audio": "completed", "slice_audio": "completed",
                                    "asr_transcribe": "completed", "extract_text_features": "failed",
                                    "extract_audio_features": "completed"}, status="failed",
                             current="extract_audio_features",
                             error="step extract_text_features failed: 2 of 6 items dropped\ntraceback..."))
    assert failed["summary"].startswith("extract_text_features failed: 2 of 6 items dropped;")


def test_each_step_summarises_its_result():
    assert short_reason("empty file (0 bytes); upload it again") == "0 bytes"
    assert short_reason("not a readable audio or video file (Invalid data found)") == "not audio"
    assert summarise("convert_audio", {"converted": 5, "uploads": 7, "failed": 2, "errors": [
        {"item": "fake.wav", "error": "not a readable audio or video file (x)"},
        {"item": "empty.flac", "error": "empty file (0 bytes); upload it again"}]}) == \
        "converted 5 of 7; failed: empty.flac (0 bytes), fake.wav (not audio)"
    assert summarise("slice_audio", {"slices": 4, "files": 1, "seconds": 17.25, "min_seconds": 3.44,
                                     "max_seconds": 5.03, "errors": []}) == \
        "cut 1 recording into 4 slices (17.25 s, 3.4-5.0 s each)"
    assert summarise("denoise_audio", {"method": "spectral", "files": 4, "failed": 0, "errors": []}) == \
        "denoised 4 slices (spectral)"
    assert summarise("asr_transcribe", {"method": "provided", "lines": 2, "slices": 4, "missing": ["a.wav", "b.wav"],
                                        "extra": [], "empty": []}) == \
        "transcribed 2 of 4 slices (provided); no transcript: a.wav, b.wav"
    assert summarise("asr_transcribe", {"method": "funasr", "lines": 3, "slices": 4, "skipped_by_engine": ["c.wav"],
                                        "empty": []}) == "transcribed 3 of 4 slices (funasr); no transcript: c.wav"
    assert summarise("extract_text_features", {"items": 4, "expected": 4}) is None  # its own line stays
    assert summarise("extract_text_features", {"items": 3, "expected": 4, "dropped": [
        {"item": "d.wav", "reason": "the engine raised on it"}]}) == \
        "3 of 4 items; dropped: d.wav (the engine raised on it)"
    assert summarise("train_sovits", {"epochs": 2, "latest": "spk_e2_s200.pth", "resumed": True}) == \
        "trained 2 epochs (resumed from a checkpoint); latest weights: spk_e2_s200.pth"
    assert summarise("test_inference", {"output": "output/output.wav", "duration": 1.62}) == \
        "wrote output/output.wav (1.62 s)"
    assert summarise("convert_audio", {"unexpected": True}) == "converted 0 of 0"
    assert summarise("no_such_step", {"x": 1}) is None and summarise("convert_audio", None) is None


def _create(client, name: str) -> str:
    r = client.post("/api/v1/task/create", json={"task_name": name, "config": {"exp_name": "spk"}})
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


@pytest.mark.skipif(not have_tools(), reason="ffmpeg is needed")
def test_convert_says_how_many_and_which_failed(client, tmp_path: Path):
    tid = _create(client, "mixed")
    files = [tone(tmp_path / f"take{i}.wav", 1.0, 200 + 30 * i) for i in range(5)]
    files += [text_as_wav(tmp_path / "fake.wav"), zero_bytes(tmp_path / "empty.flac")]
    r = client.post(f"/api/v1/task/{tid}/files/upload", files=[("files", (p.name, p.read_bytes())) for p in files])
    assert r.status_code == 200, r.text
    run = run_step(client, tid, "convert_audio")
    assert run["status"] == "completed"
    assert run["message"] == "converted 5 of 7; failed: empty.flac (0 bytes), fake.wav (not audio)"
    task = client.get(f"/api/v1/task/{tid}").json()
    assert task["status"] == "completed"  # the original clients' field, unchanged...
    assert task["steps"]["convert_audio"]["message"] == run["message"]
    assert task["last_completed_step"] == "convert_audio" and task["has_weights"] is False  # ...and what it means
    assert task["summary"].startswith("convert_audio completed: converted 5 of 7; failed: empty.flac (0 bytes)")
    assert "not trained yet (1 of 11 steps completed" in task["summary"]

    tid2 = _create(client, "bad")
    bad = [text_as_wav(tmp_path / "notes.wav"), zero_bytes(tmp_path / "empty.mp3")]
    client.post(f"/api/v1/task/{tid2}/files/upload", files=[("files", (p.name, p.read_bytes())) for p in bad])
    run = run_step(client, tid2, "convert_audio")
    assert run["status"] == "failed"
    assert run["message"] == "converted 0 of 2; failed: empty.mp3 (0 bytes), notes.wav (not audio)"
