"""The dataset report: per-slice levels and durations, and warnings that point at the bad slices."""

from __future__ import annotations

import numpy as np
import pytest

from gsv_service.transcripts import Line, write_list
from tests.audio_fixtures import SENTENCES_EN, SENTENCES_ZH, have_tools, slice_files, utterance

SR = 22050


@pytest.fixture
def db_url():  # the report reads files, not the store: SQLite only
    return None


def name(i: int) -> str:
    return f"rec.wav_{i * 1_000_000:010d}_{i * 1_000_000 + 100_000:010d}.wav"


@pytest.fixture
def task(client, settings, tmp_path):
    if not have_tools():
        pytest.skip("espeak-ng is needed")
    tid = client.post("/api/v1/task/create", json={"task_name": "ds", "config": {"exp_name": "spk",
                                                                               "language": "en"}}).json()["task_id"]
    root = settings.task_root / tid
    u = [utterance(SENTENCES_EN[i], "en", tmp_path / "e") * 0.7 for i in range(5)]
    zh = utterance(SENTENCES_ZH[0], "zh", tmp_path / "e") * 0.7
    rng = np.random.default_rng(0)
    cases = {  # key: (samples, LANG, text or None for no line)
        "ok": (u[0], "EN", SENTENCES_EN[0]),
        "tiny": (u[1][:int(0.5 * SR)], "EN", "The"),
        "short": (u[1][:int(1.5 * SR)], "EN", "Please remember"),
        "long": (np.concatenate(u[:4] + u[:1]), "EN", " ".join(SENTENCES_EN[:4] + SENTENCES_EN[:1])),
        "clipped": (np.clip(u[2] * 6, -1, 1), "EN", SENTENCES_EN[2]),
        "silent": ((rng.standard_normal(3 * SR) * 0.0003).astype(np.float32), "EN", "Nothing here at all."),
        "terse": (u[3], "EN", "Hi."),
        "verbose": (u[4][:int(1.2 * SR)], "EN", SENTENCES_EN[4] * 2),
        "empty": (u[0], "EN", ""),
        "chinese": (zh, "ZH", SENTENCES_ZH[0]),
        "mismatch": (u[2], "ZH", SENTENCES_EN[2]),
        "no_line": (u[3], "EN", None),
    }
    keys = list(cases)
    wavs = slice_files(root / "sliced", [(name(i), cases[k][0]) for i, k in enumerate(keys)])
    lines = [Line(str(w), "spk", cases[k][1], cases[k][2]) for w, k in zip(wavs, keys) if cases[k][2] is not None]
    lines.append(Line(str(root / "sliced" / "gone.wav"), "spk", "EN", "An orphan line."))
    write_list(root / "transcripts" / "spk.list", lines)
    return tid, root, {k: name(i) for i, k in enumerate(keys)}, cases


def test_report_flags_each_bad_slice_with_what_to_do(client, task):
    tid, _root, names, cases = task
    r = client.get(f"/api/v1/task/{tid}/dataset")
    assert r.status_code == 200, r.text
    body = r.json()
    rows = {row["slice"]: row for row in body["slices"]}
    warn = {k: " | ".join(rows[n]["warnings"]) for k, n in names.items()}
    assert warn["ok"] == ""
    expected = {"tiny": "SoVITS training drops", "short": "short (1.50 s)", "long": "long (", "clipped": "clipping",
                "silent": "near silent", "terse": "transcript looks too short", "verbose": "transcript looks too long",
                "empty": "empty transcript", "mismatch": "text looks like EN but the line says ZH",
                "no_line": "no transcript line"}
    for key, text in expected.items():
        assert text in warn[key], (key, warn[key])
    assert warn["chinese"] == ""
    ok = rows[names["ok"]]
    assert ok["duration"] == pytest.approx(len(cases["ok"][0]) / SR, abs=0.01)
    assert -12 < ok["peak_db"] < 0 and ok["rms_db"] < ok["peak_db"] and ok["clipped_share"] == 0
    assert ok["text_length"] == len(SENTENCES_EN[0]) and ok["language"] == "EN"
    assert rows[names["clipped"]]["clipped_share"] > 0.01 and rows[names["clipped"]]["peak_db"] > -0.01
    assert rows[names["silent"]]["rms_db"] < -60 and rows[names["silent"]]["silence_share"] == 1.0
    t = body["totals"]
    assert t["slices"] == 12 and t["with_transcript"] == 11 and t["languages"] == {"EN": 9, "ZH": 2}
    assert t["seconds"] == pytest.approx(sum(len(c[0]) for c in cases.values()) / SR, abs=0.1)
    assert 0 < t["speech_minutes"] < t["minutes"] and t["slices_with_warnings"] == 10
    joined = " | ".join(body["warnings"])
    for text in ("mixed languages (EN 9, ZH 2)", "1 slice(s) have no transcript line",
                 "name audio that does not exist: gone.wav", "10 of 12 slices have warnings"):
        assert text in joined


def test_report_follows_transcript_edits_and_caches_levels(client, task):
    tid, root, names, _ = task
    first = client.get(f"/api/v1/task/{tid}/dataset").json()
    assert (root / ".dataset_cache.json").is_file()
    r = client.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [
        {"slice": names["terse"], "text": SENTENCES_EN[3]}, {"slice": names["tiny"], "drop": True}]})
    assert r.status_code == 200, r.text
    second = client.get(f"/api/v1/task/{tid}/dataset").json()
    rows = {row["slice"]: row for row in second["slices"]}
    assert rows[names["terse"]]["warnings"] == []
    assert "no transcript line" in " ".join(rows[names["tiny"]]["warnings"])
    assert second["totals"]["with_transcript"] == first["totals"]["with_transcript"] - 1
    assert rows[names["ok"]]["rms_db"] == {r["slice"]: r for r in first["slices"]}[names["ok"]]["rms_db"]


def test_no_slices_yet_is_404_naming_the_step(client):
    tid = client.post("/api/v1/task/create", json={"task_name": "t"}).json()["task_id"]
    r = client.get(f"/api/v1/task/{tid}/dataset")
    assert r.status_code == 404 and "slice_audio" in r.json()["detail"]
