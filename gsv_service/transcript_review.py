"""Reviewing a task's transcript through the API: read it beside its slices, edit it (edits are
kept by slice name, so asr_transcribe running again re-applies them), mark what used it stale, and
give a template to fill in. The .list format itself is gsv_service/transcripts.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pathlib import Path

import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field

from gsv_service import transcript_edits as ted
from gsv_service.errors import Conflict, NotFound, Unprocessable
from gsv_service.steps.registry import consumers_of
from gsv_service.records import TaskRecord
from gsv_service.workspace import Workspace, denoise_completed

if TYPE_CHECKING:
    from gsv_service.tasks import TaskService
from gsv_service.transcripts import Line, TranscriptError, check_text, line_language, list_language, read_list, write_list


class NewLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slice: str = Field(..., min_length=1, max_length=300, description="slice file name, e.g. a.wav_0000000000_0000160000.wav")
    text: str = Field(..., max_length=2000)
    language: str | None = Field(None, description="zh, en, ja, ko, yue or all_*; default: the task's")


class LineEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slice: str = Field(..., min_length=1, max_length=300)
    text: str | None = Field(None, max_length=2000, description="new text")
    language: str | None = Field(None, description="new language")
    drop: bool = Field(False, description="remove this slice from the transcript")


class TranscriptUpdate(BaseModel):
    """Either `lines` (the whole transcript, in order: slices left out are dropped) or `edits`
    (changes to some lines)."""

    model_config = ConfigDict(extra="forbid")
    lines: list[NewLine] | None = Field(None, max_length=100_000)
    edits: list[LineEdit] | None = Field(None, max_length=100_000)


def _lang(code: str | None, text: str, task_language: str, where: str) -> str:
    if code is None:
        found = line_language(text, task_language)
        if found is None:
            raise TranscriptError(f"{where}: cannot tell the language; give `language`")
        return found
    found = list_language(code)
    if found is None:
        raise TranscriptError(f"{where}: unknown language {code[:20]!r}; use zh, en, ja, ko, yue "
                              "(or all_zh, all_ja, all_ko, all_yue)")
    return found


def apply_update(current: list[Line], upd: TranscriptUpdate, audio: Path, speaker: str,
                 task_language: str) -> list[Line]:
    """The transcript after `upd`; TranscriptError names the first bad line."""
    if (upd.lines is None) == (upd.edits is None):
        raise TranscriptError("send either `lines` (the whole transcript) or `edits` (changes), not "
                              "both or neither")
    if upd.lines is not None:
        out, seen = [], set()
        for i, nl in enumerate(upd.lines):
            where = f"lines[{i}] ({nl.slice[:80]})"
            wav = _slice_file(audio, nl.slice)
            if wav is None:
                raise TranscriptError(f"{where}: no slice of that name in {audio.name}/")
            if nl.slice in seen:
                raise TranscriptError(f"{where}: the slice appears twice")
            seen.add(nl.slice)
            text = check_text(nl.text, where)
            out.append(Line(str(wav.resolve()), speaker, _lang(nl.language, text, task_language, where), text))
        return out
    by_name = {line.name: line for line in current}
    for i, ed in enumerate(upd.edits or []):
        where = f"edits[{i}] ({ed.slice[:80]})"
        line = by_name.get(ed.slice)
        if line is None:  # a slice without a line: `text` adds one, `drop` keeps it out
            wav = _slice_file(audio, ed.slice)
            if wav is None:
                raise TranscriptError(f"{where}: the transcript has no line for that slice, and "
                                      f"{audio.name}/ has no slice of that name (GET the transcript "
                                      "template for the slice names)")
            if ed.drop:
                continue
            if ed.text is None:
                raise TranscriptError(f"{where}: the slice has no line yet; give `text` to add one")
            line = Line(str(wav.resolve()), speaker, "", "")
        if ed.drop:
            del by_name[ed.slice]
            continue
        text = check_text(ed.text, where) if ed.text is not None else line.text
        lang = _lang(ed.language, text, task_language, where) if ed.language is not None or not line.lang \
            else line.lang
        by_name[ed.slice] = Line(line.wav_path, line.speaker, lang, text)
    order = [line.name for line in current]
    added = sorted(by_name.keys() - set(order))
    names = sorted(by_name) if order == sorted(order) else [n for n in order if n in by_name] + added
    return [by_name[n] for n in names]


def _slice_file(audio: Path, name: str) -> Path | None:
    """audio/name when `name` is a plain file name of a slice there, else None."""
    if "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        return None
    wav = audio / name
    return wav if wav.is_file() else None


def _duration(path: Path) -> float | None:
    try:
        return round(float(sf.info(str(path)).duration), 3)
    except (RuntimeError, OSError):
        return None


class TranscriptReview:
    """The task service's view of a task's transcript: read it, edit it, mark what used it stale."""

    def __init__(self, tasks: TaskService):
        self.tasks = tasks

    def _open(self, task_id: str) -> tuple[TaskRecord, Workspace, Path]:
        task = self.tasks.get(task_id)
        ws = self.tasks.workspace(task)
        path = ws.transcript_path
        if not path.is_file():
            raise NotFound(f"task {task_id} has no transcript yet: run step 'asr_transcribe' first (to "
                           f"write it yourself: GET /api/v1/task/{task_id}/transcripts/template?format=list "
                           "gives the slice names; fill in the text, upload the file, and run "
                           "asr_transcribe with method 'provided')", run_first="asr_transcribe")
        return task, ws, path

    def get(self, task_id: str) -> dict[str, Any]:
        task, ws, path = self._open(task_id)
        lines, problems = read_list(path)
        return self._view(task, ws, path, lines, problems)

    def _view(self, task: TaskRecord, ws: Workspace, path: Path, lines: list[Line], problems: list[str]) -> dict[str, Any]:
        audio = ws.utterances_dir(denoise_completed(task.statuses()))
        out = []
        for line in lines:
            wav = Path(line.wav_path)
            wav = wav if wav.is_file() else audio / line.name
            out.append({"slice": line.name, "wav_path": line.wav_path, "duration": _duration(wav),
                        "speaker": line.speaker, "language": line.lang, "text": line.text})
        return {"task_id": task.id, "path": f"transcripts/{path.name}", "count": len(out),
                "task_language": task.config.language, "lines": out, "problems": problems}

    def update(self, task_id: str, upd: TranscriptUpdate) -> dict[str, Any]:
        task, ws, path = self._open(task_id)
        if task.busy:
            raise Conflict(f"task {task_id} is running step '{task.current_step}'; edit the "
                           "transcript when it has finished (or cancel it)")
        cfg = task.config
        current, _problems = read_list(path)
        speaker = cfg.speaker
        try:
            lines = apply_update(current, upd, ws.utterances_dir(denoise_completed(task.statuses())), speaker,
                                cfg.language)
        except TranscriptError as e:
            raise Unprocessable(str(e)) from None
        if not lines:
            raise Unprocessable("the edit would leave the transcript empty; keep at least one line")
        named = [e.slice for e in upd.edits] if upd.edits is not None else []
        kept = ted.record(ted.edits_path(ws), ted.changes(current, lines, named))  # before the list:
        write_list(path, lines)                   # a crash in between re-applies it on the next run
        stale = self.tasks.lifecycle.mark_stale(task.id, consumers_of("asr_transcribe"))
        view = self._view(self.tasks.get(task_id), ws, path, lines, [])
        return {**view, "stale_steps": stale, "edits_kept": len(kept),
                "message": f"transcript saved ({len(lines)} lines; {len(kept)} edited slice(s) kept for "
                           "when asr_transcribe runs again)" +
                           (f"; now stale: {', '.join(stale)}" if stale else "")}

    def template(self, task_id: str) -> dict[str, Any]:
        """The slice names with empty text, to fill in (GET .../transcripts/template)."""
        task = self.tasks.get(task_id)
        ws = self.tasks.workspace(task)
        audio = ws.utterances_dir(denoise_completed(task.statuses()))
        wavs = sorted(p for p in audio.glob("*.wav") if not p.name.startswith(".")) if audio.is_dir() else []
        if not wavs:
            raise NotFound(f"task {task_id} has no slices yet: run steps 'convert_audio' and 'slice_audio' "
                           "first", run_first="slice_audio" if (ws.root / "converted_wav").is_dir()
                           else "convert_audio")
        cfg = task.config
        speaker = cfg.speaker
        lang = list_language(cfg.language)
        return {"task_id": task.id, "source": audio.name, "count": len(wavs), "speaker": speaker,
                "language": lang, "lines": [{"slice": p.name, "duration": _duration(p), "text": ""}
                                            for p in wavs]}


def template_list(tpl: dict[str, Any]) -> str:
    """The template as a .list to fill in and upload (`slice|speaker|LANG|`; LANG empty for auto)."""
    return "".join(f"{ln['slice']}|{tpl['speaker']}|{tpl['language'] or ''}|\n" for ln in tpl["lines"])
