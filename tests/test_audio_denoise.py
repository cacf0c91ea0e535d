"""Spectral denoise: lowers the noise floor of noisy speech and keeps the speech at its level,
measured on frames chosen from the clean signal (not with the denoiser's own ruler)."""

from __future__ import annotations

import numpy as np
import pytest

from gsv_service.audio.denoise import NoiseProfile, noise_profile, spectral
from gsv_service.audio.ffmpeg import convert
from gsv_service.audio.levels import read_mono
from tests.audio_fixtures import add_noise, levels_by_mask, speech_set  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def clean(speech_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("dn") / "long32.wav"
    convert(speech_set.long.path, out)
    return read_mono(out)


@pytest.mark.parametrize("colour,floor_drop", [("white", 20.0), ("pink", 18.0)])
def test_noise_floor_drops_and_speech_level_stays(clean, colour, floor_drop):
    x, sr = clean
    noisy = add_noise(x, 20, seed=5, colour=colour)
    # denoise as the step does: 5 s slices of one recording sharing one noise profile
    chunks = [noisy[i:i + 5 * sr] for i in range(0, len(noisy), 5 * sr)]
    prof = noise_profile(chunks, sr)
    out = np.concatenate([spectral(c, sr, prof) for c in chunks])
    s0, p0 = levels_by_mask(x, noisy, sr)
    s1, p1 = levels_by_mask(x, out, sr)
    assert p0 - s0 == pytest.approx(-20, abs=2.5)  # the input really is ~20 dB SNR in the pauses
    assert p1 - p0 <= -floor_drop, f"noise floor only {p1 - p0:.1f} dB lower"
    assert abs(s1 - s0) < 1.0, f"speech level changed by {s1 - s0:.2f} dB"


def test_silence_and_tiny_inputs_pass_through(clean):
    _, sr = clean
    z = np.zeros(sr, np.float32)
    assert noise_profile([z], sr) is None
    np.testing.assert_array_equal(spectral(z, sr, None), z)
    short = np.full(100, 0.1, np.float32)
    np.testing.assert_array_equal(spectral(short, sr, np.ones(4096, np.float32) * 0.01), short)


def test_profile_takes_the_quietest_frames_one_slice_at_a_time():
    sr = 32000
    rng = np.random.default_rng(0)
    loud = (rng.standard_normal(sr * 4) * 0.3).astype(np.float32)
    quiet = (rng.standard_normal(sr * 4) * 0.001).astype(np.float32)
    prof = NoiseProfile(sr)
    prof.add(loud)
    prof.add(np.concatenate([loud[:sr], quiet]))
    noise = prof.noise()
    assert noise is not None and np.sqrt(np.mean(noise ** 2)) < 0.002
    assert len(noise) <= 1.6 * sr
