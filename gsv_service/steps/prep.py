"""Steps 1-4: audio preparation (built in; the engine is optional for denoise and ASR).

The work runs in child processes (gsv_service.jobs.*, or the engine's scripts) so that a cancel
kills it and the API stays responsive; children report with gsv_service.jobs.protocol. Each step
writes into a hidden staging folder and swaps it in only when it succeeds, so a re-run replaces
the old outputs completely, and a failed or cancelled re-run leaves them as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from gsv_service.engine import INSTALL_COMMAND, Engine
from gsv_service.errors import Conflict
from gsv_service.jobs.protocol import parse
from gsv_service.procs import Command
from gsv_service.steps.base import EngineUse, RunContext, StepFailed, StepParams, StepSpec, audio_source
from gsv_service.states import Reason
from gsv_service.workspace import Workspace, denoise_completed
from gsv_service.steps.engine_common import engine_of, fail_exit_codes, with_traceback
from gsv_service.task_config import Language
from gsv_service import transcript_edits as ted
from gsv_service import transcripts as tr

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FRCRN_MODEL = "tools/denoise-model/speech_frcrn_ans_cirm_16k"
MAX_NAMES = 200  # names listed in a result; the counts stay exact
WHISPER_SIZES = Literal["medium", "medium.en", "large-v2", "large-v3", "large-v3-turbo", "large"]


class ConvertParams(StepParams):
    workers: int | None = Field(None, ge=1, le=64, description="parallel ffmpeg processes; default: cores")


class SliceParams(StepParams):
    """Same meaning and defaults as GPT-SoVITS's web UI slicer."""

    threshold: float = Field(-34.0, ge=-100, le=0, description="dB; quieter frames count as silence")
    min_length: int = Field(4000, ge=1, le=600_000, description="ms; a slice is cut only once it is "
                            "this long (it can end up shorter: silence is trimmed after cutting)")
    min_interval: int = Field(300, ge=1, le=60_000, description="ms; minimum silence to cut at")
    hop_size: int = Field(10, ge=1, le=1000, description="ms; volume curve resolution")
    max_sil_kept: int = Field(500, ge=1, le=60_000, description="ms; silence kept around a slice")
    max: float = Field(0.9, gt=0, le=1.0, alias="_max", description="peak level after normalising")
    alpha: float = Field(0.25, ge=0, le=1.0, description="mix of normalised and original audio")
    workers: int | None = Field(None, ge=1, le=64, description="parallel processes; default: cores")

    model_config = {"populate_by_name": True, "extra": "forbid"}

    @model_validator(mode="after")
    def _order(self) -> SliceParams:
        if not self.min_length >= self.min_interval >= self.hop_size:
            raise ValueError("need min_length >= min_interval >= hop_size (as the web UI's slicer)")
        if self.max_sil_kept < self.hop_size:
            raise ValueError("need max_sil_kept >= hop_size (as the web UI's slicer)")
        return self


class DenoiseParams(StepParams):
    method: Literal["auto", "spectral", "frcrn", "none"] = Field(
        "auto", description="auto = frcrn when the engine and its model are present, else spectral; "
                            "none copies the slices through")
    strength: float = Field(2.5, ge=0.5, le=6.0, description="spectral: gate threshold in standard "
                            "deviations above the noise (higher removes more, risks more speech)")
    precision: Literal["float16", "float32"] = Field("float16", description="frcrn precision")
    workers: int | None = Field(None, ge=1, le=64, description="spectral: parallel processes")


ASR_SCRIPT = Path(__file__).resolve().parents[1] / "engine_scripts" / "asr.py"  # engine's interpreter


class AsrParams(StepParams):
    method: Literal["auto", "provided", "funasr", "faster_whisper"] = Field(
        "auto", description="auto = provided when transcripts were uploaded, else funasr")
    language: Language | None = Field(None, description="default: the task's language")
    backend: Literal["fun-asr-nano", "sensevoice", "paraformer"] = Field(
        "fun-asr-nano", description="funasr backend: fun-asr-nano or sensevoice (zh/en/ja/ko/yue/auto), "
                                    "paraformer (the classic model: zh, yue)")
    model_size: WHISPER_SIZES = Field("large-v3", description="faster_whisper model size")
    precision: Literal["float16", "float32", "int8"] = Field(
        "float16", description="faster_whisper precision (float16 needs CUDA; float32 is used on CPU)")
    overwrite_edits: bool = Field(
        False, description="discard the edits made with PUT /transcripts (kept by slice name in "
                           "transcripts/edits.json and re-applied on top of the uploads or the ASR "
                           "otherwise) and build the transcript afresh")


# ---------- shared plumbing ----------

def _job(module: str, *args: object, label: str = "") -> Command:
    """Our own child job, run by the service's interpreter, one BLAS thread each."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return Command([sys.executable, "-m", f"gsv_service.jobs.{module}", *map(str, args)], env=env,
                   label=label)


@dataclass
class _Events:
    total: int
    done: dict[int, int] = field(default_factory=dict)               # part -> items done
    errors: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


def _run(ctx: RunContext, commands: list[Command], total: int, what: str) -> _Events:
    """Run child jobs; turn their events into progress, per-item errors and results."""
    ev = _Events(total)

    def on_line(line: str) -> None:
        e = parse(line)
        if e is None:
            return
        kind = e["event"]
        if kind == "progress":
            ev.done[e.get("part", 0)] = int(e.get("done", 0))
            ctx.progress(sum(ev.done.values()) / max(1, total), e.get("message"))
        elif kind == "item_error":
            ev.errors.append({"item": e.get("item"), "error": e.get("error")})
        elif kind == "item":
            ev.items.append({k: v for k, v in e.items() if k != "event"})
        elif kind == "result":
            ev.results.append(e)

    fail_exit_codes(ctx.run(commands, on_line=on_line), what, ctx.log_path)
    return ev


class _Staged:
    """A hidden sibling folder to write into; `commit` swaps it in for the real one."""

    def __init__(self, final: Path):
        self.final = final
        self.tmp = final.with_name(f".{final.name}.new")

    def __enter__(self) -> _Staged:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        return self

    def commit(self) -> None:
        old = self.final.with_name(f".{self.final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.final.exists():
            self.final.rename(old)
        self.tmp.rename(self.final)
        shutil.rmtree(old, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _wavs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.wav") if not p.name.startswith("."))


def _names(items: list[str]) -> list[str]:
    return items[:MAX_NAMES] + ([f"... and {len(items) - MAX_NAMES} more"] if len(items) > MAX_NAMES else [])


def _errors_text(errors: list[dict[str, Any]], limit: int = 8) -> str:
    shown = "; ".join(f"{e['item']}: {e['error']}" for e in errors[:limit])
    return shown + (f"; and {len(errors) - limit} more" if len(errors) > limit else "")


def _shards(workers: int | None, n: int) -> int:
    return max(1, min(workers or os.cpu_count() or 1, n))


# ---------- 1. convert ----------

def convert_audio(ctx: RunContext, p: ConvertParams) -> dict[str, Any]:
    src = ctx.workspace.root / "input_audio"
    uploads = sorted(f for f in src.iterdir() if f.is_file() and not f.name.startswith("."))
    if not uploads:
        raise StepFailed("input_audio/ holds no uploads; upload recordings with POST "
                         f"/api/v1/task/{ctx.task_id}/files/upload")
    with _Staged(ctx.workspace.root / "converted_wav") as st:
        ev = _run(ctx, [_job("convert", "--src", src, "--dst", st.tmp, "--workers",
                             _shards(p.workers, len(uploads)))], len(uploads), "conversion")
        files = sorted(ev.items, key=lambda i: i["file"])
        result: dict[str, Any] = {"converted": len(files), "failed": len(ev.errors), "uploads": len(uploads),
                  "seconds": round(sum(i["duration"] for i in files), 3), "sample_rate": 32000,
                  "files": files[:MAX_NAMES], "errors": ev.errors[:MAX_NAMES]}
        if not files:
            raise StepFailed(f"none of the {len(uploads)} upload(s) is usable audio: "
                             f"{_errors_text(ev.errors)}. Upload recordings (wav, mp3, m4a, flac, ogg, "
                             "opus, webm, or video with sound)", result=result)
        st.commit()
    return result


# ---------- 2. slice ----------

def slice_audio(ctx: RunContext, p: SliceParams) -> dict[str, Any]:
    src = ctx.workspace.root / "converted_wav"
    files = _wavs(src)
    if not files:
        raise StepFailed("converted_wav/ holds no WAV files; run step 'convert_audio' first")
    cfg = json.dumps({"threshold": p.threshold, "min_length": p.min_length, "min_interval": p.min_interval,
                      "hop_size": p.hop_size, "max_sil_kept": p.max_sil_kept, "_max": p.max, "alpha": p.alpha})
    n = _shards(p.workers, len(files))
    with _Staged(ctx.workspace.root / "sliced") as st:
        cmds = [_job("slice", "--src", src, "--dst", st.tmp, "--config", cfg, "--part", i, "--parts", n,
                     label=f"shard {i + 1}/{n}") for i in range(n)]
        ev = _run(ctx, cmds, len(files), "slicing")
        count = sum(r["slices"] for r in ev.results)
        mins = [r["min"] for r in ev.results if r["min"] is not None]
        maxs = [r["max"] for r in ev.results if r["max"] is not None]
        seconds = round(sum(r["seconds"] for r in ev.results), 3)
        result: dict[str, Any] = {"slices": count, "files": len(files), "seconds": seconds,
                  "min_seconds": min(mins) if mins else None, "max_seconds": max(maxs) if maxs else None,
                  "mean_seconds": round(seconds / count, 3) if count else None,
                  "errors": ev.errors[:MAX_NAMES]}
        if count == 0:
            raise StepFailed(f"no slices came out of {len(files)} recording(s): {_errors_text(ev.errors)}",
                             result=result)
        st.commit()
    return result


# ---------- 3. denoise ----------

def frcrn_missing(engine: Engine | None) -> str | None:
    """Why the engine's FRCRN denoiser cannot run here, or None when it can."""
    if engine is None:
        return f"no GPT-SoVITS engine is configured (install it with {INSTALL_COMMAND})"
    if not engine.script("denoise").is_file():
        return f"the engine has no {engine.script('denoise')}"
    if not (engine.root / FRCRN_MODEL).is_dir():
        return f"its FRCRN model is not in {engine.root / FRCRN_MODEL} (it cannot be downloaded offline)"
    return None


def denoise_audio(ctx: RunContext, p: DenoiseParams) -> dict[str, Any]:
    src = ctx.workspace.root / "sliced"
    files = _wavs(src)
    if not files:
        raise StepFailed("sliced/ holds no slices; run step 'slice_audio' first")
    method, why = p.method, frcrn_missing(ctx.engine)
    if method == "frcrn" and why:
        raise StepFailed(f"method frcrn cannot run: {why}; use method 'spectral' (built in)")
    if method == "auto":
        method = "spectral" if why else "frcrn"
    with _Staged(ctx.workspace.root / "denoised") as st:
        if method == "frcrn":
            errors = _frcrn(ctx, p, src, st.tmp, files)
        else:
            n = 1 if method == "none" else _shards(p.workers, len(files))
            cmds = [_job("denoise", "--src", src, "--dst", st.tmp, "--method", method, "--strength",
                         p.strength, "--part", i, "--parts", n) for i in range(n)]
            errors = _run(ctx, cmds, len(files), f"{method} denoise").errors
        done = len(_wavs(st.tmp))
        result: dict[str, Any] = {"method": method, "requested": p.method, "files": done, "failed": len(errors),
                  "errors": errors[:MAX_NAMES]}
        if method == "frcrn":
            result["note"] = "FRCRN writes 16 kHz audio; the feature steps resample it to 32 kHz"
        if done == 0:
            raise StepFailed(f"denoise ({method}) produced nothing: {_errors_text(errors)}", result=result)
        st.commit()
    return result


def _frcrn(ctx: RunContext, p: DenoiseParams, src: Path, dst: Path, files: list[Path]) -> list[dict[str, Any]]:
    engine = engine_of(ctx)  # there: frcrn_missing() said so
    cmd = Command(engine.argv("denoise", "-i", str(src), "-o", str(dst), "-p", p.precision),
                  cwd=engine.root, env=engine.env(), label="FRCRN")

    def poll() -> None:
        ctx.progress(len(list(dst.glob("*.wav"))) / len(files), "FRCRN denoise")

    fail_exit_codes(ctx.run([cmd], poll=poll), "FRCRN denoise", ctx.log_path)
    made = {q.name for q in dst.glob("*.wav")}
    return [{"item": f.name, "error": "FRCRN skipped it (its traceback is in the run log)"}
            for f in files if f.name not in made]


def denoise_engine_use(p: DenoiseParams, ws: Workspace) -> EngineUse | None:
    if p.method == "frcrn":
        return EngineUse("method 'frcrn'", "use method 'spectral' (built in)")
    return None


# ---------- 4. transcribe ----------

ENGINE_ASR = ("funasr", "faster_whisper")
PROVIDED_HINT = ("upload transcripts (a .list, or one .txt per slice named after it) and use "
                 "method 'provided'")


def resolve_asr_method(method: str, ws: Workspace) -> str:
    """'auto' is 'provided' when transcripts were uploaded, else 'funasr'."""
    if method != "auto":
        return method
    provided = tr.load_provided(ws.root / "input_transcripts")
    return "provided" if provided or provided.problems else "funasr"


def asr_engine_use(p: AsrParams, ws: Workspace) -> EngineUse | None:
    method = resolve_asr_method(p.method, ws)
    if method not in ENGINE_ASR:
        return None
    how = f"method '{method}'" if p.method == method else "method 'auto' (funasr, as no transcripts were uploaded)"
    return EngineUse(how, PROVIDED_HINT)


def asr_transcribe(ctx: RunContext, p: AsrParams) -> dict[str, Any]:
    ws, cfg = ctx.workspace, ctx.config
    language = p.language or cfg.language
    speaker = cfg.speaker
    source = audio_source(ctx)
    slices = _wavs(source)
    if not slices:
        raise StepFailed(f"{source.name}/ holds no audio; run step 'slice_audio' first")
    _kept_edits(ctx, p, slices)  # fails before minutes of ASR, not after them
    method = resolve_asr_method(p.method, ws)
    if method == "provided":
        return _provided(ctx, p, slices, tr.load_provided(ws.root / "input_transcripts"), speaker, language,
                         source)
    if ctx.engine is None:  # refused at submit (engine_use); here if transcripts vanished meanwhile
        raise StepFailed(f"method {method} needs the GPT-SoVITS engine, and none is configured (install "
                         f"it with {INSTALL_COMMAND}); or {PROVIDED_HINT}", Reason.error)
    return _engine_asr(ctx, p, method, slices, speaker, language, source)


def _provided(ctx: RunContext, p: AsrParams, slices: list[Path], provided: tr.Provided, speaker: str,
              language: str, source: Path) -> dict[str, Any]:
    if not provided:
        raise StepFailed("no usable transcripts in input_transcripts/: "
                         + ("; ".join(provided.problems[:5]) or "upload a .list file or .txt files"))
    m = tr.map_provided(slices, provided, speaker, language)
    result: dict[str, Any] = {"method": "provided", "source": source.name, "lines": len(m.lines), "slices": len(slices),
              "missing": _names(m.missing), "extra": _names(m.extra), "empty": _names(m.empty),
              "matched_by_time": dict(list(m.nearby.items())[:MAX_NAMES]), "problems": m.problems[:MAX_NAMES]}
    if not m.lines:
        raise StepFailed(f"none of the {len(slices)} slices has a transcript: the uploaded names do not "
                         f"match the slices (e.g. {', '.join(m.extra[:3]) or 'none'} vs "
                         f"{', '.join(s.name for s in slices[:3])})", result=result)
    return _save_transcript(ctx, p, m.lines, slices, speaker, result)


def _engine_asr(ctx: RunContext, p: AsrParams, method: str, slices: list[Path], speaker: str, language: str,
                source: Path) -> dict[str, Any]:
    engine = engine_of(ctx)  # there: asr_transcribe() checked
    lang = tr.engine_language(language)
    if method == "funasr" and p.backend == "paraformer" and lang not in ("zh", "yue"):
        raise StepFailed(f"the paraformer backend transcribes zh and yue only, not {language}; use "
                         "backend fun-asr-nano or sensevoice")
    names = {s.name for s in slices}
    done: set[str] = set()

    def on_line(line: str) -> None:
        name = line.strip()
        m = re.search(r"(\d+)/(\d+) \[", line)  # a tqdm bar (faster-whisper)
        if name in names:
            done.add(name)
            ctx.progress(len(done) / len(names), f"{method}: {name}")
        elif m and int(m[2]) == len(names):
            ctx.progress(int(m[1]) / len(names), f"{method}: {m[1]}/{m[2]}")

    env = engine.env()
    out = ctx.workspace.root / "transcripts" / ".asr"
    shutil.rmtree(out, ignore_errors=True)
    argv = [engine.python, "-s", str(ASR_SCRIPT), "--method", method, "--input",
            str(source), "--output", str(out), "--language", lang, "--backend", p.backend,
            "--model-size", p.model_size, "--precision", p.precision]
    try:
        codes = ctx.run([Command(argv, cwd=engine.root, env=env, label=method)], on_line=on_line)
        fail_exit_codes(codes, f"ASR ({method})", ctx.log_path)
        listed = out / f"{source.name}.list"
        if not listed.is_file():
            raise StepFailed(with_traceback(f"ASR ({method}) wrote no {listed.name}", ctx.log_path),
                             Reason.outputs_missing)
        lines, problems = tr.read_list(listed)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    m = tr.map_engine_lines(lines, slices, speaker, language)
    result: dict[str, Any] = {"method": method, "backend": p.backend if method == "funasr" else None,
              "model_size": p.model_size if method == "faster_whisper" else None, "source": source.name,
              "language": language, "lines": len(m.lines), "slices": len(slices),
              "skipped_by_engine": _names(m.missing), "empty": _names(m.empty),
              "problems": (problems + m.problems)[:MAX_NAMES]}
    if not m.lines:
        raise StepFailed(with_traceback(f"ASR ({method}) recognised no text in any of the {len(slices)} "
                                        "slices", ctx.log_path), Reason.outputs_missing, result=result)
    return _save_transcript(ctx, p, m.lines, slices, speaker, result)


def _edits_for(ws: Workspace, task_id: str, p: AsrParams,
               slices: list[Path]) -> tuple[dict[str, ted.Edit], str | None, dict[str, Any]]:
    """The transcript edits to re-apply ({} with overwrite_edits), and why they cannot be (some
    are for slices that no longer exist, or the file is damaged) with the details, or None."""
    if p.overwrite_edits:
        return {}, None, {}
    try:
        edits = ted.load(ted.edits_path(ws))
    except ted.EditsUnreadable as e:
        return {}, str(e), {}
    gone = ted.vanished(edits, (s.name for s in slices))
    if gone:
        return edits, ted.vanished_message(task_id, gone, len(edits)), {
            "vanished_edited_slices": _names(gone), "edits": len(edits)}
    return edits, None, {}


def _kept_edits(ctx: RunContext, p: AsrParams, slices: list[Path]) -> dict[str, ted.Edit]:
    edits, why, details = _edits_for(ctx.workspace, ctx.task_id, p, slices)
    if why:
        raise StepFailed(why, result=details)
    return edits


def asr_precheck(p: AsrParams, ws: Workspace, statuses: Mapping[str, str]) -> None:
    """409 at submit when the kept transcript edits cannot be re-applied (see _edits_for)."""
    _edits, why, details = _edits_for(ws, ws.root.name, p, _wavs(ws.utterances_dir(denoise_completed(statuses))))
    if why:
        raise Conflict(why, **details)


def _save_transcript(ctx: RunContext, p: AsrParams, lines: list[tr.Line], slices: list[Path], speaker: str,
                     result: dict[str, Any]) -> dict[str, Any]:
    """Write the transcript with the kept edits on top (or discard them: overwrite_edits)."""
    edits = _kept_edits(ctx, p, slices)
    final = ted.reapply(lines, edits, slices, speaker)
    if not final:
        raise StepFailed(f"the {len(edits)} transcript edit(s) kept from PUT /transcripts drop every line; "
                         "run asr_transcribe with params {\"overwrite_edits\": true} to discard them",
                         result=result)
    path, edits_file = ctx.workspace.transcript_path, ted.edits_path(ctx.workspace)
    discarded = 0
    if p.overwrite_edits:
        with contextlib.suppress(ted.EditsUnreadable):
            discarded = len(ted.load(edits_file))
    tr.write_list(path, final)
    if p.overwrite_edits:
        edits_file.unlink(missing_ok=True)
    have = {ln.name for ln in final}
    for key in ("missing", "empty"):  # slices an edit gave a line have one now
        if key in result:
            result[key] = [n for n in result[key] if n not in have]
    result.update(lines=len(final), edits_reapplied=len(edits), edits_discarded=discarded,
                  path=f"transcripts/{path.name}")
    return result


CONVERT = StepSpec(
    name="convert_audio", title="Convert audio",
    description="Every upload becomes 32 kHz mono 16-bit WAV (ffmpeg); bad files are reported by name.",
    params=ConvertParams, inputs=("input_audio",), outputs=("converted_wav",), execute=convert_audio,
    weight=2)
SLICE = StepSpec(
    name="slice_audio", title="Slice audio",
    description="Cut recordings at silences into utterances, with the web UI slicer's parameters "
                "and cut points; slices are named {upload}_{start:010d}_{end:010d}.wav as upstream's.",
    params=SliceParams, inputs=("converted_wav",), outputs=("sliced",), execute=slice_audio, weight=2)
DENOISE = StepSpec(
    name="denoise_audio", title="Denoise audio",
    description="Spectral denoise (built in) or the engine's FRCRN model; 'none' copies through.",
    params=DenoiseParams, inputs=("sliced",), outputs=("denoised",), execute=denoise_audio, weight=3,
    engine_use=denoise_engine_use)
ASR = StepSpec(
    name="asr_transcribe", title="Transcribe",
    description="Write the .list transcript (wav_path|speaker|LANG|text) from uploaded transcripts "
                "or the engine's ASR (funasr, faster_whisper).",
    params=AsrParams, inputs=("sliced",), optional_inputs=("denoised",), outputs=("transcript",),
    execute=asr_transcribe, weight=5, engine_use=asr_engine_use, precheck=asr_precheck)
