"""Spectral denoise (noisereduce's stationary spectral gate), tuned to keep speech at its level.

Why not noisereduce's defaults: it estimates the noise from the whole clip, speech included, so
its gate also cuts the weaker parts of speech (about -6 dB on speech). Here the noise profile
comes from the quietest frames of all slices of the same recording (their pauses), the gate runs
on 50 %-overlapping 32 ms frames (twice as fast as the default 75 %), and the speech frames are
brought back to the level they had before. Measured on espeak speech with 20 dB SNR white or pink
noise: noise floor -20 dB (pink) to -26 dB (white), speech level within 0.1 dB (bench/bench_audio.py).
"""

from __future__ import annotations

import numpy as np

from gsv_service.audio.levels import frame_rms, speech_frames

PROFILE_SECONDS = 1.5   # enough frames for stable per-frequency statistics; more only costs time
QUIET_SHARE = 0.10      # the quietest tenth of the frames stands for the noise
DEFAULT_STRENGTH = 2.5  # gate at noise mean + 2.5 std (dB, per frequency)


def _fft_size(sr: int) -> int:
    return int(2 ** round(np.log2(sr * 0.032)))


class NoiseProfile:
    """Collects the quietest frames (not digital silence) of one recording's slices, one slice at
    a time, so a long recording never has to be in memory at once."""

    def __init__(self, sr: int):
        self.sr = sr
        self.frame = 2 * _fft_size(sr)
        self.cap = int(PROFILE_SECONDS * sr / self.frame) + 1
        self.live = 0
        self._frames: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []

    def add(self, x: np.ndarray) -> None:
        k = len(x) // self.frame
        if k == 0:
            return
        f = x[:k * self.frame].reshape(k, self.frame)
        e = np.einsum("ij,ij->i", f, f, dtype=np.float64)
        live = np.flatnonzero(e > 1e-9 * self.frame)
        self.live += live.size
        keep = live[np.argsort(e[live], kind="stable")[:self.cap]]
        self._frames.append(f[keep].copy())
        self._energy.append(e[keep])

    def noise(self) -> np.ndarray | None:
        """The quietest tenth of all frames (at most PROFILE_SECONDS), or None without any."""
        if not self.live:
            return None
        frames, energy = np.concatenate(self._frames), np.concatenate(self._energy)
        want = min(self.cap, max(4, int(self.live * QUIET_SHARE)), len(energy))
        return frames[np.argsort(energy, kind="stable")[:want]].ravel()


def noise_profile(signals: list[np.ndarray], sr: int) -> np.ndarray | None:
    prof = NoiseProfile(sr)
    for s in signals:
        prof.add(s)
    return prof.noise()


def spectral(x: np.ndarray, sr: int, noise: np.ndarray | None,
             strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """Gate out the noise described by `noise`; speech frames keep their level."""
    import noisereduce  # imported here: it pulls in scipy.signal (about a second)

    n_fft = _fft_size(sr)
    if noise is None or len(x) < n_fft or not np.any(x):
        return x.copy()
    y = noisereduce.reduce_noise(y=x, sr=sr, stationary=True, y_noise=noise, n_fft=n_fft,
                                 hop_length=n_fft // 2, n_std_thresh_stationary=strength,
                                 prop_decrease=1.0, chunk_size=max(600_000, len(noise)))
    y = np.asarray(y, dtype=np.float32)[:len(x)]
    return restore_level(x, y, sr)


def restore_level(before: np.ndarray, after: np.ndarray, sr: int) -> np.ndarray:
    """Scale `after` so its speech frames (chosen on `before`) have the RMS they had before,
    without letting the peak pass full scale."""
    frame = max(1, int(sr * 0.02))
    rb, ra = frame_rms(before, frame), frame_rms(after, frame)
    n = min(len(rb), len(ra))
    floor = float(np.percentile(rb[:n], 10)) if n else 0.0
    sp = speech_frames(rb[:n], 20 * np.log10(max(floor, 1e-10)))
    if not sp.any():
        return after
    target = np.sqrt(np.mean(rb[:n][sp] ** 2))
    got = np.sqrt(np.mean(ra[:n][sp] ** 2))
    if got <= 0:
        return after
    gain = float(np.clip(target / got, 0.5, 2.0))
    peak = float(np.max(np.abs(after))) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return (after * np.float32(gain)).astype(np.float32)
