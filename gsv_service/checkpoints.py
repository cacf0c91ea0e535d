"""Resume checkpoints of the training steps, and pruning them once a training run has completed.

What upstream writes (GPT-SoVITS @ 48b1a0169a28), besides the trained weights:
- s2_train.py: `{exp_dir}/logs_s2_{version}/G_{tag}.pth` and `D_{tag}.pth` at every save (generator
  and discriminator with their optimizer state, about 1 GB a pair for v2). The tag is the global
  step, or always 233333333333 with if_save_latest (one pair, overwritten). It resumes from the
  newest G_ and D_ by the number in the name (utils.latest_checkpoint_path).
- s1_train.py: `{output_dir}/ckpt/epoch={E}-step={S}.ckpt` (Lightning's full checkpoint); with
  if_save_latest upstream deletes the older ones itself. It resumes from the newest by (E, S).

These are resume state only. What a user downloads, the weights in weights/sovits and weights/gpt
(GET /task/{id}/models), lives elsewhere and is never touched here; `_removable` refuses any file
outside the checkpoint folder or inside a weights folder, whatever the folder layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsv_service import trained_models as tm
from gsv_service.engine_configs import s1_output_dir
from gsv_service.workspace import Workspace

_S2 = re.compile(r"^[GD]_(\d+)\.pth$")
_S1 = re.compile(r"^epoch=(\d+)-step=(\d+)\.ckpt$")


@dataclass
class Pruned:
    """What one pruning pass removed and kept (paths relative to the task folder)."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    freed_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """For the run's result: counts, not every name (the run log lists the removed files)."""
        return {"removed_files": len(self.removed), "kept": self.kept, "freed_bytes": self.freed_bytes}


def s2_state_dir(ws: Workspace, version: str) -> Path:
    return ws.exp_dir / f"logs_s2_{version}"


def s1_ckpt_dir(ws: Workspace, version: str) -> Path:
    return s1_output_dir(ws.exp_dir, version) / "ckpt"


def _files(folder: Path, pattern: re.Pattern[str]) -> list[tuple[tuple[int, ...], Path]]:
    """(order key, path) of the regular files in `folder` whose name matches `pattern`."""
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = pattern.match(p.name)
        if m and p.is_file() and not p.is_symlink():
            out.append((tuple(int(g) for g in m.groups()), p))
    return out


def _removable(p: Path, folder: Path, protected: list[Path]) -> bool:
    real = p.resolve()
    return real.parent == folder.resolve() and not any(d in real.parents for d in protected)


def _prune(ws: Workspace, folder: Path, pattern: re.Pattern[str], keep: int) -> Pruned:
    """Keep the files of the `keep` newest keys (a key is a G_/D_ pair's tag or one ckpt's
    (epoch, step)), newest as upstream chooses what to resume from; remove the rest."""
    found = _files(folder, pattern)
    keys = sorted({k for k, _ in found}, reverse=True)
    kept_keys = set(keys[:keep])
    protected = [tm.weights_dir(ws, k).resolve() for k in tm.KINDS]
    out = Pruned()
    for key, p in sorted(found, key=lambda kp: (kp[0], kp[1].name)):
        rel = p.relative_to(ws.root).as_posix()
        if key in kept_keys or not _removable(p, folder, protected):
            out.kept.append(rel)
            continue
        size = p.stat().st_size
        p.unlink(missing_ok=True)
        out.removed.append(rel)
        out.freed_bytes += size
    return out


def prune_sovits(ws: Workspace, version: str, keep: int) -> Pruned:
    """SoVITS: keep the `keep` newest G_/D_ pairs of logs_s2_{version}."""
    return _prune(ws, s2_state_dir(ws, version), _S2, keep)


def prune_gpt(ws: Workspace, version: str, keep: int) -> Pruned:
    """GPT: keep the `keep` newest Lightning checkpoints of logs_s1_{version}/ckpt."""
    return _prune(ws, s1_ckpt_dir(ws, version), _S1, keep)


def prune_after_training(kind: str, ws: Workspace, version: str, keep: int,
                         log: Callable[[str], None]) -> dict[str, Any]:
    """Prune after a completed run; the run's result gets what was freed. A file that cannot be
    removed is logged, never a failure of a run whose training succeeded."""
    try:
        pruned = (prune_sovits if kind == "sovits" else prune_gpt)(ws, version, keep)
    except OSError as e:
        log(f"resume checkpoints not pruned: {e}")
        return {"removed_files": 0, "kept": [], "freed_bytes": 0, "error": str(e)}
    if pruned.removed:
        log(f"pruned {len(pruned.removed)} resume checkpoint file(s), freed {human_bytes(pruned.freed_bytes)}"
            f" (keep_resume_checkpoints={keep}): {', '.join(pruned.removed)}")
    return pruned.to_dict()


def human_bytes(n: int) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    size, i = float(n), 0
    while size >= 1024 and i < len(units) - 1:
        size, i = size / 1024, i + 1
    return f"{n} bytes" if i == 0 else f"{size:.1f} {units[i]}"
