"""The dataset report says null where it measured nothing (not -200 dBFS), and its warnings name
the task (issue 9, item 10)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.audio_fixtures import slice_files

SR = 32000


@pytest.fixture
def db_url():  # the report reads files, not the store: SQLite only
    return None


def name(i: int) -> str:
    return f"rec.wav_{i * 1_000_000:010d}_{i * 1_000_000 + 100_000:010d}.wav"


def test_nothing_measured_is_null_and_warnings_name_the_task(client, settings):
    tid = client.post("/api/v1/task/create", json={"task_name": "ds", "config": {"exp_name": "spk"}}).json()["task_id"]
    t = np.arange(3 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    padded = np.concatenate([np.zeros(SR, np.float32), tone, np.zeros(SR, np.float32)])
    noisy = padded + np.random.default_rng(0).standard_normal(len(padded)).astype(np.float32) * 0.001
    slice_files(settings.task_root / tid / "sliced", [(name(0), noisy), (name(1), padded),
                                                      (name(2), np.zeros(2 * SR, np.float32))])
    r = client.get(f"/api/v1/task/{tid}/dataset")
    assert r.status_code == 200, r.text
    assert "-200" not in r.text and "{task_id}" not in r.text
    rows = {row["slice"]: row for row in r.json()["slices"]}
    assert -70 < rows[name(0)]["noise_db"] < -40  # a noise floor was there to measure
    assert rows[name(1)]["noise_db"] is None and rows[name(1)]["peak_db"] == pytest.approx(-10.5, abs=0.5)
    silent = rows[name(2)]
    assert {k: silent[k] for k in ("peak_db", "rms_db", "speech_db", "noise_db")} == dict.fromkeys(
        ("peak_db", "rms_db", "speech_db", "noise_db"))
    assert any("near silent (no signal at all)" in w for w in silent["warnings"])
    assert any(f"PUT /api/v1/task/{tid}/transcripts" in w for w in r.json()["warnings"])


def test_levels_cached_before_this_change_are_measured_again(client, settings):
    tid = client.post("/api/v1/task/create", json={"task_name": "ds"}).json()["task_id"]
    root = settings.task_root / tid
    (wav,) = slice_files(root / "sliced", [(name(0), np.zeros(SR, np.float32))])
    st = Path(wav).stat()
    old = {"sig": [st.st_size, st.st_mtime_ns], "stats": {"duration": 1.0, "peak_db": -200.0, "rms_db": -200.0,
                                                          "clipped_share": 0.0, "silence_share": 1.0,
                                                          "speech_db": None, "noise_db": -200.0}}
    (root / ".dataset_cache.json").write_text(json.dumps({f"sliced/{name(0)}": old}), encoding="utf-8")
    row = client.get(f"/api/v1/task/{tid}/dataset").json()["slices"][0]
    assert row["peak_db"] is None and row["noise_db"] is None
