"""All 11 steps against a REAL GPT-SoVITS checkout, through the HTTP API, with tiny random models
(tools/make_tiny_models.py) and espeak-ng speech. Runs only when GSV_ROOT (and GSV_PYTHON) name a
checkout and its interpreter; skipped otherwise. Slow: many minutes on a CPU.

Knobs: GSV_TEST_VERSIONS (default "v2ProPlus"), GSV_TEST_LANGUAGE (en | zh; zh needs the G2PW model
under GPT_SoVITS/text/G2PWModel), GSV_TEST_TINY_DIR (reuse tiny models between runs),
GSV_TEST_SUMMARY (write the run summary there as JSON).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import audio_fixtures as af
from tests.conftest import ROOT, make_settings
from tests.engine_support import (FEATURE_STEPS, create_task, ensure_tiny_models, real_engine_env,
                                  service, slices_transcript, task_dir, timed_step)

REAL = real_engine_env()
pytestmark = [pytest.mark.real_engine, pytest.mark.timeout(7200),
              pytest.mark.skipif(REAL is None, reason="GSV_ROOT does not name a GPT-SoVITS checkout"),
              pytest.mark.skipif(not af.have_tools(), reason="needs espeak-ng and ffmpeg")]
VERSIONS = os.environ.get("GSV_TEST_VERSIONS", "v2ProPlus").split()
LANGUAGE = os.environ.get("GSV_TEST_LANGUAGE", "en")
TARGET = {"en": "Hello there, this is a short test.", "zh": "你好，这是一个测试。"}
STEP_TIMEOUT = 3600


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root, python = REAL
    out = Path(os.environ.get("GSV_TEST_TINY_DIR") or tmp_path_factory.mktemp("tiny-models"))
    return ensure_tiny_models(root, python, out, VERSIONS)


def _checkout_weights(root: Path) -> set[str]:
    pats = ("SoVITS_weights*/*", "GPT_weights*/*", "logs/*/*")
    return {str(p) for pat in pats for p in root.glob(pat)}


def _upload(c, tid: str, path: Path, name: str | None = None) -> None:
    with open(path, "rb") as f:
        r = c.post(f"/api/v1/task/{tid}/files/upload", files={"file": (name or path.name, f)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("version", VERSIONS)
def test_eleven_steps_train_a_voice(tmp_path, tiny, version):
    root, python = REAL
    speech = af.long_speech(tmp_path / "reading.wav", n=8, lang=LANGUAGE)
    sents = af.SENTENCES_EN if LANGUAGE == "en" else af.SENTENCES_ZH
    texts = [sents[i % len(sents)] for i in range(8)]  # what long_speech says, in order
    s = make_settings(tmp_path, None, engine_root=root, engine_python=python, pretrained_dir=tiny,
                      kill_grace_s=5.0)
    before = _checkout_weights(root)
    summary: dict = {"version": version, "language": LANGUAGE, "steps": {}}
    with service(s) as c:
        tid = create_task(c, language=LANGUAGE, model_version=version, batch_size=4, epochs_s2=1,
                          epochs_s1=1, save_every_epoch_s2=1, save_every_epoch_s1=1,
                          gpu_id="0-1")["task_id"]  # two feature shards (CPU processes here)
        _upload(c, tid, speech.path)
        plan = [("convert_audio", {}), ("slice_audio", {}), ("denoise_audio", {"method": "spectral"}),
                ("asr_transcribe", {"method": "provided"}), *((f, {}) for f in FEATURE_STEPS),
                ("train_sovits", {}), ("train_gpt", {}), ("test_inference", {"target_text": TARGET[LANGUAGE]})]
        for step, params in plan:
            if step == "asr_transcribe":
                lst = slices_transcript(c, tid, speech.spans, texts).replace("{LANG}", LANGUAGE.upper())
                (tmp_path / "mine.list").write_text(lst, encoding="utf-8")
                _upload(c, tid, tmp_path / "mine.list")
            run, secs = timed_step(c, tid, step, STEP_TIMEOUT, **params)
            summary["steps"][step] = {"status": run["status"], "seconds": round(secs, 1),
                                      "message": run["message"], "metrics": run["metrics"]}
            assert run["status"] == "completed", f"{step}: {run['error_message']}"
        models = c.get(f"/api/v1/task/{tid}/models").json()
        wav = c.get(f"/api/v1/task/{tid}/files/download/output.wav")
        folders = c.get(f"/api/v1/task/{tid}/files").json()["folders"]
    assert models["sovits"] and models["gpt"] and wav.status_code == 200 and wav.content[:4] == b"RIFF"
    assert run["result"]["duration"] > 0
    assert _checkout_weights(root) == before  # the task's weights never land in the checkout
    summary["files"] = {k: len(v) for k, v in folders.items()}
    summary["weights"] = [m["path"] for m in models["sovits"] + models["gpt"]]
    summary["inference"] = {k: run["result"][k] for k in ("output", "duration", "load_s", "synth_s")
                            if k in run["result"]}
    summary["task_dir"] = str(task_dir(s, tid))
    out = os.environ.get("GSV_TEST_SUMMARY")
    if out:
        Path(out).write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    print(json.dumps(summary, indent=1, ensure_ascii=False))


def _spoken(root: Path, work: Path, n: int) -> list[tuple[str, str, str]]:
    """n espeak utterances in root/sliced, as (name, LANG, text) for a transcript."""
    sents = af.SENTENCES_EN if LANGUAGE == "en" else af.SENTENCES_ZH
    out = []
    for i in range(n):
        text = sents[i % len(sents)]
        af.speak(text, root / "sliced" / f"utt_{i:02d}.wav", LANGUAGE)
        out.append((f"utt_{i:02d}.wav", LANGUAGE.upper(), text))
    return out


def _write_list(root: Path, lines: list[tuple[str, str, str]]) -> None:
    rows = [f"{root / 'sliced' / n}|spk|{lang}|{text}" for n, lang, text in lines]
    (root / "transcripts").mkdir(parents=True, exist_ok=True)
    (root / "transcripts" / "spk.list").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_real_dropped_item_is_named_with_the_engines_error(tmp_path, tiny):
    root_engine, python = REAL
    s = make_settings(tmp_path, None, engine_root=root_engine, engine_python=python, pretrained_dir=tiny)
    with service(s) as c:
        tid = create_task(c, language=LANGUAGE, model_version=VERSIONS[0], gpu_id="0-1")["task_id"]
        root = task_dir(s, tid)
        lines = _spoken(root, tmp_path, 3)
        af.speak("silence", root / "sliced" / "blank.wav", "en")
        _write_list(root, lines + [("blank.wav", LANGUAGE.upper(), " ")])
        run, _ = timed_step(c, tid, "extract_text_features", STEP_TIMEOUT)
        ok, _ = timed_step(c, tid, "extract_text_features", STEP_TIMEOUT, allow_dropped=True)
    print(json.dumps({"failed": run["error_message"], "dropped": ok["result"].get("dropped")}, indent=1,
                     ensure_ascii=False))
    assert run["status"] == "failed" and "blank.wav: empty text" in run["error_message"]
    assert ok["status"] == "completed" and ok["result"]["items"] == 3


def test_real_cancel_during_training_leaves_no_process(tmp_path, tiny):
    import psutil

    root_engine, python = REAL
    s = make_settings(tmp_path, None, engine_root=root_engine, engine_python=python, pretrained_dir=tiny,
                      kill_grace_s=5.0)
    with service(s) as c:
        tid = create_task(c, language=LANGUAGE, model_version=VERSIONS[0], batch_size=2)["task_id"]
        root = task_dir(s, tid)
        _write_list(root, _spoken(root, tmp_path, 4))
        for step in FEATURE_STEPS:
            run, _ = timed_step(c, tid, step, STEP_TIMEOUT)
            assert run["status"] == "completed", run["error_message"]
        rid = c.post(f"/api/v1/task/{tid}/step/train_sovits", json={"params": {}}).json()["run_id"]
        conf = str(root / "configs" / "s2.json")
        family: set[int] = set()
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:  # until the training loop runs (its bar shows a step)
            for p in psutil.process_iter(["cmdline"]):
                if conf in (p.info["cmdline"] or []):
                    family |= {p.pid} | {k.pid for k in p.children(recursive=True)}
            run = c.get(f"/api/v1/task/{tid}/runs/{rid}").json()
            if (run["metrics"] or {}).get("iterations_per_epoch"):
                break
            time.sleep(0.5)
        assert len(family) >= 3, "s2_train.py, its training child and its data loader workers"
        t0 = time.monotonic()
        c.post(f"/api/v1/task/{tid}/cancel")
        while c.get(f"/api/v1/task/{tid}/runs/{rid}").json()["status"] == "running":
            time.sleep(0.2)
        final = c.get(f"/api/v1/task/{tid}/runs/{rid}").json()
    alive = [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    print(json.dumps({"processes": len(family), "cancel_s": round(time.monotonic() - t0, 1)}))
    assert final["status"] == "cancelled" and alive == []


def test_real_doctor_finds_the_installation_ready(tmp_path, tiny):
    """python -m gsv_service.doctor against the checkout, its interpreter and the tiny models: the
    probe imports the real torch, transformers and gradio; every check the tests above rely on is ok."""
    root, python = REAL
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSV_")}
    env.update(GSV_ROOT=str(root), GSV_PYTHON=python, GSV_PRETRAINED_DIR=str(tiny),
               GSV_TASK_ROOT=str(tmp_path / "tasks"), PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "gsv_service.doctor", "--json", "--version", VERSIONS[0],
                        "--language", LANGUAGE, "--batch-size", "4"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    rep = json.loads(p.stdout)
    print(json.dumps(rep, indent=1, ensure_ascii=False))
    checks = {c["name"]: c for c in rep["checks"]}
    assert rep["probe"]["ok"], rep["probe"]
    assert checks["engine_packages"]["status"] == "ok", checks["engine_packages"]
    assert checks[f"pretrained_{VERSIONS[0]}"]["status"] == "ok", checks[f"pretrained_{VERSIONS[0]}"]
    assert checks["checkout"]["status"] != "fail" and checks["checkout_writable"]["status"] == "ok"
    assert p.returncode == (1 if rep["status"] == "fail" else 0)
    assert rep["status"] != "fail", [c for c in rep["checks"] if c["status"] == "fail"]
