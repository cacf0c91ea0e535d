"""Training progress from the engine's own output.

s2_train.py logs through `logging` to stdout (`INFO:{exp}:Train Epoch: 3 [0%]`, then a list of
the six losses + global step + lr, `INFO:{exp}:====> Epoch: 3` at each epoch end) and draws a
tqdm bar per epoch on stderr (`45%|####5     | 43/96 [03:40<04:31,  5.12s/it]`). s1_train.py's
PyTorch Lightning draws `Epoch 2:  50%|#####     | 48/96 [00:10<00:10, 4.50it/s, v_num=0,
total_loss_step=5.83, lr_step=0.002, top_3_acc_step=0.10]` (epochs counted from 0), or, when
`rich` is installed (gradio brings it), Lightning's RichProgressBar: `Epoch 2/4 ━━━━╸━━ 48/96
0:00:10 • 0:00:10 4.50it/s v_num: 0 total_loss_step: 5.830 ...` (epochs from 0, of max_epochs - 1),
which rich draws live only on a terminal (see engine_configs.s1_env). Bars redraw with carriage
returns and cursor escapes, so the log is read in segments cut at both \\r and \\n, escapes removed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MAX_READ = 1 << 20  # per poll; when more arrived, only the newest part matters for progress

_BAR = re.compile(r"(?:Epoch (\d+):\s*)?\d+%\|[^|]*\|\s*(\d+)/(\d+)\s*\[([^\]]*)\]?")
_S2_TRAIN_EPOCH = re.compile(r"Train Epoch: (\d+) \[")
_S2_EPOCH_END = re.compile(r"====> Epoch: (\d+)")
_S2_START = re.compile(r"start training from epoch (\d+)")
_S2_LOSSES = re.compile(r"(?:INFO:[^:]*:)?\s*\[([-+0-9.eE, naif]+)\]\s*$")
_KV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:=|: )([-+0-9.eE]+|nan|inf)")
_RICH_BAR = re.compile(r"Epoch (\d+)/\d+\s+[^\d\s]*\s*(\d+)/(\d+)\s(.*)$")
_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")

S2_LOSS_NAMES = ("loss_disc", "loss_gen", "loss_fm", "loss_mel", "kl_ssl", "loss_kl")


class SegmentReader:
    """Text appended to a log file since the last call, split at \\n and \\r."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self._partial = ""

    def segments(self) -> list[str]:
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                if size - self.offset > MAX_READ:
                    self.offset, self._partial = size - MAX_READ, ""
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except FileNotFoundError:
            return []
        self.offset += len(data)
        text = self._partial + data.decode("utf-8", "replace")
        parts = re.split(r"[\r\n]", text)
        self._partial = parts.pop()[-65536:]
        return [q for q in (_ANSI.sub("", p) for p in parts) if q.strip()]


def bar_position(seg: str) -> tuple[int, int] | None:
    """(done, total) of a tqdm bar segment, or None."""
    m = _BAR.search(seg)
    return (int(m.group(2)), int(m.group(3))) if m else None


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class TrainingProgress:
    """Epoch, iteration and losses of one training run; `report()` gives what to store."""

    def __init__(self, epochs: int, what: str):
        self.epochs = max(1, epochs)
        self.what = what
        self.epoch = 1           # 1-based, the epoch being trained
        self.iteration = 0       # within the epoch
        self.per_epoch: int | None = None
        self.losses: dict[str, float] = {}
        self.extra: dict[str, float] = {}
        self.changed = False

    def _bar(self, it: int, total: int, epoch0: str | None) -> None:
        if epoch0 is not None:
            self.epoch = int(epoch0) + 1
        self.iteration, self.per_epoch = it, total
        self.changed = True

    def report(self) -> tuple[float, str, dict[str, Any]]:
        frac_epoch = (self.iteration / self.per_epoch) if self.per_epoch else 0.0
        fraction = min(1.0, ((self.epoch - 1) + min(frac_epoch, 1.0)) / self.epochs)
        metrics: dict[str, Any] = {"epoch": self.epoch, "epochs": self.epochs, "iteration": self.iteration,
                         "losses": dict(self.losses), **self.extra}
        msg = f"{self.what}: epoch {self.epoch}/{self.epochs}"
        if self.per_epoch:
            step = (self.epoch - 1) * self.per_epoch + self.iteration
            metrics.update(step=step, total_steps=self.epochs * self.per_epoch,
                           iterations_per_epoch=self.per_epoch)
            msg += f", step {step}/{self.epochs * self.per_epoch}"
        if self.losses:
            msg += ", " + ", ".join(f"{k} {v:.4g}" for k, v in list(self.losses.items())[:4])
        self.changed = False
        return fraction, msg, metrics


class S2Progress(TrainingProgress):
    """s2_train.py (SoVITS)."""

    def __init__(self, epochs: int):
        super().__init__(epochs, "SoVITS training")
        self.started = False  # tqdm bars before this line are the dataset's, not an epoch's

    def feed(self, seg: str) -> None:
        if m := _S2_START.search(seg):
            self.epoch, self.iteration, self.started = int(m.group(1)), 0, True
        elif m := _S2_TRAIN_EPOCH.search(seg):
            self.epoch = int(m.group(1))
        elif m := _S2_EPOCH_END.search(seg):
            self.epoch, self.iteration = min(int(m.group(1)) + 1, self.epochs), 0
            if int(m.group(1)) >= self.epochs:  # the last one: report it as whole
                self.iteration = self.per_epoch or 0
        elif m := _S2_LOSSES.search(seg):
            values = [_num(v.strip()) for v in m.group(1).split(",")]
            nums = [v for v in values if v is not None]
            if len(values) == len(S2_LOSS_NAMES) + 2 and len(nums) == len(values):
                self.losses = dict(zip(S2_LOSS_NAMES, nums[:6], strict=False))
                self.extra = {"global_step": int(nums[6]), "lr": nums[7]}
        elif self.started and (m := _BAR.search(seg)):
            self._bar(int(m.group(2)), int(m.group(3)), None)
            return
        else:
            return
        self.changed = True


class S1Progress(TrainingProgress):
    """s1_train.py (GPT) through PyTorch Lightning's progress bar."""

    def __init__(self, epochs: int):
        super().__init__(epochs, "GPT training")

    def feed(self, seg: str) -> None:
        m = _RICH_BAR.search(seg) or _BAR.search(seg)
        if not m or m.group(1) is None:
            return
        self._bar(int(m.group(2)), int(m.group(3)), m.group(1))
        logged = {k: n for k, v in _KV.findall(m.group(4) or "")
                  if k.endswith(("_step", "_epoch")) and (n := _num(v)) is not None}
        for key in sorted(logged, key=lambda k: k.endswith("_step")):  # the step's value wins
            name = key.removesuffix("_step").removesuffix("_epoch")
            (self.losses if "loss" in name else self.extra)[name] = logged[key]
