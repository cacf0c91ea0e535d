"""Steps 5-8: GPT-SoVITS feature extraction (prepare_datasets/*.py), sharded over the task's GPUs.

Each step clears its old outputs (upstream silently reuses them), launches one shard per GPU id
(times parts_per_gpu) in parallel, merges the part files as the web UI does, then checks the
outputs against the transcript: the scripts exit 0 even when every item failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from gsv_service import model_names as mn
from gsv_service.device_limits import DeviceLimit, check_step_procs
from gsv_service.procs import Command
from gsv_service.steps.base import PRO_VERSIONS, RunContext, StepFailed, StepParams, StepSpec, audio_source
from gsv_service.states import Reason
from gsv_service.steps import engine_common as ec
from gsv_service.steps.feature_outputs import (Outcome, merge_semantic, merge_text, names_in,
                                               verify)


class FeatureParams(StepParams):
    is_half: bool | None = Field(None, description="half precision; default: the task's setting "
                                 "(on with CUDA GPUs); always off without CUDA")
    parts_per_gpu: int = Field(1, ge=1, le=8, description="processes per GPU id of the task (the web "
                               "UI's \"0-0\" = 2 on GPU 0)")
    allow_dropped: bool = Field(False, description="complete even when the engine dropped some items "
                                "(listed in the result); by default any dropped item fails the step")


class SemanticParams(FeatureParams):
    pretrained_s2G: str | None = Field(None, max_length=1024, description="base SoVITS G whose quantizer "
                                       "makes the tokens: a name in the pretrained folder (GET "
                                       "/api/v1/options lists them); default: the version's")


@dataclass(frozen=True)
class Stage:
    key: str                                         # engine script / env key
    what: str
    outputs: Callable[[Path], list[Path]]            # under the experiment dir, cleared first
    done: Callable[[Path], int]                      # items finished so far (progress)


def _count(folder: str) -> Callable[[Path], int]:
    return lambda exp: sum(1 for _ in (exp / folder).glob("*.pt")) if (exp / folder).is_dir() else 0


STAGES = {
    "text": Stage("text", "text features", lambda e: [e / "2-name2text.txt", e / "3-bert",
                                                     *e.glob("2-name2text-*.txt")], lambda e: 0),
    "hubert": Stage("hubert", "HuBERT features", lambda e: [e / "4-cnhubert", e / "5-wav32k"],
                    _count("4-cnhubert")),
    "sv": Stage("sv", "speaker vectors", lambda e: [e / "7-sv_cn"], _count("7-sv_cn")),
    "semantic": Stage("semantic", "semantic tokens",
                      lambda e: [e / "6-name2semantic.tsv", *e.glob("6-name2semantic-*.tsv")],
                      lambda e: 0),
}


def _shards(ctx: RunContext, params: FeatureParams, stage: Stage, pretrained_s2G: Path | None,
            inp_text: Path) -> list[Command]:
    engine, cfg = ec.engine_of(ctx), ec.task_config(ctx)
    plan = ec.plan_of(ctx, cfg, params.is_half)
    n = len(cfg.gpu_ids) * params.parts_per_gpu
    common = {"inp_text": str(inp_text), "inp_wav_dir": str(audio_source(ctx)),
              "exp_name": cfg.exp_name, "opt_dir": str(ctx.workspace.exp_dir), "all_parts": str(n),
              "is_half": str(plan.is_half)}
    cmds = []
    for i in range(n):
        env = engine.feature_env(stage.key, cfg.model_version, {
            **common, "i_part": str(i), "_CUDA_VISIBLE_DEVICES": plan.visible(i // params.parts_per_gpu)},
            pretrained_s2G)
        cmds.append(Command(engine.argv(stage.key), cwd=engine.root, env=env,
                            label=f"shard {i + 1}/{n}"))
    return cmds


def _launch(ctx: RunContext, params: FeatureParams, stage: Stage, expected: list[ec.Item],
            pretrained_s2G: Path | None = None) -> int:
    """Clear, run every shard in parallel with progress, fail on a bad exit code; the shard count."""
    engine, cfg = ec.engine_of(ctx), ec.task_config(ctx)
    try:  # checked at submit; a task or params recorded before the limits were set meet them here
        check_step_procs(len(cfg.gpu_ids), params.parts_per_gpu, ctx.settings)
    except DeviceLimit as e:
        raise StepFailed(str(e)) from None
    models = engine.required_models(stage.key, cfg.model_version)
    if pretrained_s2G:
        models["pretrained_s2G"] = pretrained_s2G
    ec.check_models(models)
    exp = ctx.workspace.exp_dir
    ec.clear(*stage.outputs(exp))
    exp.mkdir(parents=True, exist_ok=True)
    inp_text, _ = ec.task_transcript(ctx)
    cmds = _shards(ctx, params, stage, pretrained_s2G, inp_text)
    names, printed = {it.name for it in expected}, set()
    total = max(1, len(expected))

    def on_line(line: str) -> None:  # 1-get-text.py prints each item's name as it starts it
        if stage.key == "text" and line.strip() in names:
            printed.add(line.strip())

    def poll() -> None:
        if stage.key == "semantic":  # only whole shards are visible: their part files
            done = sum(1 for _ in exp.glob("6-name2semantic-*.tsv")) * total // len(cmds)
        else:
            done = len(printed) if stage.key == "text" else stage.done(exp)
        ctx.progress(min(done, total) / total, f"{stage.what}: {min(done, total)}/{total} items")

    ctx.progress(0.0, f"{stage.what}: {len(cmds)} shard(s)", force=True)
    codes = ctx.run(cmds, on_line=on_line, poll=poll)
    ec.fail_exit_codes(codes, f"{stage.what} ({engine.script(stage.key).name})", ctx.log_path)
    return len(cmds)


def _finish(ctx: RunContext, params: FeatureParams, outcome: Outcome) -> dict[str, Any]:
    result = verify(ctx, outcome, params.allow_dropped)
    ctx.progress(1.0, f"{outcome.what}: {result['items']} items", force=True)
    return result


def run_text(ctx: RunContext, params: FeatureParams) -> dict[str, Any]:
    _, items = ec.task_transcript(ctx)
    parts = _launch(ctx, params, STAGES["text"], items)
    got = merge_text(ctx, parts, exclude={it.name for it in items if not it.text.strip()})
    return _finish(ctx, params, Outcome("text features", items, got, "2-name2text.txt"))


def run_hubert(ctx: RunContext, params: FeatureParams) -> dict[str, Any]:
    _, items = ec.task_transcript(ctx)
    _launch(ctx, params, STAGES["hubert"], items)
    exp = ctx.workspace.exp_dir
    got = names_in(exp / "4-cnhubert", ".pt") & names_in(exp / "5-wav32k", "")
    return _finish(ctx, params, Outcome("HuBERT features", items, got, "4-cnhubert/"))


def run_sv(ctx: RunContext, params: FeatureParams) -> dict[str, Any]:
    cfg = ec.task_config(ctx)
    if cfg.model_version not in PRO_VERSIONS:
        ctx.progress(1.0, f"not needed for {cfg.model_version}", force=True)
        return {"skipped": True, "message": f"speaker vectors are not needed for {cfg.model_version} "
                "(only v2Pro and v2ProPlus use them)"}
    _, items = ec.task_transcript(ctx)
    exp = ctx.workspace.exp_dir
    have = names_in(exp / "5-wav32k", "")
    items = [it for it in items if it.name in have]   # 2-get-sv.py reads 5-wav32k
    if not items:
        raise StepFailed("no 32 kHz audio in 5-wav32k/: run extract_audio_features first",
                         Reason.outputs_missing)
    _launch(ctx, params, STAGES["sv"], items)
    got = names_in(exp / "7-sv_cn", ".pt")
    return _finish(ctx, params, Outcome("speaker vectors", items, got, "7-sv_cn/"))


def run_semantic(ctx: RunContext, params: SemanticParams) -> dict[str, Any]:
    _, items = ec.task_transcript(ctx)
    exp = ctx.workspace.exp_dir
    have = names_in(exp / "4-cnhubert", ".pt")
    items = [it for it in items if it.name in have]   # 3-get-semantic.py reads 4-cnhubert
    if not items:
        raise StepFailed("no HuBERT features in 4-cnhubert/: run extract_audio_features first",
                         Reason.outputs_missing)
    s2g = None
    if params.pretrained_s2G:  # checked at submit; again here, as a pipeline runs recorded params
        try:
            s2g = mn.resolve(ec.engine_of(ctx).pretrained_root, params.pretrained_s2G, "pretrained_s2G")
        except mn.ModelNameRejected as e:
            raise StepFailed(str(e)) from None
    parts = _launch(ctx, params, STAGES["semantic"], items, s2g)
    got = merge_semantic(ctx, parts)
    return _finish(ctx, params, Outcome("semantic tokens", items, got, "6-name2semantic.tsv"))


TEXT = StepSpec(
    name="extract_text_features", title="Text features",
    description="1-get-text.py: phonemes and BERT features for every transcript line.",
    params=FeatureParams, inputs=("transcript",), outputs=("text_features",), execute=run_text,
    needs_engine=True, needs_gpu=True, engine_needs=("bert", "g2pw", "nltk"), weight=5)
AUDIO = StepSpec(
    name="extract_audio_features", title="Audio features",
    description="2-get-hubert-wav32k.py: HuBERT features and 32 kHz audio per utterance.",
    params=FeatureParams, inputs=("transcript", "sliced"), optional_inputs=("denoised",),
    outputs=("hubert_features",), execute=run_hubert, needs_engine=True, needs_gpu=True,
    engine_needs=("cnhubert", "ffmpeg"), weight=5)
SPEAKER = StepSpec(
    name="extract_speaker_vectors", title="Speaker vectors",
    description="2-get-sv.py: speaker vectors (v2Pro and v2ProPlus; nothing to do for v1/v2).",
    params=FeatureParams, inputs=("hubert_features",), outputs=("speaker_vectors",), execute=run_sv,
    needs_engine=True, needs_gpu=True, engine_needs=("sv",), weight=3)
SEMANTIC = StepSpec(
    name="extract_semantic_features", title="Semantic tokens",
    description="3-get-semantic.py: semantic tokens from the HuBERT features.",
    params=SemanticParams, inputs=("hubert_features",), outputs=("semantic_features",),
    execute=run_semantic, needs_engine=True, needs_gpu=True, engine_needs=("s2G",), weight=5)
