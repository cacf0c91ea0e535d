"""The built-in slicer: its volume curve, where it cuts, how it names slices, and (with a
GPT-SoVITS checkout) that it cuts where upstream's tools/slicer2.py cuts."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gsv_service.audio.ffmpeg import convert
from gsv_service.audio.levels import read_mono
from gsv_service.audio.slicer import (Segment, SlicerConfig, find_segments, normalise, parse_slice_name,
                                      volume_curve)
from tests.audio_fixtures import add_noise, speech_set, write  # noqa: F401 - fixture

SR = 32000


def naive_curve(x: np.ndarray, hop: int, win: int) -> np.ndarray:
    """librosa-style framed RMS, one frame at a time (the definition, not the fast path)."""
    p = np.pad(x.astype(np.float64), (win // 2, win // 2))
    n = (len(p) - win) // hop + 1
    return np.array([np.sqrt(np.mean(p[k * hop:k * hop + win] ** 2)) for k in range(n)])


@pytest.mark.parametrize("hop,win", [(320, 1280), (640, 1600), (7, 23), (100, 100)])
def test_volume_curve_matches_the_definition(hop, win):
    x = np.random.default_rng(0).standard_normal(SR * 2 + 123).astype(np.float32) * 0.1
    np.testing.assert_allclose(volume_curve(x, hop, win), naive_curve(x, hop, win), rtol=1e-5, atol=1e-9)


def bursts(lengths_s: list[float], gap_s: float, lead_s: float = 1.0) -> tuple[np.ndarray, list]:
    t, parts, spans = lead_s, [np.zeros(int(lead_s * SR), np.float32)], []
    rng = np.random.default_rng(1)
    for n in lengths_s:
        parts += [(rng.standard_normal(int(n * SR)) * 0.2).astype(np.float32), np.zeros(int(gap_s * SR), np.float32)]
        spans.append((t, t + n))
        t += n + gap_s
    return np.concatenate(parts), spans


def test_cuts_fall_in_pauses_and_keep_at_most_max_sil_kept():
    x, spans = bursts([1.5, 1.5, 1.5, 2.0, 3.0, 1.0], gap_s=1.0)
    segs = find_segments(x, SlicerConfig(sr=SR))
    # a pause becomes a cut once the clip, counted to the pause's end, has min_length (4 s):
    # bursts 1-2 | 3-4 | 5 | 6, the last one shorter than min_length (upstream does the same)
    assert len(segs) == 4 and (segs[-1].end - segs[-1].start) / SR < 4.0
    for seg in segs:
        a, b = seg.start / SR, seg.end / SR
        inside = [s for s in spans if a <= s[0] and s[1] <= b]
        assert inside, f"slice {a:.2f}-{b:.2f} holds no whole burst"
        assert inside[0][0] - a <= 0.51 and min(b, len(x) / SR) - inside[-1][1] <= 0.51
    assert all(not (s[0] < seg.end / SR < s[1]) for s in spans for seg in segs)  # never cut speech


def test_leading_and_trailing_silence_are_dropped():
    x, _ = bursts([1.0, 5.0], gap_s=0.6, lead_s=2.0)
    segs = find_segments(x, SlicerConfig(sr=SR))
    assert segs[0].start / SR == pytest.approx(2.0 - 0.5, abs=0.02)  # 500 ms of the lead kept
    assert len(segs) == 1 and segs[-1].end / SR < len(x) / SR - 0.1  # trailing pause dropped


def test_no_silence_gives_one_slice_of_the_whole_file():
    x = (np.random.default_rng(2).standard_normal(SR * 3) * 0.3).astype(np.float32)
    assert find_segments(x, SlicerConfig(sr=SR)) == [Segment(0, 301 * 320)]  # frames: n // hop + 1


def test_bad_parameter_order_is_refused():
    with pytest.raises(ValueError, match="min_length >= min_interval >= hop_size"):
        find_segments(np.zeros(SR, np.float32), SlicerConfig(min_interval=5000))


def test_normalise_mixes_like_upstream_and_skips_digital_silence():
    chunk = np.array([0.1, -0.5, 0.25], np.float32)
    out = normalise(chunk, 0.9, 0.25)
    np.testing.assert_allclose(out, chunk / 0.5 * 0.9 * 0.25 + 0.75 * chunk, rtol=1e-6)
    assert normalise(np.zeros(10, np.float32)) is None


def test_names_round_trip_and_keep_the_upload_extension():
    name = Segment(1280, 162240).name("take 1.mp3")
    assert name == "take 1.mp3_0000001280_0000162240.wav"
    assert parse_slice_name(name) == ("take 1.mp3", 1280, 162240)
    assert parse_slice_name("other.wav") is None


def test_espeak_recording_is_cut_between_sentences_only(speech_set, tmp_path):
    convert(speech_set.long.path, tmp_path / "long.wav")
    x, sr = read_mono(tmp_path / "long.wav")
    segs = find_segments(x, SlicerConfig(sr=sr))
    assert 6 <= len(segs) <= 12
    for a, b in speech_set.long.spans:  # every sentence lies whole inside one slice
        assert any(s.start / sr <= a + 0.02 and b - 0.02 <= s.end / sr for s in segs), (a, b)


# ---------- against the real checkout ----------

UPSTREAM = textwrap.dedent("""
    import json, sys
    import soundfile as sf
    sys.path.insert(0, sys.argv[1] + "/tools")
    from slicer2 import Slicer
    x, sr = sf.read(sys.argv[2], dtype="float32")
    p = json.loads(sys.argv[3])
    print(json.dumps([[int(a), int(b)] for _, a, b in Slicer(sr=sr, **p).slice(x)]))
""")


def _engine() -> tuple[Path, str]:
    root, py = os.environ.get("GSV_ROOT"), os.environ.get("GSV_PYTHON")
    if not root or not py or not (Path(root) / "tools" / "slicer2.py").is_file():
        pytest.skip("needs GSV_ROOT (a GPT-SoVITS checkout with tools/slicer2.py) and GSV_PYTHON")
    return Path(root), py


@pytest.mark.real_engine
@pytest.mark.parametrize("params", [
    {}, {"threshold": -40, "min_length": 2000, "max_sil_kept": 200},
    {"min_interval": 100, "hop_size": 20, "max_sil_kept": 1000},
])
@pytest.mark.parametrize("noisy", [False, True])
def test_cuts_where_upstream_slicer2_cuts(speech_set, tmp_path, params, noisy):
    root, py = _engine()
    wav = tmp_path / "in.wav"
    convert(speech_set.long.path, wav)
    if noisy:
        x, sr = read_mono(wav)
        write(wav, add_noise(x, 25, seed=3), sr)
    cfg = {"threshold": -34, "min_length": 4000, "min_interval": 300, "hop_size": 10, "max_sil_kept": 500, **params}
    out = subprocess.run([py, "-c", UPSTREAM, str(root), str(wav), json.dumps(cfg)], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    theirs = json.loads(out.strip().splitlines()[-1])
    x, sr = read_mono(wav)
    ours = [[s.start, s.end] for s in find_segments(x, SlicerConfig(sr=sr, **cfg))]
    assert len(ours) == len(theirs)
    assert np.max(np.abs(np.array(ours) - np.array(theirs))) <= 0.020 * sr


@pytest.mark.real_engine
def test_slice_names_equal_upstream_slice_audio_names(speech_set, tmp_path):
    """Upstream's tools/slice_audio.py (as the web UI runs it) and our slice job, same input file:
    the same slice files, byte for byte in name, so upstream-made transcripts map onto ours."""
    root, py = _engine()
    src = tmp_path / "in"
    src.mkdir()
    convert(speech_set.long.path, src / "reading.wav")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tools")])}
    p = subprocess.run([py, "-s", "tools/slice_audio.py", str(src / "reading.wav"), str(tmp_path / "up"),
                        "-34", "4000", "300", "10", "500", "0.9", "0.25", "0", "1"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        pytest.skip(f"upstream's slice_audio.py does not run in GSV_PYTHON: {p.stderr[-300:]}")
    from gsv_service.jobs.slice import main as slice_main
    cfg = {"threshold": -34, "min_length": 4000, "min_interval": 300, "hop_size": 10, "max_sil_kept": 500,
           "_max": 0.9, "alpha": 0.25}
    slice_main(["--src", str(src), "--dst", str(tmp_path / "ours"), "--config", json.dumps(cfg)])
    theirs = sorted(q.name for q in (tmp_path / "up").glob("*.wav"))
    assert theirs and sorted(q.name for q in (tmp_path / "ours").glob("*.wav")) == theirs
    for name in theirs[:3]:  # and the same samples (both write int16 of the same normalised chunk)
        a, b = read_mono(tmp_path / "up" / name)[0], read_mono(tmp_path / "ours" / name)[0]
        assert len(a) == len(b) and np.max(np.abs(a - b)) <= 2 / 32768
