"""Dataset report (GET /api/v1/task/{task_id}/dataset): what training will be fed, slice by slice,
with warnings a person can act on before spending hours on training.

Limits come from upstream's training code at the pinned commit: SoVITS training drops slices of
0.6 s or less and 54 s or more (GPT_SoVITS/module/data_utils.py), GPT training drops those whose
phonemes per second fall outside 3-25 (AR/data/dataset.py). Level figures are cached per file
(size + mtime), so asking again after a transcript edit reads no audio.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gsv_service.audio.levels import analyse, read_mono
from gsv_service.errors import NotFound
from gsv_service.transcripts import Line, guess_language, read_list
from gsv_service.workspace import Workspace, denoise_completed

if TYPE_CHECKING:
    from gsv_service.tasks import TaskService

DROP_SHORT_S, DROP_LONG_S = 0.6, 54.0
SHORT_S, LONG_S = 2.0, 15.0
CLIPPED_SHARE = 0.001
NEAR_SILENT_DB = -45.0
MOSTLY_SILENCE = 0.5
MIN_SPEECH_MIN = 1.0
# plausible characters per second of speech: CJK characters (about a syllable each), or letters
RATES = {"cjk": (1.0, 9.0), "latin": (3.0, 25.0)}
CACHE_FILE = ".dataset_cache.json"
CACHE_VERSION = 2  # 2: levels of digital silence are None, not -200 dBFS
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_LETTER = re.compile(r"[^\W\d_]")
_SIMILAR = {"ZH", "YUE", "JA"}  # kanji-only Japanese looks like Chinese; that is no mismatch


def _stats(files: list[Path], cache_path: Path) -> dict[str, dict[str, Any]]:
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    out: dict[str, dict[str, Any]] = {}
    fresh: dict[str, Any] = {}
    for p in files:
        st = p.stat()
        key = f"{p.parent.name}/{p.name}"
        hit = cache.get(key)
        if hit and hit.get("sig") == [st.st_size, st.st_mtime_ns, CACHE_VERSION]:
            out[p.name] = hit["stats"]
        else:
            try:
                x, sr = read_mono(p)
                out[p.name] = analyse(x, sr)
            except (RuntimeError, OSError, ValueError) as e:
                out[p.name] = {"duration": 0.0, "error": f"unreadable: {e}"}
        fresh[key] = {"sig": [st.st_size, st.st_mtime_ns, CACHE_VERSION], "stats": out[p.name]}
    if fresh != cache:
        tmp = cache_path.with_name(cache_path.name + ".tmp")
        tmp.write_text(json.dumps(fresh), encoding="utf-8")
        os.replace(tmp, cache_path)
    return out


def _text_rate(text: str, speech_s: float) -> tuple[str, float]:
    cjk = len(_CJK.findall(text))
    kind, units = ("cjk", cjk) if cjk else ("latin", len(_LETTER.findall(text)))
    return kind, units / max(speech_s, 0.3)


def slice_warnings(st: dict[str, Any], line: Line | None) -> list[str]:
    """What is wrong with one slice, each with what to do about it."""
    if "error" in st:
        return [f"{st['error']}; re-run slice_audio or drop it"]
    w: list[str] = []
    d = st["duration"]
    if d <= DROP_SHORT_S or d >= DROP_LONG_S:
        w.append(f"{d:.2f} s: SoVITS training drops slices of {DROP_SHORT_S} s or less and {DROP_LONG_S:.0f} s "
                 "or more; drop it or slice again with other settings")
    elif d < SHORT_S:
        w.append(f"short ({d:.2f} s): utterances of 3-10 s train best; drop it or slice with a larger "
                 "min_interval")
    elif d > LONG_S:
        w.append(f"long ({d:.1f} s): needs more GPU memory per batch; slice with a smaller min_length or "
                 "a higher threshold")
    if st.get("clipped_share", 0) > CLIPPED_SHARE:
        w.append(f"clipping: {st['clipped_share']:.2%} of samples at full scale; drop it or re-record "
                 "with less gain")
    silent = st.get("rms_db") is None or st["rms_db"] < NEAR_SILENT_DB or st.get("speech_db") is None
    if silent:
        level = f"RMS {st['rms_db']} dBFS" if st.get("rms_db") is not None else "no signal at all"
        w.append(f"near silent ({level}): probably no speech; drop it")
    elif st.get("silence_share", 0) > MOSTLY_SILENCE:
        w.append(f"mostly silence ({st['silence_share']:.0%}); slice again with a smaller max_sil_kept")
    if line is None:
        w.append("no transcript line: it will not be trained on (run asr_transcribe, or add it with "
                 "PUT /transcripts)")
        return w
    if not line.text.strip():
        w.append("empty transcript: write its text or drop it")
        return w
    if silent:  # no speech to compare the text with
        return w
    kind, rate = _text_rate(line.text, d * (1 - st.get("silence_share", 0)))
    lo, hi = RATES[kind]
    if rate < lo:
        w.append(f"transcript looks too short for {d:.1f} s of audio ({rate:.1f} chars/s); check it")
    elif rate > hi:
        w.append(f"transcript looks too long for {d:.1f} s of audio ({rate:.1f} chars/s); check it")
    guessed = guess_language(line.text, line.lang == "YUE")
    if guessed and guessed != line.lang and not {guessed, line.lang} <= _SIMILAR:
        w.append(f"text looks like {guessed} but the line says {line.lang}; fix the language")
    return w


def _totals(rows: list[dict[str, Any]], lines: dict[str, Line]) -> dict[str, Any]:
    secs = sum(r["duration"] for r in rows)
    speech = sum(r["duration"] * (1 - (r.get("silence_share") or 0)) for r in rows)
    durs = [r["duration"] for r in rows] or [0.0]
    return {"slices": len(rows), "seconds": round(secs, 2), "minutes": round(secs / 60, 2),
            "speech_minutes": round(speech / 60, 2), "min_seconds": round(min(durs), 2),
            "max_seconds": round(max(durs), 2), "mean_seconds": round(secs / max(1, len(rows)), 2),
            "with_transcript": sum(1 for r in rows if r["slice"] in lines),
            "languages": dict(Counter(line.lang for line in lines.values())),
            "slices_with_warnings": sum(1 for r in rows if r["warnings"])}


def _dataset_warnings(totals: dict[str, Any], rows: list[dict[str, Any]], lines: dict[str, Line], orphans: list[str],
                      task_id: str) -> list[str]:
    w: list[str] = []
    if totals["speech_minutes"] < MIN_SPEECH_MIN:
        w.append(f"only {totals['speech_minutes']} min of speech: GPT-SoVITS needs at least about 1 minute, "
                 "and several minutes give a steadier voice; upload more recordings")
    if len(totals["languages"]) > 1:
        mix = ", ".join(f"{k} {v}" for k, v in sorted(totals["languages"].items(), key=lambda kv: -kv[1]))
        w.append(f"mixed languages ({mix}): fine for a multilingual voice, otherwise fix or drop the odd ones")
    missing = totals["slices"] - totals["with_transcript"]
    if missing:
        w.append(f"{missing} slice(s) have no transcript line and will not be trained on")
    if orphans:
        w.append(f"{len(orphans)} transcript line(s) name audio that does not exist: "
                 f"{', '.join(orphans[:5])}; run asr_transcribe again or drop them")
    if totals["slices_with_warnings"]:
        w.append(f"{totals['slices_with_warnings']} of {totals['slices']} slices have warnings (see slices[]); "
                 f"drop or fix them with PUT /api/v1/task/{task_id}/transcripts")
    return w


def build_report(ws: Workspace, statuses: Mapping[str, str]) -> dict[str, Any]:
    audio = ws.utterances_dir(denoise_completed(statuses))
    files = sorted(p for p in audio.glob("*.wav") if not p.name.startswith("."))
    if not files:
        raise NotFound("this task has no slices yet: run steps 'convert_audio' and 'slice_audio' first",
                       run_first="slice_audio" if (ws.root / "converted_wav").is_dir() else "convert_audio")
    tpath = ws.transcript_path
    lines = {ln.name: ln for ln in read_list(tpath)[0]} if tpath.is_file() else {}
    stats = _stats(files, ws.root / CACHE_FILE)
    rows: list[dict[str, Any]] = []
    for p in files:
        st, line = stats[p.name], lines.get(p.name)
        rows.append({"slice": p.name, **st, "language": line.lang if line else None,
                     "text": line.text if line else None, "text_length": len(line.text) if line else None,
                     "warnings": slice_warnings(st, line)})
    totals = _totals(rows, {k: v for k, v in lines.items() if k in stats})
    orphans = sorted(k for k in lines if k not in stats)
    return {"source": audio.name, "transcript": f"transcripts/{tpath.name}" if tpath.is_file() else None,
            "totals": totals, "warnings": _dataset_warnings(totals, rows, lines, orphans, ws.root.name),
            "slices": rows}


class DatasetReport:
    def __init__(self, tasks: TaskService):
        self.tasks = tasks

    def get(self, task_id: str) -> dict[str, Any]:
        task = self.tasks.get(task_id)
        return {"task_id": task.id, **build_report(self.tasks.workspace(task), task.statuses())}
