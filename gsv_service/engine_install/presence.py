"""Is a planned item in place, and does it look like the real thing? Shared by the installer (skip
what is there, in seconds) and the doctor (say what is missing). Cheap checks only: sizes and the
first bytes, never a hash of a multi-GB tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gsv_service.engine_install.plan import ModelItem

MIN_WEIGHTS_BYTES = 64 * 1024  # below this a .pth/.ckpt/.bin/.onnx cannot hold a network
WEIGHT_SUFFIXES = (".pth", ".ckpt", ".bin", ".onnx", ".safetensors", ".pt")
_LFS_POINTER = b"version https://git-lfs"
_HTML = (b"<!doctype html", b"<html")


@dataclass(frozen=True)
class Presence:
    ok: bool
    path: Path
    detail: str  # what was found, for people: "651.2 MB", "missing", "a Git LFS pointer", ...


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


def file_problem(path: Path) -> str | None:
    """Why a file is not a usable model file, or None when it looks right."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if size == 0:
        return "empty"
    if head.startswith(_LFS_POINTER):
        return "a Git LFS pointer, not the file"
    if head.lstrip().lower().startswith(_HTML):
        return "an HTML page (a failed download?)"
    if path.suffix in WEIGHT_SUFFIXES and size < MIN_WEIGHTS_BYTES:
        return f"only {human_size(size)}, too small for model weights"
    return None


def _folder_weights(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES]


def check_path(item: ModelItem, path: Path) -> Presence:
    """Whether `item` is in place at `path` (its file, or its folder with markers and weights)."""
    if item.kind == "file":
        problem = file_problem(path)
        if problem:
            return Presence(False, path, problem)
        return Presence(True, path, human_size(path.stat().st_size))
    if not path.is_dir():
        return Presence(False, path, "missing")
    absent = [m for m in item.marker_files if not (path / m).exists()]
    if absent:
        return Presence(False, path, f"incomplete: no {', '.join(absent)}")
    if item.kind == "folder":
        weights = _folder_weights(path)
        if not weights:
            return Presence(False, path, "no weights file (pytorch_model.bin or model.safetensors)")
        bad = [f"{w.name}: {p}" for w in weights if (p := file_problem(w))]
        if bad:
            return Presence(False, path, "; ".join(bad))
        return Presence(True, path, human_size(sum(w.stat().st_size for w in weights)))
    bad = [f"{m}: {p}" for m in item.marker_files if (path / m).is_file() and (p := file_problem(path / m))]
    if bad:
        return Presence(False, path, "; ".join(bad))
    return Presence(True, path, "present")


def default_path(item: ModelItem, checkout: Path, venv: Path) -> Path:
    """Where the installer puts an item (upstream's default locations)."""
    return (venv if item.base == "venv" else checkout) / item.dest
