"""ffprobe and ffmpeg as child processes: tell whether a file holds usable audio, and convert it
to the training format (32 kHz mono 16-bit WAV). Output of the tools is read with a cap."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from gsv_service.audio import TARGET_SR

MAX_TOOL_OUTPUT = 1024 * 1024
PROBE_TIMEOUT_S = 60
MIN_SECONDS = 0.05  # less than this is no usable audio at all


class AudioError(Exception):
    """A file that cannot be used; the message says why, in words a person can act on."""


@dataclass(frozen=True)
class Probe:
    format: str
    codec: str
    sample_rate: int
    channels: int
    duration: float | None
    has_video: bool


def tool(name: str) -> str:
    exe = shutil.which(name)
    if not exe:
        raise AudioError(f"{name} is not installed on the server; install ffmpeg (apt-get install ffmpeg)")
    return exe


def run_capped(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a tool; its stdout/stderr go to temp files, of which at most MAX_TOOL_OUTPUT is read."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            raise AudioError(f"{Path(argv[0]).name} took longer than {timeout:.0f} s on this file; "
                             "it may be damaged") from None
        out.seek(0)
        err.seek(0)
        return (rc, out.read(MAX_TOOL_OUTPUT).decode("utf-8", "replace"),
                err.read(MAX_TOOL_OUTPUT).decode("utf-8", "replace"))


def _first_error(stderr: str, path: Path) -> str:
    for line in stderr.splitlines():
        line = line.strip()
        if line:
            return line.replace(str(path), path.name)
    return "unknown error"


def probe(path: Path) -> Probe:
    """What the file holds; AudioError when it is empty, not media, or has no audio track."""
    size = path.stat().st_size
    if size == 0:
        raise AudioError("empty file (0 bytes); upload it again")
    rc, out, err = run_capped([tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format",
                               "-show_streams", str(path)], PROBE_TIMEOUT_S)
    if rc != 0:
        raise AudioError(f"not a readable audio or video file ({_first_error(err, path)})")
    try:
        info = json.loads(out or "{}")
    except ValueError:
        raise AudioError("ffprobe gave an unreadable answer for this file") from None
    streams = info.get("streams") or []
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    fmt = info.get("format") or {}
    if not audio:
        kinds = sorted({s.get("codec_type", "?") for s in streams}) or ["nothing"]
        raise AudioError(f"no audio track (the file holds {', '.join(kinds)}; format "
                         f"{fmt.get('format_name', 'unknown')})")
    a = audio[0]
    dur = _float(a.get("duration")) or _float(fmt.get("duration"))
    if dur is not None and dur < MIN_SECONDS:
        raise AudioError(f"the audio track is only {dur * 1000:.0f} ms long")
    return Probe(format=fmt.get("format_name", "unknown"), codec=a.get("codec_name", "unknown"),
                 sample_rate=int(_float(a.get("sample_rate")) or 0), channels=int(a.get("channels") or 0),
                 duration=dur, has_video=any(s.get("codec_type") == "video" and
                                             not (s.get("disposition") or {}).get("attached_pic")
                                             for s in streams))


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and f >= 0 else None  # NaN and negatives mean "unknown"


def convert(src: Path, dst: Path, sr: int = TARGET_SR, info: Probe | None = None,
            timeout: float = 3600) -> float:
    """Decode the first audio track to mono 16-bit PCM WAV at `sr`; return its duration in seconds.

    MP4-family files state the exact track length (edit list) but ffmpeg 5 still decodes the AAC
    padding of the last frame, so the output is cut to the stated length there (elsewhere a
    stated length may be a bitrate estimate, and cutting to it could lose speech)."""
    tmp = dst.with_name(f".{dst.name}.part")
    limit = (["-t", f"{info.duration:.6f}"] if info and info.duration and "mp4" in info.format else [])
    argv = [tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
            "-i", str(src), "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(sr), *limit,
            "-c:a", "pcm_s16le", "-f", "wav", str(tmp)]
    try:
        rc, _out, err = run_capped(argv, timeout)
        if rc != 0:
            raise AudioError(f"ffmpeg could not decode it ({_first_error(err, src)})")
        try:
            frames: int = sf.info(str(tmp)).frames
        except RuntimeError:
            frames = 0
        if frames < MIN_SECONDS * sr:
            raise AudioError("no audio could be decoded from it (the audio track is empty or damaged)")
        tmp.replace(dst)
        return frames / sr
    finally:
        tmp.unlink(missing_ok=True)
