"""What every engine step shares: the engine and devices of a run, the transcript as upstream reads
it, the engine's tracebacks from the run log, and clearing stale outputs."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from gsv_service.engine import DeviceError, DevicePlan, Engine, device_plan, require_engine
from gsv_service.procs import tail_bytes
from gsv_service.steps.base import RunContext, StepFailed
from gsv_service.states import Reason
from gsv_service.task_config import TaskConfig

LOG_SCAN_BYTES = 2 * 1024 * 1024   # how much of a run log is searched for the engine's errors
MAX_ERROR_CHARS = 3000
_TB = "Traceback (most recent call last):"
# the line that closes a traceback: "ValueError: ...", "torch.OutOfMemoryError: ...", "KeyboardInterrupt"
_EXC_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*|[A-Za-z_][\w.]*: .*")
_MAX_TB_LINES = 200


@dataclass(frozen=True)
class Item:
    """One transcript line, named as the engine names it (basename of the wav path)."""

    name: str
    wav: str
    language: str
    text: str


def task_config(ctx: RunContext) -> TaskConfig:
    return ctx.config


def engine_of(ctx: RunContext) -> Engine:
    return require_engine(ctx.engine, ctx.step)


def plan_of(ctx: RunContext, cfg: TaskConfig, is_half: bool | None) -> DevicePlan:
    try:
        return device_plan(ctx.settings, cfg.gpu_ids, is_half if is_half is not None else cfg.is_half)
    except DeviceError as e:
        raise StepFailed(str(e)) from None


def check_models(models: dict[str, Path]) -> None:
    """Fail before launching anything when a pretrained model the engine reads is missing."""
    missing = [f"{p} (set {what})" for what, p in models.items() if not p.exists()]
    if missing:
        raise StepFailed("pretrained model missing: " + "; ".join(missing) + ". Download the "
                         "engine's pretrained models, or make tiny test ones with "
                         "tools/make_tiny_models.py", Reason.error)


def clean_path(path: str) -> str:
    """Upstream's tools/my_utils.clean_path: trailing slashes, quotes and spaces go."""
    while path.endswith(("\\", "/")):
        path = path[:-1]
    return path.replace("/", os.sep).replace("\\", os.sep).strip(" '\n\"\u202a")


def read_transcript(path: Path) -> tuple[list[Item], list[str]]:
    """The items of a .list as the feature scripts see them, and the malformed lines."""
    items, bad = [], []
    lines = path.read_text(encoding="utf-8").strip("\n").split("\n")
    for line in lines:
        parts = line.split("|")
        if len(parts) != 4:
            bad.append(line)
            continue
        wav, _spk, lang, text = parts
        items.append(Item(os.path.basename(clean_path(wav)), wav, lang, text))
    return items, bad


def task_transcript(ctx: RunContext) -> tuple[Path, list[Item]]:
    path = ctx.workspace.transcript_path
    items, bad = read_transcript(path)
    if bad:
        shown = "; ".join(repr(b[:80]) for b in bad[:3])
        raise StepFailed(f"{len(bad)} line(s) of {path.name} are not 'wav_path|speaker|LANG|text': "
                         f"{shown}. Fix the transcript (run asr_transcribe again)")
    if not items:
        raise StepFailed(f"{path.name} has no lines; run asr_transcribe first")
    return path, items


def clear(*paths: Path) -> None:
    """Upstream skips work whose output exists, so a re-run must start from nothing."""
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def tracebacks(log_path: Path) -> list[tuple[str, str, str]]:
    """(text before 'Traceback' on its line, the whole traceback, its exception line) for every
    traceback in the last LOG_SCAN_BYTES of the run log."""
    lines = tail_bytes(log_path, LOG_SCAN_BYTES).splitlines()
    found, i = [], 0
    while i < len(lines):
        at = lines[i].find(_TB)
        if at < 0:
            i += 1
            continue
        prefix, block = lines[i][:at].strip(), [lines[i][at:]]
        i += 1
        # parallel shards can crash at once and interleave their tracebacks in the one log, down
        # to pieces of a line when unbuffered: a block runs to the first line shaped like an
        # exception, and a second header or a torn frame line inside it belongs to a sibling
        end = next((j for j in range(i, min(len(lines), i + _MAX_TB_LINES))
                    if _EXC_LINE.fullmatch(lines[j].rstrip())), None)
        if end is None:   # no exception line in reach: the frames are the indented lines
            end = i
            while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()
                                        or lines[end].strip() == _TB):
                end += 1
        block += lines[i:end]
        i = end
        exc = lines[i].strip() if i < len(lines) else ""
        if exc:
            block.append(lines[i])
            i += 1
        found.append((prefix, "\n".join(block), exc))
    return found


def last_traceback(log_path: Path) -> str:
    tbs = tracebacks(log_path)
    if not tbs:
        return ""
    text = tbs[-1][1]
    return text if len(text) <= MAX_ERROR_CHARS else "...\n" + text[-MAX_ERROR_CHARS:]


def with_traceback(message: str, log_path: Path) -> str:
    tb = last_traceback(log_path)
    return f"{message}\nengine traceback (from the run log):\n{tb}" if tb else \
        f"{message} (no traceback in the run log; see GET /api/v1/task/{{task_id}}/logs)"


def fail_exit_codes(codes: list[int], what: str, log_path: Path) -> None:
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    if bad:
        shards = ", ".join(f"{'shard ' + str(i + 1) + ' ' if len(codes) > 1 else ''}exited with {c}"
                           for i, c in bad)
        raise StepFailed(with_traceback(f"{what}: {shards}", log_path), Reason.exit_code)


def item_errors(log_path: Path, items: list[Item]) -> dict[str, str]:
    """The exception the engine printed for an item (upstream prints the item, then the traceback)."""
    out: dict[str, str] = {}
    for prefix, _tb, exc in tracebacks(log_path):
        for it in items:
            if it.name not in out and prefix and (prefix.startswith(it.wav) or
                                                  re.match(re.escape(it.name) + r"(\s|$)", prefix)):
                out[it.name] = exc
    return out
