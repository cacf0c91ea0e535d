"""Base models a step's params may name (pretrained_s2G, pretrained_s2D, pretrained_s1): a name
inside the configured pretrained folder (GSV_PRETRAINED_DIR, else the checkout's
GPT_SoVITS/pretrained_models), never any other server path.

Upstream's training scripts `torch.load` these files, so a path of the user's choosing would load
an uploaded pickle, or tell which files exist on the server. A name that leaves the folder and a
name that is not there get the same answer, so nothing outside can be probed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gsv_service.settings import Settings

if TYPE_CHECKING:
    from gsv_service.engine import Engine
    from gsv_service.steps.base import StepParams

MODEL_PARAMS = ("pretrained_s2G", "pretrained_s2D", "pretrained_s1")
MODEL_SUFFIXES = (".pth", ".ckpt", ".pt")
MAX_LISTED = 500


class ModelNameRejected(ValueError):
    """Not a model in the pretrained folder (missing and forbidden read the same)."""


def pretrained_root(settings: Settings, engine: Engine | None) -> Path | None:
    """The folder names are resolved in; None when neither an engine nor GSV_PRETRAINED_DIR is set
    (then engine steps answer 424 anyway)."""
    if engine is not None:
        return Path(engine.pretrained_root)
    return Path(settings.pretrained_dir).resolve() if settings.pretrained_dir else None


def rejection(field: str, value: str) -> str:
    shown = value if len(value) <= 120 else value[:120] + "..."
    return (f"{field}: no model named {shown!r} in the pretrained folder; GET /api/v1/options lists "
            "them (pretrained_models), or leave the param out to use the version's own")


def resolve(root: Path, value: str, field: str) -> Path:
    """The file `value` names inside `root`, resolved; ModelNameRejected otherwise. An absolute path
    is accepted only when it lies in the folder (clients that send the full path keep working)."""
    root = root.resolve()
    if not value or "\x00" in value or len(value) > 1024:
        raise ModelNameRejected(rejection(field, value or ""))
    given = Path(value)
    if ".." in given.parts:
        raise ModelNameRejected(rejection(field, value))
    target = (given if given.is_absolute() else root / given).resolve()
    # resolve() follows links: one that leads out of the folder is refused like any other path.
    if not target.is_relative_to(root) or target == root or not target.is_file():
        raise ModelNameRejected(rejection(field, value))
    return target


def given_models(params: StepParams) -> dict[str, str]:
    """The model params a step's parsed params set: field -> value."""
    return {f: v for f in MODEL_PARAMS if (v := getattr(params, f, None)) is not None}


def check_params(params: StepParams, root: Path | None) -> None:
    """Raise ModelNameRejected for the first model param that names nothing in the folder. Without
    a folder (no engine) there is nothing to check: the step answers 424 for the engine."""
    if root is None:
        return
    for field, value in given_models(params).items():
        resolve(root, value, field)


def path_or_default(root: Path, value: str | None, field: str, default: Path) -> Path:
    """The path a step hands to the engine: the named model, or the version's default."""
    return default if value is None else resolve(root, value, field)


def available(root: Path | None, limit: int = MAX_LISTED) -> list[str]:
    """Model files in the folder, as names a param accepts (sorted, at most `limit`)."""
    if root is None or not root.is_dir():
        return []
    root = root.resolve()
    out: list[str] = []
    for name in _model_files(root):
        try:
            resolve(root, name, "")
        except ModelNameRejected:
            continue
        out.append(name)
        if len(out) >= limit:
            break
    return sorted(out)


def _model_files(root: Path) -> Iterable[str]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel = Path(folder).relative_to(root)
        for f in sorted(files):
            if f.endswith(MODEL_SUFFIXES):
                yield (rel / f).as_posix()
