"""The trained weights of a task: weights/sovits/{exp}_e{epoch}_s{step}.pth (s2_train.py's savee)
and weights/gpt/{exp}-e{epoch}.ckpt (s1_train.py's half-weights save)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gsv_service.workspace import WEIGHTS_DIR, Workspace

KINDS = {"sovits": ("sovits", ".pth"), "gpt": ("gpt", ".ckpt")}
_SOVITS = re.compile(r"^(?P<name>.+)_e(?P<epoch>\d+)_s(?P<step>\d+)\.pth$")
_GPT = re.compile(r"^(?P<name>.+)-e(?P<epoch>\d+)\.ckpt$")


@dataclass(frozen=True)
class TrainedModel:
    kind: str            # sovits | gpt
    name: str            # file name
    path: str            # relative to the task folder
    epoch: int | None
    step: int | None     # SoVITS only: GPT weights carry no step in their name
    size: int
    modified: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weights_dir(ws: Workspace, kind: str) -> Path:
    return ws.root / WEIGHTS_DIR / KINDS[kind][0]


def _parse(kind: str, p: Path, root: Path) -> TrainedModel:
    m = (_SOVITS if kind == "sovits" else _GPT).match(p.name)
    st = p.stat()
    return TrainedModel(kind=kind, name=p.name, path=p.relative_to(root).as_posix(),
                        epoch=int(m["epoch"]) if m else None,
                        step=int(m["step"]) if m and kind == "sovits" else None, size=st.st_size,
                        modified=datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat())


def list_models(ws: Workspace, kind: str | None = None) -> list[TrainedModel]:
    """Saved weights, per kind in training order (epoch, then step, then time)."""
    out: list[TrainedModel] = []
    for k in ([kind] if kind else list(KINDS)):
        d = weights_dir(ws, k)
        if not d.is_dir():
            continue
        found = [_parse(k, p, ws.root) for p in d.iterdir()
                 if p.is_file() and not p.is_symlink() and p.suffix == KINDS[k][1]]
        found.sort(key=lambda m: (m.epoch or 0, m.step or 0, m.modified))
        out += found
    return out


def latest(ws: Workspace, kind: str) -> TrainedModel | None:
    models = list_models(ws, kind)
    return models[-1] if models else None


def find(ws: Workspace, kind: str, name: str) -> TrainedModel | None:
    return next((m for m in list_models(ws, kind) if m.name == name), None)
