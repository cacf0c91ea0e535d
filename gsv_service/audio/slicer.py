"""Cut a recording into utterances at its silences, with the parameters of GPT-SoVITS's web UI
slicer and the same cut points (its tools/slicer2.py is the reference; this is our own code).

How upstream decides, restated: a volume curve (RMS of `win` samples every `hop`) marks silent
frames (below the threshold). A silent run followed by sound becomes a cut when it is leading
silence longer than max_sil_kept, or when it lasts min_interval and the current clip has reached
min_length. Up to max_sil_kept of silence is kept on each side of the cut: a short run is cut at
its quietest frame; a longer one loses its middle, its kept edges ending at their quietest frames.
A trailing run of min_interval or more is dropped after its quietest frame within max_sil_kept.
Because silence is dropped after cutting, slices can come out shorter than min_length.

We walk silent runs rather than frames (the runs are found with numpy), so the Python loop runs
once per pause, not 100 times per second.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

SLICE_NAME_RE = re.compile(r"^(?P<src>.+)_(?P<start>\d{10})_(?P<end>\d{10})\.wav$")


@dataclass(frozen=True)
class SlicerConfig:
    sr: int = 32000
    threshold: float = -34.0   # dB
    min_length: int = 4000     # ms
    min_interval: int = 300    # ms
    hop_size: int = 10         # ms
    max_sil_kept: int = 500    # ms

    def check(self) -> None:
        if not self.min_length >= self.min_interval >= self.hop_size:
            raise ValueError("min_length >= min_interval >= hop_size must hold (milliseconds)")
        if self.max_sil_kept < self.hop_size:
            raise ValueError("max_sil_kept must be at least hop_size (milliseconds)")

    # Frame counts, rounded exactly as the web UI's slicer rounds them (cut points depend on it).
    @property
    def hop(self) -> int:
        return round(self.sr * self.hop_size / 1000)

    @property
    def win(self) -> int:
        return min(round(self.sr * self.min_interval / 1000), 4 * self.hop)

    @property
    def min_len_frames(self) -> int:
        return round(self.sr * self.min_length / 1000 / self.hop)

    @property
    def min_int_frames(self) -> int:
        return round(self.sr * self.min_interval / 1000 / self.hop)

    @property
    def kept_frames(self) -> int:
        return round(self.sr * self.max_sil_kept / 1000 / self.hop)


@dataclass(frozen=True)
class Segment:
    start: int  # first sample
    end: int    # one past the last sample, as upstream names it (may pass the end of the audio)

    def name(self, source: str) -> str:
        return f"{source}_{self.start:010d}_{self.end:010d}.wav"


def volume_curve(x: np.ndarray, hop: int, win: int) -> np.ndarray:
    """RMS of win samples every hop samples, the signal zero-padded by win // 2 on both sides.

    Energies are summed per block of g = gcd(win, hop) samples, then each window adds its blocks:
    with the usual win = 4 hops that is 4 vector additions for the whole file.
    """
    half = win // 2
    n_frames = (len(x) + 2 * half - win) // hop + 1
    if n_frames <= 0:
        return np.zeros(0)
    g = math.gcd(win, hop)
    if half % g:  # the padding is not whole blocks (win == hop, odd sizes): pad a copy
        x, half = np.concatenate([np.zeros(half % g, x.dtype), x]), half - half % g
    k = len(x) // g
    blocks = x[:k * g].reshape(k, g)  # a view: no copy of the recording
    energy = np.zeros(half // g + k + 1 + win // g + n_frames * (hop // g), np.float64)
    energy[half // g:half // g + k] = np.einsum("ij,ij->i", blocks, blocks)
    tail = x[k * g:]
    energy[half // g + k] = float(np.dot(tail, tail))
    step, last = hop // g, (n_frames - 1) * (hop // g) + 1
    total = energy[0:last:step].copy()
    for j in range(1, win // g):
        total += energy[j:j + last:step]
    return np.sqrt(total / win)


def _silent_runs(silent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of runs of True."""
    edges = np.diff(np.concatenate(([0], silent.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _quietest(rms: np.ndarray, lo: int, hi: int) -> int:
    """Index of the quietest frame in rms[lo:hi] (the first one on ties)."""
    return lo + int(np.argmin(rms[lo:hi]))


def _cut(rms: np.ndarray, s: int, e: int, keep: int) -> tuple[int, int]:
    """Frames [a, b) removed for the silent run [s, e) followed by sound at frame e."""
    length = e - s
    if length <= keep:
        p = _quietest(rms, s, e + 1)
        return (0 if s == 0 else p), p
    right = _quietest(rms, e - keep, e + 1)
    if s == 0:
        return 0, right
    left = _quietest(rms, s, s + keep + 1)
    if length <= 2 * keep:  # the kept edges overlap: the quietest frame of the overlap wins
        mid = _quietest(rms, e - keep, s + keep + 1)
        return min(left, mid), max(right, mid)
    return left, right


def silence_cuts(rms: np.ndarray, cfg: SlicerConfig) -> list[tuple[int, int]]:
    """Removed frame ranges, in order. The last may end at len(rms) + 1 (trailing silence)."""
    total = len(rms)
    keep, min_int, min_len = cfg.kept_frames, cfg.min_int_frames, cfg.min_len_frames
    starts, ends = _silent_runs(rms < 10 ** (cfg.threshold / 20.0))
    cuts: list[tuple[int, int]] = []
    clip_start = 0
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e >= total:  # trailing silence
            if total - s >= min_int:
                cuts.append((_quietest(rms, s, min(total, s + keep) + 1), total + 1))
            break
        leading = s == 0 and e > keep
        if not leading and not (e - s >= min_int and e - clip_start >= min_len):
            continue
        a, b = _cut(rms, s, e, keep)
        cuts.append((a, b))
        clip_start = b
    return cuts


def find_segments(x: np.ndarray, cfg: SlicerConfig) -> list[Segment]:
    """The utterances of a mono recording, as sample ranges named the way upstream names them."""
    cfg.check()
    hop = cfg.hop
    rms = volume_curve(x, hop, cfg.win)
    total = len(rms)
    cuts = silence_cuts(rms, cfg)
    if not cuts:
        return [Segment(0, total * hop)]
    bounds = []
    if cuts[0][0] > 0:
        bounds.append((0, cuts[0][0]))
    bounds += [(cuts[i][1], cuts[i + 1][0]) for i in range(len(cuts) - 1)]
    if cuts[-1][1] < total:
        bounds.append((cuts[-1][1], total))
    return [Segment(a * hop, b * hop) for a, b in bounds]


def normalise(chunk: np.ndarray, peak_to: float = 0.9, alpha: float = 0.25) -> np.ndarray | None:
    """Upstream's loudness mix: alpha of the chunk scaled to peak `peak_to`, plus 1 - alpha of the
    chunk as it is (one gain in the end). None for a chunk of pure digital silence."""
    peak = float(np.max(np.abs(chunk))) if len(chunk) else 0.0
    if peak <= 0:
        return None
    if peak > 1:
        chunk, peak = chunk / peak, 1.0
    return chunk * np.float32(peak_to * alpha / peak + (1 - alpha))


def parse_slice_name(name: str) -> tuple[str, int, int] | None:
    """(source name, start sample, end sample) of a name made by upstream's slicer or ours."""
    m = SLICE_NAME_RE.match(name)
    return (m["src"], int(m["start"]), int(m["end"])) if m else None
