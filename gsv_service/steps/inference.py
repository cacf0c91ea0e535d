"""Step 11: synthesise a test sentence with the trained weights.

Runs gsv_service/engine_scripts/infer.py with the engine's interpreter: upstream's own inference
code (the module inference_cli.py drives), writing output/{output_name}.wav.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import soundfile as sf
from pydantic import Field

from gsv_service import trained_models as tm
from gsv_service.jobs import protocol
from gsv_service.procs import Command
from gsv_service.progress_parsers import SegmentReader, bar_position
from gsv_service.steps.base import PRO_VERSIONS, RunContext, StepFailed, StepParams, StepSpec, audio_source
from gsv_service.states import Reason
from gsv_service.steps import engine_common as ec
from gsv_service.task_config import Language, TaskConfig
from gsv_service.workspace import PathRejected, safe_name

INFER_SCRIPT = Path(__file__).resolve().parents[1] / "engine_scripts" / "infer.py"
REF_SECONDS = (3.0, 10.0)   # upstream refuses reference audio outside 3-10 s
LIST_LANG = {"zh": "zh", "ja": "ja", "jp": "ja", "en": "en", "ko": "ko", "yue": "yue"}
DEFAULT_TEXT = {"en": "This is a test sentence to check the training result.",
                "ja": "これは学習結果を確かめるためのテスト文です。",
                "ko": "이것은 학습 결과를 확인하기 위한 테스트 문장입니다."}
ZH_TEXT = "这是一个测试文本，验证训练效果。"


class InferenceParams(StepParams):
    target_text: str | None = Field(None, min_length=1, max_length=2000, description="text to "
                                    "synthesise; default: a test sentence in target_language")
    target_language: Language | None = Field(None, description="default: the task's language")
    ref_audio: str | None = Field(None, max_length=255, description="slice name; default: the first "
                                  "slice with a transcript (3-10 s long when there is one)")
    ref_text: str | None = Field(None, max_length=2000, description="default: that slice's transcript")
    ref_language: Language | None = Field(None, description="default: that slice's language")
    gpt_model: str | None = Field(None, max_length=255, description="GPT weight file name in weights/gpt "
                                  "(default: latest)")
    sovits_model: str | None = Field(None, max_length=255, description="SoVITS weight file name in "
                                     "weights/sovits (default: latest)")
    output_name: str = Field("output", pattern=r"^[A-Za-z0-9_\-]{1,64}$",
                             description="written as output/{output_name}.wav")
    top_k: int = Field(20, ge=1, le=100)
    top_p: float = Field(1.0, gt=0, le=1.0, description="1 as in inference_cli.py")
    temperature: float = Field(1.0, gt=0, le=2.0, description="1 as in inference_cli.py")
    is_half: bool | None = Field(None, description="default: the task's setting (on with CUDA)")


def _weight(ctx: RunContext, kind: str, name: str | None) -> Path:
    ws = ctx.workspace
    model = tm.find(ws, kind, name) if name else tm.latest(ws, kind)
    if model is None:
        names = ", ".join(m.name for m in tm.list_models(ws, kind)) or "none yet"
        raise StepFailed(f"{kind} weights {name!r} not found (trained: {names}); see GET "
                         f"/api/v1/task/{ctx.task_id}/models" if name else
                         f"no trained {kind} weights: run train_{kind} first")
    return ws.root / model.path


def _duration(path: Path) -> float:
    try:
        duration: float = sf.info(str(path)).duration
        return duration
    except (RuntimeError, OSError):
        return 0.0


def _reference(ctx: RunContext, p: InferenceParams, cfg: TaskConfig) -> tuple[Path, str, str]:
    """(audio, text, language) of the reference: the named slice, or the first usable one."""
    _, items = ec.task_transcript(ctx)
    folder = audio_source(ctx)
    if p.ref_audio:
        try:
            name = safe_name(p.ref_audio, "ref_audio")
        except PathRejected as e:
            raise StepFailed(str(e)) from None
        item = next((it for it in items if it.name == name), None)
        if not (folder / name).is_file():
            raise StepFailed(f"ref_audio {name!r} is not in {folder.name}/; name one of its slices")
        if item is None and not p.ref_text:
            raise StepFailed(f"ref_audio {name!r} has no transcript line: pass ref_text")
    else:
        usable = [it for it in items if it.text.strip() and (folder / it.name).is_file()]
        if not usable:
            raise StepFailed("no slice with a transcript to use as reference: pass ref_audio and ref_text")
        lo, hi = REF_SECONDS
        item = next((it for it in usable if lo <= _duration(folder / it.name) <= hi), usable[0])
        name = item.name
    text = p.ref_text or (item.text if item else "")  # no item: ref_text was given
    lang = p.ref_language or (LIST_LANG.get(item.language.lower()) if item else None) or cfg.language
    return folder / name, text, lang


def _on_line(ctx: RunContext, result: dict[str, Any]) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        ev = protocol.parse(line)
        if ev and ev["event"] == "progress":
            ctx.progress(ev.get("done", 0) / max(1, ev.get("total", 1)), ev.get("message"), force=True)
        elif ev and ev["event"] == "result":
            result.update(ev)
    return on_line


def _token_poll(ctx: RunContext) -> Callable[[], None]:
    """The GPT's decoding bar (tqdm, up to its token limit): the long part on a CPU."""
    reader = SegmentReader(ctx.log_path)
    reader.offset = ctx.log_path.stat().st_size if ctx.log_path.exists() else 0

    def poll() -> None:
        last = None
        for seg in reader.segments():
            last = bar_position(seg) or last
        if last:
            done, total = last
            ctx.progress(1 / 3 + done / total / 3, f"synthesising: {done}/{total} tokens at most")
    return poll


def run_inference(ctx: RunContext, p: InferenceParams) -> dict[str, Any]:
    engine, cfg = ec.engine_of(ctx), ec.task_config(ctx)
    plan = ec.plan_of(ctx, cfg, p.is_half)
    ec.check_models(engine.required_models("infer", cfg.model_version))
    ws = ctx.workspace
    gpt, sovits = _weight(ctx, "gpt", p.gpt_model), _weight(ctx, "sovits", p.sovits_model)
    ref, ref_text, ref_lang = _reference(ctx, p, cfg)
    target_lang = p.target_language or cfg.language
    out = ws.root / "output" / f"{p.output_name}.wav"
    ec.clear(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    job = {"ref_audio": str(ref), "ref_text": ref_text, "ref_language": ref_lang,
           "target_text": p.target_text or DEFAULT_TEXT.get(target_lang, ZH_TEXT),
           "target_language": target_lang, "output": str(out), "top_k": p.top_k, "top_p": p.top_p,
           "temperature": p.temperature,
           "sv_path": str(engine.pretrained("sv")) if cfg.model_version in PRO_VERSIONS else None}
    job_path = ws.root / "configs" / f"inference-{p.output_name}.json"
    job_path.parent.mkdir(parents=True, exist_ok=True)
    job_path.write_text(json.dumps(job, ensure_ascii=False, indent=1), encoding="utf-8")
    env = engine.env({"gpt_path": str(gpt), "sovits_path": str(sovits),
                      "bert_path": str(engine.pretrained("bert")),
                      "cnhubert_base_path": str(engine.pretrained("cnhubert")),
                      "version": cfg.model_version, "is_half": str(plan.is_half),
                      "_CUDA_VISIBLE_DEVICES": plan.visible(0)})
    result: dict[str, Any] = {}
    codes = ctx.run([Command([engine.python, "-s", str(INFER_SCRIPT), str(job_path)], cwd=engine.root,
                             env=env, label="inference")], on_line=_on_line(ctx, result),
                    poll=_token_poll(ctx))
    ec.fail_exit_codes(codes, "inference", ctx.log_path)
    if not out.is_file() or out.stat().st_size == 0:
        raise StepFailed(ec.with_traceback("inference exited normally but wrote no audio", ctx.log_path),
                         Reason.outputs_missing)
    info = sf.info(str(out))
    ctx.progress(1.0, f"wrote output/{out.name} ({info.duration:.1f} s)", force=True)
    return {"output": f"output/{out.name}", "file": out.name, "duration": round(info.duration, 3),
            "sample_rate": info.samplerate, "gpt_model": gpt.name, "sovits_model": sovits.name,
            "ref_audio": ref.name, "ref_text": ref_text, "ref_language": ref_lang,
            "target_text": job["target_text"], "target_language": target_lang,
            **{k: result[k] for k in ("load_s", "synth_s") if k in result}}


INFERENCE = StepSpec(
    name="test_inference", title="Test inference",
    description="Synthesise target_text with the trained weights into output/{output_name}.wav.",
    params=InferenceParams, inputs=("sovits_weights", "gpt_weights", "transcript"),
    outputs=("inference_audio",), execute=run_inference, needs_engine=True, needs_gpu=True,
    engine_needs=("bert", "cnhubert", "sv", "g2pw", "nltk", "langdetect", "ffmpeg"), weight=2)
