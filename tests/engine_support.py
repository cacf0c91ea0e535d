"""Helpers for the engine-step tests: the contract double, task inputs arranged on disk, and
running steps through the HTTP API until they finish."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
from fastapi.testclient import TestClient

from gsv_service.app import create_app
from tests.conftest import make_settings

DOUBLE = Path(__file__).resolve().parent / "engine_double"
# The double's engine interpreter: this one with stub torch, transformers, gradio, nltk... first on
# its path (tests/engine_double/stub_site), so the doctor's probe finds a healthy environment.
DOUBLE_PYTHON = str(DOUBLE / "python")
FEATURE_STEPS = ("extract_text_features", "extract_audio_features", "extract_speaker_vectors",
                 "extract_semantic_features")
FINISHED = ("completed", "failed", "cancelled")

ZH_LINES = ("今天天气很好。", "我们一起去公园散步吧。", "这本书讲述了一个故事。", "请把文件交给同事。",
            "春天来了，花都开了。")


def double_settings(tmp_path: Path, **over):
    """Service settings pointing at the contract double and its interpreter."""
    values = dict(engine_root=DOUBLE, engine_python=DOUBLE_PYTHON)
    values.update(over)
    return make_settings(tmp_path, None, **values)


@contextmanager
def service(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def tone(path: Path, seconds: float, freq: float = 220.0, sr: int = 32000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t), sr, subtype="PCM_16")
    return path


def create_task(client: TestClient, **config) -> dict:
    config = {"exp_name": "spk", "language": "zh", **config}
    r = client.post("/api/v1/task/create", json={"task_name": "engine test", "config": config})
    assert r.status_code == 200, r.text
    return r.json()


def task_dir(settings, task_id: str) -> Path:
    return Path(settings.task_root).resolve() / task_id


def arrange_inputs(root: Path, exp: str, lines: list[tuple[str, str, str]], seconds: float = 4.0,
                   wav_dir: str = "sliced") -> Path:
    """sliced/{name} and transcripts/{exp}.list as steps 2 and 4 would leave them.
    lines: (wav name, LANG, text)."""
    rows = []
    for i, (name, lang, text) in enumerate(lines):
        wav = tone(root / wav_dir / name, seconds, 180 + 20 * i)
        rows.append(f"{wav}|{exp}|{lang}|{text}")
    lst = root / "transcripts" / f"{exp}.list"
    lst.parent.mkdir(parents=True, exist_ok=True)
    lst.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return lst


def zh_lines(n: int = 5) -> list[tuple[str, str, str]]:
    return [(f"utt_{i:02d}.wav", "ZH", ZH_LINES[i % len(ZH_LINES)]) for i in range(n)]


def start_step(client: TestClient, task_id: str, step: str, **params) -> dict:
    r = client.post(f"/api/v1/task/{task_id}/step/{step}", json={"params": params})
    assert r.status_code == 202, r.text
    return r.json()


def wait_run(client: TestClient, task_id: str, run_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/task/{task_id}/runs/{run_id}").json()
        if run["status"] in FINISHED:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def run_step(client: TestClient, task_id: str, step: str, timeout: float = 60, **params) -> dict:
    started = start_step(client, task_id, step, **params)
    return wait_run(client, task_id, started["run_id"], timeout)


def completed(run: dict) -> dict:
    assert run["status"] == "completed", f"{run['step']}: {run['status']}: {run['error_message']}"
    return run


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root with its content hash (to prove nothing was written there)."""
    return {p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


# ---------- a real checkout (tests/test_real_engine.py, bench/bench_engine.py) ----------
REAL_ROOT_ENV, REAL_PY_ENV = "GSV_ROOT", "GSV_PYTHON"
TINY_VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")


def real_engine_env() -> tuple[Path, str] | None:
    """(checkout, interpreter) from GSV_ROOT / GSV_PYTHON, or None when no checkout is named."""
    import os

    root = os.environ.get(REAL_ROOT_ENV)
    if not root:
        return None
    return Path(root).resolve(), os.environ.get(REAL_PY_ENV) or sys.executable


def ensure_tiny_models(root: Path, python: str, out: Path, versions: list[str]) -> Path:
    """tools/make_tiny_models.py with the engine's interpreter, once per folder."""
    import subprocess

    stamp = out / ".tiny-models.json"
    if stamp.is_file() and set(versions) <= set(__import__("json").loads(stamp.read_text())):
        return out
    tool = Path(__file__).resolve().parents[1] / "tools" / "make_tiny_models.py"
    subprocess.run([python, str(tool), "--root", str(root), "--out", str(out), "--versions", *versions],
                   check=True, timeout=1800, stdout=subprocess.DEVNULL)
    stamp.write_text(__import__("json").dumps(sorted(set(versions))))
    return out


def slices_transcript(client: TestClient, tid: str, spans, texts, sr: int = 32000) -> str:
    """A .list for the task's slices: each slice gets the sentences whose middle lies inside it
    (what a person checking the ASR output would write)."""
    from gsv_service.audio.slicer import parse_slice_name

    files = client.get(f"/api/v1/task/{tid}/files", params={"folder": "sliced"}).json()["folders"]["sliced"]
    rows = []
    for f in files:
        parsed = parse_slice_name(f["name"])
        assert parsed, f["name"]
        a, b = parsed[1] / sr, parsed[2] / sr
        said = [t for (s0, s1), t in zip(spans, texts) if a <= (s0 + s1) / 2 <= b]
        if said:
            rows.append(f"{f['name']}|spk|{{LANG}}|{' '.join(said)}")
    return "\n".join(rows) + "\n"


def timed_step(client: TestClient, tid: str, step: str, timeout: float, **params) -> tuple[dict, float]:
    t0 = time.monotonic()
    run = run_step(client, tid, step, timeout, **params)
    return run, time.monotonic() - t0
