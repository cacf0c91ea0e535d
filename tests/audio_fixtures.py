"""Real speech for tests and benchmarks, made with espeak-ng and ffmpeg (no recordings shipped).

Everything here is plain functions over paths; tests wrap them in (session-scoped) fixtures.
Measurements are written independently of gsv_service.audio so tests do not grade the service
with its own ruler.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ESPEAK_SR = 22050

SENTENCES_EN = (
    "The quick brown fox jumps over the lazy dog near the quiet river bank.",
    "Please remember to bring the blue folder to the meeting tomorrow morning.",
    "A gentle breeze moved through the tall grass as the sun went down.",
    "Our train leaves the central station at half past seven every weekday.",
    "She found an old map hidden between the pages of a forgotten book.",
    "Fresh bread and warm soup make a perfect dinner on a cold winter evening.",
    "The children laughed and played in the garden until it was time for tea.",
    "Every scientist knows that careful measurement is the heart of discovery.",
    "He painted the small wooden boat bright red before the summer festival.",
    "Turn left at the bakery, then walk straight on for about two hundred metres.",
)
SENTENCES_ZH = (
    "今天天气很好，我们一起去公园散步吧。",
    "这本书讲述了一个关于勇气和友谊的故事。",
    "请把桌子上的文件交给明天来开会的同事。",
    "春天来了，花园里的花都开得非常漂亮。",
)
VOICES = {"en": "en-us", "zh": "cmn"}


def have_tools() -> bool:
    return all(shutil.which(t) for t in ("espeak-ng", "ffmpeg", "ffprobe"))


def speak(text: str, path: Path, lang: str = "en", speed: int = 160) -> Path:
    """One utterance as a 22.05 kHz mono 16-bit WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", VOICES[lang], "-s", str(speed), "-w", str(path), text],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return path


def read(path: Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    return (x.mean(axis=1) if x.ndim == 2 else x), sr


def write(path: Path, x: np.ndarray, sr: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(x, -1, 1), sr, subtype="PCM_16")
    return path


def utterance(text: str, lang: str, work: Path, speed: int = 160) -> np.ndarray:
    """espeak's output trimmed of its own leading/trailing silence."""
    x, _ = read(speak(text, work / f"utt-{abs(hash((text, speed))) % 10**9}.wav", lang, speed))
    loud = np.flatnonzero(np.abs(x) > 1e-3)
    return x[loud[0]:loud[-1] + 1] if loud.size else x


@dataclass
class LongSpeech:
    path: Path
    sr: int
    spans: list[tuple[float, float]]  # (start_s, end_s) of every utterance

    @property
    def duration(self) -> float:
        return sf.info(str(self.path)).duration


def long_speech(path: Path, n: int = 12, pause_s: float = 0.9, lang: str = "en", lead_s: float = 0.5,
                speeds: tuple[int, ...] = (150, 170, 190)) -> LongSpeech:
    """Sentences separated by pauses of pure silence, like a read-aloud recording."""
    sents = SENTENCES_EN if lang == "en" else SENTENCES_ZH
    work = path.parent / ".espeak"
    parts, spans, t = [np.zeros(int(lead_s * ESPEAK_SR), np.float32)], [], lead_s
    for i in range(n):
        u = utterance(sents[i % len(sents)], lang, work, speeds[i % len(speeds)])
        parts += [u, np.zeros(int(pause_s * ESPEAK_SR), np.float32)]
        spans.append((t, t + len(u) / ESPEAK_SR))
        t += (len(u) + int(pause_s * ESPEAK_SR)) / ESPEAK_SR
    write(path, np.concatenate(parts) * 0.8, ESPEAK_SR)
    return LongSpeech(path, ESPEAK_SR, spans)


def minutes_of_speech(path: Path, minutes: float, lang: str = "en") -> LongSpeech:
    """A long recording (benchmarks): sentences with varied pauses until `minutes` are reached."""
    rng = np.random.default_rng(7)
    sents = SENTENCES_EN if lang == "en" else SENTENCES_ZH
    work = path.parent / ".espeak"
    units = [utterance(s, lang, work, sp) for s in sents for sp in (150, 175)]
    parts, spans, t, i = [], [], 0.0, 0
    while t < minutes * 60:
        u = units[i % len(units)]
        gap = np.zeros(int(rng.uniform(0.35, 1.2) * ESPEAK_SR), np.float32)
        parts += [u, gap]
        spans.append((t, t + len(u) / ESPEAK_SR))
        t += (len(u) + len(gap)) / ESPEAK_SR
        i += 1
    write(path, np.concatenate(parts) * 0.8, ESPEAK_SR)
    return LongSpeech(path, ESPEAK_SR, spans)


def transcode(src: Path, dst: Path, *args: str, video: bool = False) -> Path:
    """ffmpeg re-encode by the destination's extension; `video` adds a small black picture track."""
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        argv += ["-f", "lavfi", "-i", "color=c=black:s=64x64:r=10"]
    argv += ["-i", str(src)]
    if video:
        argv += ["-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "mpeg4"]
    argv += [*args, str(dst)]
    subprocess.run(argv, check=True, timeout=120)
    return dst


def add_noise(x: np.ndarray, snr_db: float, seed: int = 0, colour: str = "white") -> np.ndarray:
    """Stationary noise at `snr_db` below the level of the speech (active frames only)."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(len(x)).astype(np.float32)
    if colour == "pink":  # 1/f power: shape white noise in the frequency domain
        spec = np.fft.rfft(n)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        n = np.fft.irfft(spec, len(n)).astype(np.float32)
    speech_rms = active_rms(x)
    n *= speech_rms / np.sqrt(np.mean(n ** 2)) * 10 ** (-snr_db / 20)
    return (x + n).astype(np.float32)


def frame_rms(x: np.ndarray, sr: int, frame_ms: float = 20.0) -> np.ndarray:
    f = max(1, int(sr * frame_ms / 1000))
    k = len(x) // f
    return np.sqrt(np.mean(x[:k * f].astype(np.float64).reshape(k, f) ** 2, axis=1))


def active_rms(x: np.ndarray, sr: int = ESPEAK_SR) -> float:
    """RMS over frames within 30 dB of the loudest frame (the speech, not the pauses)."""
    r = frame_rms(x, sr)
    keep = r > r.max() * 10 ** (-30 / 20)
    return float(np.sqrt(np.mean(r[keep] ** 2)))


def db(v: float) -> float:
    return 20 * np.log10(max(v, 1e-12))


def levels_by_mask(clean: np.ndarray, other: np.ndarray, sr: int) -> tuple[float, float]:
    """(speech dB, pause dB) of `other`, with speech and pause frames chosen on the clean signal."""
    rc, ro = frame_rms(clean, sr), frame_rms(other, sr)
    n = min(len(rc), len(ro))
    rc, ro = rc[:n], ro[:n]
    speech = rc > rc.max() * 10 ** (-20 / 20)
    pause = rc < 1e-5
    return (db(float(np.sqrt(np.mean(ro[speech] ** 2)))), db(float(np.sqrt(np.mean(ro[pause] ** 2)))))


# ---- bad inputs ----

def text_as_wav(path: Path) -> Path:
    path.write_text("this is not audio, just a text file renamed to .wav\n" * 20)
    return path


def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def silence_wav(path: Path, seconds: float = 6.0, sr: int = 44100) -> Path:
    return write(path, np.zeros(int(seconds * sr), np.float32), sr)


def one_second(path: Path, lang: str = "en") -> Path:
    u = utterance("Hello there.", lang, path.parent / ".espeak")
    return write(path, np.concatenate([u, np.zeros(ESPEAK_SR, np.float32)])[:ESPEAK_SR], ESPEAK_SR)


# ---- pytest fixtures (import them into a test module to use them) ----

FORMATS = {  # extension -> ffmpeg output options
    "mp3": ("-c:a", "libmp3lame", "-b:a", "64k"), "flac": (), "ogg": ("-c:a", "libvorbis"),
    "opus": ("-c:a", "libopus", "-b:a", "32k"), "m4a": ("-c:a", "aac", "-b:a", "64k"),
    "webm": ("-c:a", "libopus", "-b:a", "32k"), "aac": ("-c:a", "aac", "-b:a", "64k"),
    "3gp": ("-c:a", "aac", "-b:a", "32k", "-ar", "16000"),
}


@dataclass
class SpeechSet:
    root: Path
    long: LongSpeech            # ~56 s, 12 sentences with 0.9 s pauses
    long_mp3: Path              # the same as MP3
    utterance: Path             # one ~4 s sentence, WAV 22.05 kHz
    encoded: dict[str, Path]    # the utterance in every other format, plus "mp4" (with video)
    bad: dict[str, Path]        # text_as_wav, zero_bytes, silence, one_second


@pytest.fixture(scope="session")
def speech_set(tmp_path_factory) -> SpeechSet:
    if not have_tools():
        pytest.skip("espeak-ng and ffmpeg are needed (apt-get install espeak-ng ffmpeg)")
    root = tmp_path_factory.mktemp("speech")
    long = long_speech(root / "long.wav", n=12)
    u = utterance(SENTENCES_EN[1], "en", root / ".espeak")
    utt = write(root / "utterance.wav", np.concatenate([np.zeros(4000, np.float32), u * 0.8,
                                                        np.zeros(4000, np.float32)]), ESPEAK_SR)
    encoded = {ext: transcode(utt, root / f"utterance.{ext}", *opts) for ext, opts in FORMATS.items()}
    encoded["mp4"] = transcode(utt, root / "utterance_video.mp4", "-c:a", "aac", video=True)
    bad_dir = root / "bad"
    bad_dir.mkdir()
    bad = {"text_as_wav": text_as_wav(bad_dir / "notes.wav"), "zero_bytes": zero_bytes(bad_dir / "empty.mp3"),
           "silence": silence_wav(bad_dir / "silence.wav"), "one_second": one_second(bad_dir / "short.wav")}
    long_mp3 = transcode(long.path, root / "long.mp3", *FORMATS["mp3"])
    return SpeechSet(root, long, long_mp3, utt, encoded, bad)


def slice_files(folder: Path, specs: list[tuple[str, np.ndarray]], sr: int = 32000) -> list[Path]:
    """Write (name, samples at 22.05 kHz) as 32 kHz 16-bit slices, as slice_audio leaves them."""
    out = []
    for name, x in specs:
        n = int(round(len(x) * sr / ESPEAK_SR))
        y = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32) if len(x) else x
        out.append(write(folder / name, y, sr))
    return out
