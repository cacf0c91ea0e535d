"""Steps 1-4 through the real app on espeak speech: convert, slice, denoise, transcribe; bad
uploads reported by name; the engine's denoise/ASR driven through a small stand-in checkout."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from gsv_service.app import create_app
from gsv_service.audio.levels import read_mono
from gsv_service.audio.slicer import SlicerConfig, find_segments, parse_slice_name
from tests.audio_fixtures import speech_set  # noqa: F401 - fixture
from tests.conftest import make_settings
from tests.engine_support import run_step


@pytest.fixture
def db_url():  # audio work does not depend on the database: SQLite only
    return None


def new_task(client, **config) -> str:
    r = client.post("/api/v1/task/create", json={"task_name": "prep", "config": {"exp_name": "spk",
                                                                                 "language": "en", **config}})
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def upload(client, tid, *paths: Path, names: list[str] | None = None) -> None:
    names = names or [p.name for p in paths]
    r = client.post(f"/api/v1/task/{tid}/files/upload",
                    files=[("files", (n, p.read_bytes())) for n, p in zip(names, paths)])
    assert r.status_code == 200, r.text


def ok(run: dict) -> dict:
    assert run["status"] == "completed", f"{run['step']}: {run['error_message']}"
    return run["result"]


def test_convert_slice_denoise_espeak_speech_with_bad_files_beside_it(client, settings, speech_set):
    s = speech_set
    tid = new_task(client)
    upload(client, tid, s.long.path, s.long_mp3, s.encoded["mp4"], s.encoded["flac"], *s.bad.values(),
           names=["long.wav", "long.mp3", "clip.mp4", "read.flac", "notes.wav", "empty.mp3", "silence.wav",
                  "short.wav"])
    res = ok(run_step(client, tid, "convert_audio"))
    assert res["converted"] == 6 and res["failed"] == 2
    errors = {e["item"]: e["error"] for e in res["errors"]}
    assert "not a readable audio or video file" in errors["notes.wav"]
    assert "empty file (0 bytes)" in errors["empty.mp3"]
    root = settings.task_root / tid
    conv = {p.name: sf.info(str(p)) for p in (root / "converted_wav").glob("*.wav")}
    assert set(conv) == {"long.wav.wav", "long.mp3.wav", "clip.wav", "read.wav", "silence.wav", "short.wav"}
    assert all((i.samplerate, i.channels, i.subtype) == (32000, 1, "PCM_16") for i in conv.values())
    assert conv["long.wav.wav"].duration == pytest.approx(s.long.duration, rel=0.01)
    assert conv["long.mp3.wav"].duration == pytest.approx(s.long.duration, rel=0.01)
    assert conv["clip.wav"].duration == pytest.approx(sf.info(str(s.utterance)).duration, rel=0.01)

    res = ok(run_step(client, tid, "slice_audio"))
    sliced = sorted((root / "sliced").glob("*.wav"))
    assert res["slices"] == len(sliced) and res["files"] == 6
    assert [e["item"] for e in res["errors"]] == ["silence.wav"] and "no speech" in res["errors"][0]["error"]
    x, sr = read_mono(root / "converted_wav" / "long.wav.wav")
    expected = find_segments(x, SlicerConfig(sr=sr))
    mine = sorted(parse_slice_name(p.name)[1:] for p in sliced if p.name.startswith("long.wav_"))
    assert mine == [(g.start, g.end) for g in expected]
    durs = [sf.info(str(p)).duration for p in sliced]
    assert res["min_seconds"] == pytest.approx(min(durs), abs=0.01)
    assert res["max_seconds"] == pytest.approx(max(durs), abs=0.01)
    assert res["seconds"] == pytest.approx(sum(durs), abs=0.05)
    short = [p for p in sliced if p.name.startswith("short.wav_")]
    assert len(short) == 1 and sf.info(str(short[0])).duration == pytest.approx(1.0, abs=0.02)

    res = ok(run_step(client, tid, "denoise_audio"))  # auto without an engine: spectral
    assert res["method"] == "spectral" and res["files"] == len(sliced)
    assert sorted(p.name for p in (root / "denoised").glob("*.wav")) == [p.name for p in sliced]

    # slicing again replaces every old slice and makes the denoised files stale
    res = ok(run_step(client, tid, "slice_audio", min_length=2000, min_interval=200))
    again = sorted(p.name for p in (root / "sliced").glob("*.wav"))
    assert len(again) == res["slices"] > len(sliced) and not list(root.glob(".sliced*"))
    assert client.get(f"/api/v1/task/{tid}").json()["steps"]["denoise_audio"]["status"] == "stale"


def test_convert_fails_by_name_when_no_upload_is_usable(client, settings, speech_set):
    tid = new_task(client)
    upload(client, tid, speech_set.bad["text_as_wav"], speech_set.bad["zero_bytes"])
    run = run_step(client, tid, "convert_audio")
    assert run["status"] == "failed" and "notes.wav" in run["error_message"]
    assert "empty.mp3" in run["error_message"] and run["result"]["failed"] == 2
    assert not (settings.task_root / tid / "converted_wav").exists()
    r = client.post(f"/api/v1/task/{tid}/step/slice_audio", json={"params": {}})
    assert r.status_code == 409 and "convert_audio" in r.json()["detail"]


def test_slice_params_are_checked_like_the_web_ui(client):
    tid = new_task(client)
    r = client.post(f"/api/v1/task/{tid}/step/slice_audio", json={"params": {"min_interval": 5000}})
    assert r.status_code == 422 and "min_length >= min_interval >= hop_size" in r.json()["detail"]


def sliced_task(client, speech_set) -> str:
    tid = new_task(client)
    upload(client, tid, speech_set.long.path, speech_set.utterance, names=["long.wav", "one.wav"])
    ok(run_step(client, tid, "convert_audio"))
    ok(run_step(client, tid, "slice_audio"))
    return tid


def test_provided_transcripts_map_onto_the_slices(client, settings, speech_set):
    tid = sliced_task(client, speech_set)
    root = settings.task_root / tid
    names = sorted(p.name for p in (root / "sliced").glob("long.wav_*.wav"))
    one = next((root / "sliced").glob("one.wav_*.wav"))
    src, a, b = parse_slice_name(names[1])
    shifted = f"{src}_{a + 320:010d}_{b - 640:010d}.wav"  # upstream cut a frame or two elsewhere
    rows = [f"D:\\GPT-SoVITS\\output\\slicer_opt\\{names[0]}|someone|EN|First line of text here.",
            f"/data/slicer_opt/{shifted}|someone|en|Second line, matched by time.",
            f"/x/{names[2]}|someone|EN|",
            "/x/long.wav_0099999999_0100000000.wav|someone|EN|A line without audio."]
    rows += [f"/x/{n}|someone|AUTO|Line number {i} of the reading." for i, n in enumerate(names[4:], 4)]
    tdir = root / "input_transcripts"
    tdir.mkdir()
    (tdir / "upstream.list").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tdir / f"{one.stem}.txt").write_text("Please remember to bring the blue folder.\n", encoding="utf-8")
    res = ok(run_step(client, tid, "asr_transcribe"))  # auto: transcripts were uploaded
    assert res["method"] == "provided" and res["missing"] == [names[3]] and res["empty"] == [names[2]]
    assert res["extra"] == ["long.wav_0099999999_0100000000.wav"]
    assert res["matched_by_time"] == {shifted: names[1]}
    lines = (root / "transcripts" / "spk.list").read_text(encoding="utf-8").splitlines()
    assert len(lines) == res["lines"] == len(names) - 2 + 1
    by_name = {Path(ln.split("|")[0]).name: ln.split("|") for ln in lines}
    assert by_name[names[1]][3] == "Second line, matched by time."
    assert by_name[one.name] == [str(one.resolve()), "spk", "EN", "Please remember to bring the blue folder."]
    assert all(Path(p[0]).is_file() and p[2] == "EN" for p in by_name.values())


def test_asr_without_engine_or_uploads_says_what_to_do(client, speech_set):
    """Refused at submit (424), like the engine steps, not a run that fails a second later."""
    tid = sliced_task(client, speech_set)
    runs = client.get(f"/api/v1/task/{tid}/runs").json()
    r = client.post(f"/api/v1/task/{tid}/step/asr_transcribe", json={"params": {}})
    assert r.status_code == 424 and "upload transcripts" in r.json()["detail"]
    assert "./start_service.sh --engine-only" in r.json()["detail"]
    assert client.get(f"/api/v1/task/{tid}/runs").json() == runs


# ---------- the engine's tools, through a stand-in checkout ----------

FUNASR = textwrap.dedent('''
    import os
    def execute_asr(input_folder, output_folder, model_size, language, backend="fun-asr-nano"):
        skip = open(os.path.join(os.path.dirname(__file__), "skip.txt")).read().strip()
        out = []
        for name in sorted(os.listdir(input_folder)):
            print("\\n" + name, flush=True)
            if name == skip:
                print("Traceback (most recent call last):\\nRuntimeError: decode failed", flush=True)
                continue
            out.append(f"{os.path.join(input_folder, name)}|{os.path.basename(input_folder)}|"
                       f"{language.upper()}|text by {backend} {model_size}")
        os.makedirs(output_folder, exist_ok=True)
        path = os.path.abspath(f"{output_folder}/{os.path.basename(input_folder)}.list")
        open(path, "w", encoding="utf-8").write("\\n".join(out))
        return path
''')
DENOISE = textwrap.dedent('''
    import argparse, os, shutil
    ap = argparse.ArgumentParser(); ap.add_argument("-i"); ap.add_argument("-o"); ap.add_argument("-p")
    a = ap.parse_args(); os.makedirs(a.o, exist_ok=True)
    for i, name in enumerate(sorted(os.listdir(a.i))):
        if i == 0:
            print("Traceback (most recent call last):\\nRuntimeError: bad input"); continue
        shutil.copyfile(os.path.join(a.i, name), os.path.join(a.o, name))
''')


@pytest.fixture
def fake_engine(tmp_path) -> Path:
    root = tmp_path / "checkout"
    (root / "GPT_SoVITS").mkdir(parents=True)
    (root / "tools" / "asr").mkdir(parents=True)
    (root / "tools" / "__init__.py").write_text("")
    (root / "tools" / "asr" / "funasr_asr.py").write_text(FUNASR)
    (root / "tools" / "cmd-denoise.py").write_text(DENOISE)
    return root


@pytest.fixture
def engine_client(tmp_path, fake_engine):
    settings = make_settings(tmp_path, None, engine_root=fake_engine, engine_python=sys.executable)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        c.settings = settings
        yield c


def test_funasr_gets_the_backend_and_skipped_slices_are_named(engine_client, fake_engine, speech_set):
    c = engine_client
    tid = sliced_task(c, speech_set)
    slices = sorted(p.name for p in (c.settings.task_root / tid / "sliced").glob("*.wav"))
    (fake_engine / "tools" / "asr" / "skip.txt").write_text(slices[1])
    res = ok(run_step(c, tid, "asr_transcribe", method="funasr", backend="sensevoice"))
    assert res["method"] == "funasr" and res["backend"] == "sensevoice"
    assert res["skipped_by_engine"] == [slices[1]] and res["lines"] == len(slices) - 1
    lines = [ln.split("|") for ln in (c.settings.task_root / tid / "transcripts" / "spk.list").read_text().splitlines()]
    assert {tuple(p[1:]) for p in lines} == {("spk", "EN", "text by sensevoice large")}
    # auto language: the engine writes AUTO; each line gets the language its script shows
    ok(run_step(c, tid, "asr_transcribe", method="funasr", language="auto"))
    lines = [ln.split("|") for ln in (c.settings.task_root / tid / "transcripts" / "spk.list").read_text().splitlines()]
    assert {p[2] for p in lines} == {"EN"}
    run = run_step(c, tid, "asr_transcribe", method="funasr", backend="paraformer")
    assert run["status"] == "failed" and "zh and yue only" in run["error_message"]


def test_frcrn_runs_when_its_model_is_present_and_missing_outputs_are_named(engine_client, fake_engine,
                                                                              speech_set):
    c = engine_client
    tid = sliced_task(c, speech_set)
    run = run_step(c, tid, "denoise_audio", method="frcrn")
    assert run["status"] == "failed" and "speech_frcrn_ans_cirm_16k" in run["error_message"]
    assert ok(run_step(c, tid, "denoise_audio"))["method"] == "spectral"  # auto without the model
    (fake_engine / "tools" / "denoise-model" / "speech_frcrn_ans_cirm_16k").mkdir(parents=True)
    res = ok(run_step(c, tid, "denoise_audio"))
    slices = sorted(p.name for p in (c.settings.task_root / tid / "sliced").glob("*.wav"))
    assert res["method"] == "frcrn" and res["files"] == len(slices) - 1
    assert [e["item"] for e in res["errors"]] == [slices[0]]
    assert np.all([p.name != slices[0] for p in (c.settings.task_root / tid / "denoised").iterdir()])
