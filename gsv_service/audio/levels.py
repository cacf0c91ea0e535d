"""Reading and writing WAV files, and level measurements (peak, RMS, clipping, silence)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

FULL_SCALE = 32767 / 32768   # a 16-bit sample at this magnitude is clipped
SILENCE_DBFS = -40.0         # a 20 ms frame quieter than this counts as silence
FRAME_S = 0.02


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """float32 samples in [-1, 1] (channels averaged) and the sample rate."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return (x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)), sr


def write_pcm16(path: Path, x: np.ndarray, sr: int) -> None:
    """Write 16-bit PCM, truncating toward zero as upstream's slicer does (x * 32767 -> int16)."""
    y = x * np.float32(32767)
    np.clip(y, -32767, 32767, out=y)
    pcm = y.astype(np.int16)
    sf.write(str(path), pcm, sr, subtype="PCM_16", format="WAV")


def dbfs(v: float) -> float:
    return float(20 * np.log10(max(float(v), 1e-10)))


def level_db(v: float) -> float | None:
    """dBFS rounded for a report, or None for a level of exactly 0 (nothing to measure)."""
    return round(dbfs(v), 2) if v > 0 else None


def frame_rms(x: np.ndarray, frame: int) -> np.ndarray:
    """RMS of consecutive non-overlapping frames (a short last frame is dropped)."""
    k = len(x) // frame
    if k == 0:
        out: np.ndarray = np.sqrt(np.mean(np.square(x, dtype=np.float64), keepdims=True)) if len(x) else np.zeros(0)
        return out
    f = x[:k * frame].reshape(k, frame)
    out = np.sqrt(np.einsum("ij,ij->i", f, f, dtype=np.float64) / frame)
    return out


def speech_frames(r: np.ndarray, floor_db: float | None = None, range_db: float = 25.0) -> np.ndarray:
    """Frames that carry speech: within range_db of the loudest frame and above the noise floor."""
    if r.size == 0 or r.max() <= 0:
        return np.zeros(r.shape, bool)
    keep: np.ndarray = r > r.max() * 10 ** (-range_db / 20)
    if floor_db is not None:
        keep &= r > 10 ** ((floor_db + 6) / 20)
    return keep


def analyse(x: np.ndarray, sr: int) -> dict[str, Any]:
    """Level figures of one utterance, as the dataset report shows them."""
    n = len(x)
    if n == 0:
        return {"duration": 0.0, "peak_db": None, "rms_db": None, "clipped_share": 0.0,
                "silence_share": 1.0, "speech_db": None, "noise_db": None}
    r = frame_rms(x, max(1, int(sr * FRAME_S)))
    peak = float(np.max(np.abs(x)))
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    noise = float(np.percentile(r, 10)) if r.size else 0.0
    sp = speech_frames(r, dbfs(noise))
    return {
        "duration": round(n / sr, 3),
        "peak_db": level_db(peak),
        "rms_db": level_db(rms),
        "clipped_share": round(float(np.count_nonzero(np.abs(x) >= FULL_SCALE)) / n, 5),
        "silence_share": round(float(np.mean(r < 10 ** (SILENCE_DBFS / 20))) if r.size else 1.0, 3),
        "speech_db": round(dbfs(float(np.sqrt(np.mean(r[sp] ** 2)))), 2) if sp.any() else None,
        "noise_db": level_db(noise),  # None: the quietest frames are digital silence
    }
