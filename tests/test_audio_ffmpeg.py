"""Probing and conversion with ffmpeg: every accepted format becomes 32 kHz mono 16-bit WAV of the
same length; files that are not audio are refused with a reason."""

from __future__ import annotations

import pytest
import soundfile as sf

from gsv_service.audio.ffmpeg import AudioError, convert, probe
from tests.audio_fixtures import speech_set  # noqa: F401 - fixture

EXACT = ("mp3", "flac", "ogg", "opus", "m4a", "webm", "3gp", "mp4")


def test_every_format_converts_to_32k_mono_pcm16_of_the_same_length(speech_set, tmp_path):
    ref = sf.info(str(speech_set.utterance)).duration
    for ext, src in [("wav", speech_set.utterance), *speech_set.encoded.items()]:
        info = probe(src)
        dur = convert(src, tmp_path / f"{ext}.wav", info=info)
        out = sf.info(str(tmp_path / f"{ext}.wav"))
        assert (out.samplerate, out.channels, out.subtype, out.format) == (32000, 1, "PCM_16", "WAV"), ext
        assert out.duration == pytest.approx(dur, abs=1e-3)
        # raw ADTS AAC carries no encoder-delay information: its decoder priming stays in (~2 %)
        assert out.duration == pytest.approx(ref, rel=0.01 if ext in EXACT + ("wav",) else 0.03), ext


def test_video_container_is_probed_as_video_and_its_audio_kept(speech_set, tmp_path):
    info = probe(speech_set.encoded["mp4"])
    assert info.has_video and info.codec == "aac"
    assert convert(speech_set.encoded["mp4"], tmp_path / "v.wav", info=info) > 3


def test_stereo_44k_input_is_downmixed_and_resampled(speech_set, tmp_path):
    import numpy as np
    x, sr = sf.read(str(speech_set.utterance), dtype="float32")
    sf.write(str(tmp_path / "st.wav"), np.stack([x, 0.5 * x], axis=1), sr, subtype="PCM_24")
    convert(tmp_path / "st.wav", tmp_path / "out.wav", info=probe(tmp_path / "st.wav"))
    y, sr2 = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    assert sr2 == 32000 and y.ndim == 1 and 0.5 * np.abs(x).max() < np.abs(y).max() < np.abs(x).max()


@pytest.mark.parametrize("kind,expect", [
    ("text_as_wav", "not a readable audio or video file"),
    ("zero_bytes", "empty file (0 bytes)"),
])
def test_bad_files_are_refused_with_a_reason(speech_set, kind, expect):
    with pytest.raises(AudioError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        probe(speech_set.bad[kind])


def test_picture_without_sound_has_no_audio_track(tmp_path):
    import subprocess
    png = tmp_path / "still.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=red:s=32x32:d=1", "-c:v", "mpeg4", str(png)], check=True)
    with pytest.raises(AudioError, match="no audio track"):
        probe(png)


def test_truncated_file_is_refused_or_short_but_never_a_crash(speech_set, tmp_path):
    data = speech_set.encoded["m4a"].read_bytes()
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(data[: len(data) // 3])  # the moov atom is at the end: nothing decodable
    with pytest.raises(AudioError):
        convert(cut, tmp_path / "cut.wav", info=probe(cut))
    assert not (tmp_path / "cut.wav").exists() and not list(tmp_path.glob(".*.part"))
