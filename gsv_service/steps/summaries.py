"""One line per finished step run that says what it achieved ("converted 5 of 7; failed: fake.wav
(not audio)"), from the step's result. It becomes the run's `message` (and so the step record's in
the task view), in place of the last item the step happened to process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gsv_service.checkpoints import human_bytes
from gsv_service.steps.base import AnyStep, RunContext, StepFailed, StepParams

Result = dict[str, Any]

SHOWN = 5  # names listed in a message; the rest are counted

# AudioError texts (gsv_service/audio/ffmpeg.py) -> a few words for a list of failed files
_SHORT = (("empty file (0 bytes)", "0 bytes"), ("not a readable audio or video file", "not audio"),
          ("no audio track", "no audio track"), ("the audio track is only", "too short"),
          ("ffmpeg could not decode", "cannot be decoded"), ("no audio could be decoded", "no audio decoded"),
          ("took longer than", "timed out"), ("unreadable", "unreadable"))


def short_reason(error: str | None) -> str:
    text = (error or "").strip()
    for prefix, words in _SHORT:
        if text.startswith(prefix) or prefix in text[:80]:
            return words
    first = text.split(";")[0].split(" (")[0].strip()
    return first[:40] + ("…" if len(first) > 40 else "") or "error"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _failed(errors: list[Result] | None, total: int | None = None) -> str:
    """'; failed: a.wav (not audio), b.flac (0 bytes)' or ''."""
    errors = sorted(errors or [], key=lambda e: str(e.get("item")))
    if not errors:
        return ""
    named = [f"{e.get('item')} ({short_reason(e.get('error'))})" for e in errors]
    more = (total or len(errors)) - len(errors)
    return "; failed: " + _names(named) + (f" and {more} more" if more > 0 else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _convert(r: Result) -> str:
    return f"converted {r.get('converted', 0)} of {r.get('uploads', 0)}" + _failed(r.get("errors"), r.get("failed"))


def _slice(r: Result) -> str:
    text = f"cut {_plural(r.get('files', 0), 'recording')} into {_plural(r.get('slices', 0), 'slice')}"
    if r.get("slices"):
        text += f" ({r.get('seconds')} s"
        if r.get("min_seconds") is not None:
            text += f", {r['min_seconds']:.1f}-{r['max_seconds']:.1f} s each"
        text += ")"
    return text + _failed(r.get("errors"))


def _denoise(r: Result) -> str:
    return (f"denoised {_plural(r.get('files', 0), 'slice')} ({r.get('method')})"
            + _failed(r.get("errors"), r.get("failed")))


def _asr(r: Result) -> str:
    lines, slices = r.get("lines", 0), r.get("slices", 0)
    text = f"transcribed {lines} of {_plural(slices, 'slice')} ({r.get('method')})"
    without = [n for n in (r.get("missing") or r.get("skipped_by_engine") or []) if not n.startswith("... ")]
    empty = r.get("empty") or []
    if without:
        text += f"; no transcript: {_names(without)}"
    if empty:
        text += f"; empty transcript: {_names(empty)}"
    if r.get("extra"):
        text += f"; matching no slice: {_names(r['extra'])}"
    if r.get("edits_reapplied"):
        text += f"; {r['edits_reapplied']} edit(s) from PUT /transcripts re-applied"
    return text


def _features(r: Result) -> str | None:
    if r.get("skipped"):
        return r.get("message")
    dropped = r.get("dropped") or []
    if not dropped:
        return None  # the step's own final message already says how many items it made
    named = [f"{d.get('item')} ({str(d.get('reason') or '')[:60]})" for d in dropped]
    return f"{r.get('items')} of {r.get('expected')} items; dropped: {_names(named)}"


def _train(r: Result) -> str:
    epochs = r.get("epochs")
    text = f"trained {_plural(epochs, 'epoch')}" if isinstance(epochs, int) else "trained"
    if r.get("resumed"):
        text += " (resumed from a checkpoint)"
    text += f"; latest weights: {r['latest']}" if r.get("latest") else ""
    freed = (r.get("pruned") or {}).get("freed_bytes")
    return text + (f"; freed {human_bytes(freed)} of older resume checkpoints" if freed else "")


def _infer(r: Result) -> str:
    return f"wrote {r.get('output')}" + (f" ({r['duration']} s)" if r.get("duration") is not None else "")


SUMMARIES: dict[str, Callable[[Result], str | None]] = {
    "convert_audio": _convert, "slice_audio": _slice, "denoise_audio": _denoise, "asr_transcribe": _asr,
    "extract_text_features": _features, "extract_audio_features": _features,
    "extract_speaker_vectors": _features, "extract_semantic_features": _features,
    "train_sovits": _train, "train_gpt": _train, "test_inference": _infer,
}


def summarise(step: str, result: Result | None) -> str | None:
    """The line for a run of `step` that ended with `result`, or None to keep the step's own."""
    fn = SUMMARIES.get(step)
    if fn is None or not result:
        return None
    try:
        return fn(result)
    except (KeyError, TypeError, ValueError, AttributeError):  # an odd result keeps the step's message
        return None


def execute_summarised(spec: AnyStep, ctx: RunContext, params: StepParams) -> Result:
    """Run the step; its run's message then summarises the result (also of a failure that has one)."""
    try:
        result = spec.execute(ctx, params)
    except StepFailed as e:
        text = summarise(spec.name, e.result)
        if text:  # a failure with a result went through every item: what became of them
            ctx.progress(1.0, text, force=True)
        raise
    text = summarise(spec.name, result)
    if text:
        ctx.progress(1.0, text, force=True)
    return result
