"""Task directories: the layout of api_tasks/{task_id}/ and safe resolution of user-given paths.

Every path that comes from a request goes through `safe_name` or `resolve_inside`.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass
from collections.abc import Mapping
from pathlib import Path

TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_NAME = 200
MAX_NAME_BYTES = 255  # what file systems hold in one path component (UTF-8 bytes, not characters)
MAX_REL_PATH = 1024

AUDIO_EXTS = frozenset({".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".webm", ".3gp",
                        ".mp4", ".mkv", ".mov", ".avi", ".wma", ".aif", ".aiff"})
TRANSCRIPT_EXTS = frozenset({".list", ".txt", ".lab"})

# Folders, in the order a bare file name is looked up for download: outputs first, then the
# experiment folder, then audio from the latest stage back to the uploads.
OUTPUT_DIR, WEIGHTS_DIR, CONFIGS_DIR, LOGS_DIR = "output", "weights", "configs", "logs"
INPUT_DIR, INPUT_TEXT_DIR = "input_audio", "input_transcripts"
AUDIO_STAGES = ("denoised", "sliced", "converted_wav", INPUT_DIR)
UPLOAD_FOLDERS = {INPUT_DIR: AUDIO_EXTS, INPUT_TEXT_DIR: TRANSCRIPT_EXTS}


class PathRejected(ValueError):
    """A user-supplied name or path that we refuse; the message says why."""


def _check_chars(text: str, what: str) -> None:
    for ch in text:
        cat = unicodedata.category(ch)
        if cat.startswith("C") or cat in ("Mn", "Me", "Zl", "Zp"):
            raise PathRejected(f"{what} contains a control or combining character (U+{ord(ch):04X}); "
                               "use plain letters, digits, spaces, '-', '_' and '.'")


def safe_name(name: str, what: str = "file name") -> str:
    """A single safe path component, or PathRejected. Keeps the basename of client paths."""
    if name is None:
        raise PathRejected(f"{what} is missing")
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", ".."):
        raise PathRejected(f"{what} {name!r} has no usable base name")
    if len(base) > MAX_NAME:
        raise PathRejected(f"{what} is {len(base)} characters long; the limit is {MAX_NAME}")
    if len(base.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise PathRejected(f"{what} is {len(base.encode('utf-8', 'surrogatepass'))} bytes long in UTF-8; "
                           f"the limit is {MAX_NAME_BYTES} bytes: shorten it")
    _check_chars(base, what)
    if base.startswith("."):
        raise PathRejected(f"{what} {base!r} starts with a dot; hidden files are not accepted")
    return base


def check_task_id(task_id: str) -> str:
    if len(task_id) > 64 or not TASK_ID_RE.match(task_id):
        raise PathRejected("task id must be 1-64 letters, digits, '-' or '_' (as returned by "
                           "POST /api/v1/task/create)")
    return task_id


@dataclass(frozen=True)
class Workspace:
    """Paths of one task. Pure path arithmetic: nothing is created until asked."""

    root: Path  # api_tasks/{task_id}, absolute
    exp_name: str

    @property
    def exp_dir(self) -> Path:
        return self.root / "experiments" / self.exp_name

    @property
    def transcript_path(self) -> Path:
        """The task's transcript list, in upstream's layout (`wav_path|speaker|LANG|text`)."""
        return self.root / "transcripts" / f"{self.exp_name}.list"

    def utterances_dir(self, denoise_completed: bool) -> Path:
        """Where the task's utterances are: denoised when denoise_audio completed (and wrote any),
        else the slices."""
        den = self.root / "denoised"
        if denoise_completed and any(den.glob("*.wav")):
            return den
        return self.root / "sliced"

    def ensure(self, *names: str) -> None:
        for n in names:
            (self.root / n).mkdir(parents=True, exist_ok=True)

    def run_log(self, step: str, run_id: str) -> Path:
        return self.root / LOGS_DIR / f"{step}-{run_id}.log"

    def resolve_inside(self, rel: str) -> Path:
        """Resolve a relative path from a request; refuse anything that leaves the task dir."""
        if len(rel) > MAX_REL_PATH:
            raise PathRejected(f"path is {len(rel)} characters long; the limit is {MAX_REL_PATH}")
        _check_chars(rel, "path")
        rel = rel.replace("\\", "/")
        if rel.startswith("/") or any(p == ".." for p in rel.split("/")):
            raise PathRejected(f"path {rel!r} must be relative to the task folder, without '..'")
        root = self.root.resolve()
        target = (root / rel).resolve()
        if target != root and root not in target.parents:
            raise PathRejected(f"path {rel!r} points outside the task folder")
        return target

    def download_search_dirs(self) -> list[Path]:
        return ([self.root / OUTPUT_DIR, self.root / WEIGHTS_DIR / "sovits", self.root / WEIGHTS_DIR / "gpt",
                 self.root / WEIGHTS_DIR, self.exp_dir]
                + [self.root / s for s in AUDIO_STAGES] + [self.root / "transcripts", self.root])

    def find_by_name(self, name: str) -> Path | None:
        name = safe_name(name)
        for d in self.download_search_dirs():
            p = d / name
            if p.is_file() and not p.is_symlink():
                return p
        return None

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def denoise_completed(statuses: Mapping[str, str]) -> bool:
    """Whether a task's step statuses (step -> status) say denoise_audio completed."""
    return statuses.get("denoise_audio") == "completed"


def task_workspace(task_root: Path, task_id: str, exp_name: str) -> Workspace:
    return Workspace(root=(task_root / check_task_id(task_id)).resolve(), exp_name=exp_name)
