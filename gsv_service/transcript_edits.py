"""Transcript edits a person made (PUT /api/v1/task/{task_id}/transcripts), kept by slice name in
transcripts/edits.json, so that running asr_transcribe again re-applies them instead of rebuilding
the transcript from the uploads or the ASR alone (a typo fix reverted, an added line gone).

An edit is the final state of one slice's line: its text and language, or `drop`. A PUT of
`edits` records every slice it names; a PUT of `lines` records every slice whose line it changed,
added or left out. Edits win over the uploads and the ASR. An edit for a slice that no longer
exists (the recordings were sliced again) cannot be re-applied: the re-run is refused (409 at
submit, a failed run inside a pipeline) until it is run with `overwrite_edits`, which discards them
(a drop of a slice that is gone is simply skipped).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gsv_service.transcripts import Line
from gsv_service.workspace import Workspace

EDITS_FILE = "edits.json"
FORMAT_VERSION = 1
MAX_EDITS_BYTES = 64 * 1024 * 1024  # 100,000 lines of 2,000 characters fit with room to spare
MAX_NAMED = 20  # slices named in a message; the counts stay exact


class EditsUnreadable(ValueError):
    """transcripts/edits.json exists but is not what we write; the message says what to do."""


@dataclass(frozen=True)
class Edit:
    text: str | None       # None: the slice is dropped from the transcript
    language: str | None   # the .list spelling (EN, ZH, ...)

    @property
    def dropped(self) -> bool:
        return self.text is None

    def to_json(self) -> dict[str, object]:
        return {"drop": True} if self.dropped else {"text": self.text, "language": self.language}


def edits_path(ws: Workspace) -> Path:
    return ws.root / "transcripts" / EDITS_FILE


def load(path: Path) -> dict[str, Edit]:
    """The kept edits by slice name ({} when there are none)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {}
    if size > MAX_EDITS_BYTES:
        raise EditsUnreadable(f"transcripts/{path.name} is {size} bytes, over the {MAX_EDITS_BYTES} a "
                              "transcript's edits can take; run asr_transcribe with overwrite_edits=true")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        out: dict[str, Edit] = {}
        for name, e in doc["edits"].items():
            out[str(name)] = (Edit(None, None) if e.get("drop") else
                              Edit(str(e["text"]), str(e["language"])))
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise EditsUnreadable(f"transcripts/{path.name} is unreadable ({type(e).__name__}); run "
                              "asr_transcribe with overwrite_edits=true to discard it") from None


def save(path: Path, edits: dict[str, Edit]) -> None:
    """Atomically (temp file + rename); no edits, no file."""
    if not edits:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": FORMAT_VERSION, "edits": {k: edits[k].to_json() for k in sorted(edits)}}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def changes(before: list[Line], after: list[Line], named: Iterable[str] = ()) -> dict[str, Edit]:
    """The edits a PUT made: every slice in `named`, and every slice whose line differs."""
    old = {ln.name: ln for ln in before}
    new = {ln.name: ln for ln in after}
    asked = set(named)
    out: dict[str, Edit] = {}
    for name in asked | old.keys() | new.keys():
        a, b = old.get(name), new.get(name)
        if name in asked or (a is None) != (b is None) or (a and b and (a.text, a.lang) != (b.text, b.lang)):
            out[name] = Edit(b.text, b.lang) if b else Edit(None, None)
    return out


def record(path: Path, new: dict[str, Edit]) -> dict[str, Edit]:
    """Merge `new` into the kept edits (a later edit of a slice replaces the earlier one)."""
    try:
        kept = load(path)
    except EditsUnreadable:
        kept = {}  # only we write it; a damaged file is replaced by what the person did now
    kept.update(new)
    save(path, kept)
    return kept


def vanished(edits: dict[str, Edit], slice_names: Iterable[str]) -> list[str]:
    """Slices with an edited text that are not among the slices (sorted); a drop of a slice that
    is gone loses nothing."""
    have = set(slice_names)
    return sorted(name for name, ed in edits.items() if name not in have and not ed.dropped)


def vanished_message(task_id: str, names: list[str], total: int) -> str:
    shown = ", ".join(names[:MAX_NAMED]) + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")
    return (f"{len(names)} of the {total} transcript edit(s) made with PUT /transcripts are for slices that "
            f"no longer exist ({shown}), so transcribing again would lose them. Run asr_transcribe with "
            f"params {{\"overwrite_edits\": true}} to discard all {total} edit(s) and transcribe afresh; "
            f"the edits are in transcripts/{EDITS_FILE} (GET /api/v1/task/{task_id}/files/download/"
            f"transcripts/{EDITS_FILE})")


def reapply(lines: list[Line], edits: dict[str, Edit], slices: list[Path], speaker: str) -> list[Line]:
    """The transcript with the edits applied on top, in slice-name order. Edits for slices that are
    not in `slices` are skipped (the caller refuses them first)."""
    by_name = {ln.name: ln for ln in lines}
    paths = {p.name: p for p in slices}
    for name, ed in edits.items():
        if name not in paths:
            continue
        if ed.dropped:
            by_name.pop(name, None)
        else:
            by_name[name] = Line(str(paths[name].resolve()), speaker, ed.language or "", ed.text or "")
    return [by_name[n] for n in sorted(by_name)]
