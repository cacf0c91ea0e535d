"""Merging the feature scripts' part files (as upstream's web UI does) and checking what they
produced against the transcript, naming every dropped item and why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Set as AbstractSet
from typing import Any

from gsv_service.procs import tail_bytes
from gsv_service.steps.base import RunContext, StepFailed, audio_source
from gsv_service.states import Reason
from gsv_service.steps import engine_common as ec

SEMANTIC_HEADER = "item_name\tsemantic_audio"
# The languages 1-get-text.py trains on (its language_v1_to_language_v2 table).
TEXT_LANGS = frozenset({"ZH", "zh", "JP", "jp", "JA", "ja", "EN", "en", "En", "KO", "Ko", "ko",
                        "yue", "YUE", "Yue"})
MAX_LISTED = 10


@dataclass(frozen=True)
class Outcome:
    what: str
    expected: list[ec.Item]
    got: set[str]
    output: str


def _read_parts(exp: Path, pattern: str, parts: int, what: str, log_path: Path) -> list[str]:
    lines: list[str] = []
    for i in range(parts):
        part = exp / pattern.format(i)
        if not part.is_file():
            raise StepFailed(ec.with_traceback(f"{what}: shard {i + 1} wrote no {part.name}", log_path),
                             Reason.outputs_missing)
        lines += part.read_text(encoding="utf-8").strip("\n").split("\n")
    return lines


def merge_text(ctx: RunContext, parts: int, exclude: AbstractSet[str] = frozenset()) -> set[str]:
    """2-name2text-{i}.txt -> 2-name2text.txt (webui.py open1a); the item names in it.
    `exclude`: items left out whatever the engine made of them (a blank text: upstream's English
    front-end writes it with no phones, which training cannot use; others raise)."""
    exp = ctx.workspace.exp_dir
    opt = [ln for ln in _read_parts(exp, "2-name2text-{}.txt", parts, "text features", ctx.log_path)
           if ln.split("\t", 1)[0] not in exclude]
    (exp / "2-name2text.txt").write_text("\n".join(opt) + "\n", encoding="utf-8")
    for i in range(parts):
        (exp / f"2-name2text-{i}.txt").unlink()
    return {ln.split("\t", 1)[0] for ln in opt if ln.strip()}


def merge_semantic(ctx: RunContext, parts: int) -> set[str]:
    """6-name2semantic-{i}.tsv -> 6-name2semantic.tsv with its header (webui.py open1c)."""
    exp = ctx.workspace.exp_dir
    body = _read_parts(exp, "6-name2semantic-{}.tsv", parts, "semantic tokens", ctx.log_path)
    (exp / "6-name2semantic.tsv").write_text("\n".join([SEMANTIC_HEADER] + body) + "\n",
                                             encoding="utf-8")
    for i in range(parts):
        (exp / f"6-name2semantic-{i}.tsv").unlink()
    return {ln.split("\t", 1)[0] for ln in body if ln.strip()}


def names_in(folder: Path, suffix: str) -> set[str]:
    """Item names of the files in a feature folder ("a.wav.pt" -> "a.wav" for suffix ".pt")."""
    if not folder.is_dir():
        return set()
    return {p.name[: len(p.name) - len(suffix)] for p in folder.iterdir()
            if p.is_file() and p.name.endswith(suffix) and p.stat().st_size > 0}


def _reason(ctx: RunContext, it: ec.Item, exc: str | None, log: str, what: str) -> str:
    data = None
    if what == "text features":
        if not it.text.strip():
            data = "empty text"
        elif it.language not in TEXT_LANGS:
            data = f"language {it.language!r} is not supported for training"
    elif what == "HuBERT features":
        if f"{it.name}-filtered," in log:
            data = "audio peak above 2.2 after decoding: filtered by the engine"
        elif f"nan filtered:{it.name}" in log:
            data = "HuBERT features were NaN: filtered by the engine"
        elif not (audio_source(ctx) / it.name).is_file():
            data = f"audio file not found in {audio_source(ctx).name}/"
    if data and exc:
        return f"{data} ({exc})"
    return data or exc or "the engine wrote nothing for it and printed no error"


def verify(ctx: RunContext, out: Outcome, allow_dropped: bool) -> dict[str, Any]:
    names = [it.name for it in out.expected]
    made = sum(1 for n in names if n in out.got)
    result: dict[str, Any] = {"items": made, "expected": len(names), "output": out.output}
    dropped = [it for it in out.expected if it.name not in out.got]
    if not dropped:
        return result
    errors = ec.item_errors(ctx.log_path, dropped)
    log = tail_bytes(ctx.log_path, ec.LOG_SCAN_BYTES)
    result["dropped"] = [{"item": it.name, "reason": _reason(ctx, it, errors.get(it.name), log, out.what)}
                         for it in dropped]
    if allow_dropped and made > 0:
        ctx.log(f"{out.what}: {len(dropped)} item(s) dropped (allow_dropped)")
        return result
    listed = "; ".join(f"{d['item']}: {d['reason']}" for d in result["dropped"][:MAX_LISTED])
    more = f" and {len(dropped) - MAX_LISTED} more" if len(dropped) > MAX_LISTED else ""
    head = (f"{out.what}: the engine produced nothing for any of the {len(names)} items"
            if made == 0 else f"{out.what}: the engine produced {made} of {len(names)} items")
    msg = (f"{head}; dropped: {listed}{more}. Fix or remove those lines of the transcript and run the "
           "step again" + (", or pass allow_dropped=true to go on without them" if made else ""))
    raise StepFailed(ec.with_traceback(msg, ctx.log_path), Reason.outputs_missing, result=result)
