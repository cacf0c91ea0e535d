"""A live server driving the engine's contract double, and a task trained through it the way
API_USAGE_GUIDE.md does it: reading.wav uploaded, sliced, one .txt per slice, the rest of the
pipeline. Shared by tests/test_openapi.py and tests/test_api_guide.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.audio_fixtures import long_speech
from tests.conftest import LiveServer, server_env
from tests.engine_support import DOUBLE, DOUBLE_PYTHON

CONFIG = {"exp_name": "spk", "language": "en", "epochs_s2": 1, "epochs_s1": 1, "batch_size": 1}
TEXT = "Some words read aloud."
ENDED = ("completed", "failed", "cancelled", "awaiting_review")


@contextmanager
def double_server(tmp_path: Path, **env: str) -> Iterator[LiveServer]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    srv = LiveServer(server_env(tmp_path, None, GSV_ROOT=str(DOUBLE), GSV_PYTHON=DOUBLE_PYTHON,
                                GSV_CPU_SLOTS="2", **env), tmp_path).start()
    try:
        yield srv
    finally:
        srv.stop()


def reading(folder: Path) -> Path:
    """The guide's recording: four sentences read aloud, 19.3 s (espeak-ng, so always the same)."""
    return long_speech(folder / "reading.wav", n=4).path


def wait_until(fn: Callable[[], object], what: str, timeout: float = 120.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def pipeline_ended(c: httpx.Client, tid: str, until: tuple[str, ...] = ENDED, timeout: float = 120.0) -> dict:
    def ended() -> dict | None:
        r = c.get(f"/api/v1/task/{tid}/pipeline")
        return r.json() if r.status_code == 200 and r.json()["status"] in until else None
    return wait_until(ended, f"the pipeline of {tid} to end", timeout)  # type: ignore[return-value]


def idle(c: httpx.Client, tid: str, timeout: float = 120.0) -> dict:
    def free() -> dict | None:
        t = c.get(f"/api/v1/task/{tid}").json()
        return t if not (t["active_run_id"] or t["active_pipeline_id"]) else None
    return wait_until(free, f"task {tid} to be idle", timeout)  # type: ignore[return-value]


def create(c: httpx.Client, name: str = "demo") -> str:
    r = c.post("/api/v1/task/create", json={"task_name": name, "config": CONFIG})
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def upload_recording(c: httpx.Client, tid: str, wav: Path) -> None:
    with open(wav, "rb") as f:
        r = c.post(f"/api/v1/task/{tid}/files/upload", files={"file": ("reading.wav", f)})
    assert r.status_code == 200, r.text


def transcript_files(c: httpx.Client, tid: str, out: Path, missing: int = 0) -> list[Path]:
    """One .txt per slice of the task, named after it (asr_transcribe method 'provided'), but for
    the last `missing` slices."""
    out.mkdir(parents=True, exist_ok=True)
    sliced = c.get(f"/api/v1/task/{tid}/files", params={"folder": "sliced"}).json()["folders"]["sliced"]
    paths = []
    for f in sliced[:len(sliced) - missing]:
        p = out / (Path(f["name"]).stem + ".txt")
        p.write_text(TEXT + "\n", encoding="utf-8")
        paths.append(p)
    return paths


def sliced_with_transcripts(c: httpx.Client, wav: Path, work: Path, name: str = "demo", missing: int = 0) -> str:
    """A task with reading.wav converted and sliced, and its transcripts uploaded (but for the last
    `missing` slices)."""
    tid = create(c, name)
    upload_recording(c, tid, wav)
    assert c.post(f"/api/v1/task/{tid}/run", json={"to_step": "slice_audio"}).status_code == 202
    assert pipeline_ended(c, tid)["status"] == "completed"
    txts = transcript_files(c, tid, work / tid, missing)
    r = c.post(f"/api/v1/task/{tid}/files/upload",
               files=[("files", (p.name, p.read_bytes(), "text/plain")) for p in txts])
    assert r.status_code == 200, r.text
    return tid


def trained(c: httpx.Client, wav: Path, work: Path, name: str = "demo", missing: int = 0) -> str:
    """A task that went through every step (denoise_audio off, as by default)."""
    tid = sliced_with_transcripts(c, wav, work, name, missing)
    r = c.post(f"/api/v1/task/{tid}/run", json={"steps_params": {
        "asr_transcribe": {"method": "provided"}, "test_inference": {"target_text": "Hello."}}})
    assert r.status_code == 202, r.text
    p = pipeline_ended(c, tid, timeout=180)
    assert p["status"] == "completed", p
    return tid
