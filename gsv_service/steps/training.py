"""Steps 9-10: SoVITS (s2_train.py) and GPT (s1_train.py) training.

The config is written from the checkout's template as the web UI fills it, with the experiment,
resume state and weights inside the task. A re-run after a completed run starts afresh (old
state and weights cleared); after a failed, cancelled or interrupted run it resumes from the
engine's latest checkpoint, as upstream does by itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field

from gsv_service import checkpoints as ck
from gsv_service import model_names as mn
from gsv_service import trained_models as tm
from gsv_service.engine import Engine
from gsv_service.engine_configs import (TrainSettings, s1_env, s1_output_dir, write_s1_config,
                                        write_s2_config)
from gsv_service.procs import Command
from gsv_service.progress_parsers import S1Progress, S2Progress, SegmentReader
from gsv_service.steps.base import RunContext, StepFailed, StepParams, StepSpec
from gsv_service.states import Reason
from gsv_service.steps import engine_common as ec

RESUMABLE = ("failed", "cancelled")
T = TypeVar("T")


class TrainParams(StepParams):
    batch_size: int | None = Field(None, ge=1, le=256, description="default: the task's batch_size "
                                   "(halved, minimum 1, without CUDA half precision)")
    save_every_epoch: int | None = Field(None, ge=1, le=1000, description="default: the task's "
                                         "setting; capped at epochs so the last epoch is saved")
    if_save_latest: bool | None = None
    if_save_every_weights: bool | None = None
    is_half: bool | None = Field(None, description="default: the task's setting (on with CUDA)")
    resume: bool | None = Field(None, description="continue from the engine's latest checkpoint; "
                                "default: only after a failed, cancelled or interrupted run")


class SovitsParams(TrainParams):
    epochs: int | None = Field(None, ge=1, le=1000, description="default: the task's epochs_s2")
    text_low_lr_rate: float | None = Field(None, gt=0, le=1)
    pretrained_s2G: str | None = Field(None, max_length=1024, description="base G weights: a name in the "
                                       "pretrained folder (GET /api/v1/options lists them)")
    pretrained_s2D: str | None = Field(None, max_length=1024, description="base D weights: a name in the "
                                       "pretrained folder (GET /api/v1/options lists them)")


class GptParams(TrainParams):
    epochs: int | None = Field(None, ge=1, le=1000, description="default: the task's epochs_s1")
    pretrained_s1: str | None = Field(None, max_length=1024, description="base GPT weights: a name in the "
                                      "pretrained folder (GET /api/v1/options lists them)")
    if_dpo: bool | None = None


def _pick(value: T | None, default: T) -> T:
    return default if value is None else value


def _base_model(engine: Engine, p: TrainParams, field: str, role: str, version: str) -> Path:
    """The base model a param names inside the pretrained folder (checked at submit, and again
    here: a pipeline runs params recorded earlier), else the version's own."""
    try:
        return mn.path_or_default(engine.pretrained_root, getattr(p, field, None), field,
                                  engine.pretrained(role, version).resolve())
    except mn.ModelNameRejected as e:
        raise StepFailed(str(e)) from None


def _settings(ctx: RunContext, p: SovitsParams | GptParams, sovits: bool) -> TrainSettings:
    engine, cfg = ec.engine_of(ctx), ec.task_config(ctx)
    v = cfg.model_version
    epochs = _pick(p.epochs, cfg.epochs_s2 if sovits else cfg.epochs_s1)
    every = _pick(p.save_every_epoch, cfg.save_every_epoch_s2 if sovits else cfg.save_every_epoch_s1)
    ts = TrainSettings(
        version=v, exp_name=cfg.exp_name, batch_size=_pick(p.batch_size, cfg.batch_size), epochs=epochs,
        save_every_epoch=min(every, epochs), if_save_latest=_pick(p.if_save_latest, cfg.if_save_latest),
        if_save_every_weights=_pick(p.if_save_every_weights, cfg.if_save_every_weights),
        pretrained_G=(_base_model(engine, p, "pretrained_s2G", "s2G", v) if sovits
                      else _base_model(engine, p, "pretrained_s1", "s1", v)),
        pretrained_D=_base_model(engine, p, "pretrained_s2D", "s2D", v) if sovits else None,
        text_low_lr_rate=_pick(getattr(p, "text_low_lr_rate", None), cfg.text_low_lr_rate),
        if_dpo=_pick(getattr(p, "if_dpo", None), cfg.if_dpo))
    if not ts.if_save_every_weights:
        raise StepFailed("if_save_every_weights is off: the engine would write only resume checkpoints "
                         "and no usable weights; turn it on for this step")
    models = {"pretrained_s2G" if sovits else "pretrained_s1": ts.pretrained_G}
    if ts.pretrained_D:
        models["pretrained_s2D"] = ts.pretrained_D
    ec.check_models(models)
    return ts


def _prepare_state(ctx: RunContext, p: TrainParams, state_dir: Path, weight_dir: Path,
                   state_glob: str) -> bool:
    """Resume or start afresh; returns whether the engine will resume."""
    has_state = state_dir.is_dir() and any(state_dir.rglob(state_glob))
    wanted = p.resume if p.resume is not None else ctx.step_status.get(ctx.step) in RESUMABLE
    resume = bool(wanted and has_state)
    if not resume:
        ec.clear(state_dir, weight_dir)
    state_dir.mkdir(parents=True, exist_ok=True)   # s2_train.py crashes at its first save without it
    weight_dir.mkdir(parents=True, exist_ok=True)
    ctx.log("resuming from the engine's latest checkpoint" if resume else "training from the base model")
    return resume


def _train(ctx: RunContext, argv: list[str], env: dict[str, str], prog: S1Progress | S2Progress,
           what: str) -> None:
    reader = SegmentReader(ctx.log_path)
    reader.offset = ctx.log_path.stat().st_size if ctx.log_path.exists() else 0

    def poll() -> None:
        for seg in reader.segments():
            prog.feed(seg)
        if prog.changed:
            fraction, message, metrics = prog.report()
            ctx.progress(fraction, message, metrics, force=True)

    engine = ec.engine_of(ctx)
    ctx.progress(0.0, f"{what}: starting", force=True)
    codes = ctx.run([Command(argv, cwd=engine.root, env=env, label=what)], poll=poll)
    ec.fail_exit_codes(codes, what, ctx.log_path)


def _verify(ctx: RunContext, kind: str, ts: TrainSettings, what: str) -> dict[str, Any]:
    """The weight of the last epoch that should have been saved must exist."""
    ws = ctx.workspace
    last_saved = ts.epochs - ts.epochs % ts.save_every_epoch
    models = tm.list_models(ws, kind)
    if not any(m.epoch == last_saved for m in models):
        have = ", ".join(m.name for m in models) or "none"
        raise StepFailed(ec.with_traceback(f"{what} exited normally but wrote no weights for epoch "
                                           f"{last_saved} (weights present: {have})", ctx.log_path),
                         Reason.outputs_missing)
    final = [m for m in models if m.epoch == last_saved][-1]
    ctx.progress(1.0, f"{what}: done, {final.name}", force=True)
    return {"weights": [m.to_dict() for m in models], "latest": final.name, "epochs": ts.epochs}


def run_sovits(ctx: RunContext, params: SovitsParams) -> dict[str, Any]:
    engine, cfg = ec.engine_of(ctx), ec.task_config(ctx)
    ts = _settings(ctx, params, sovits=True)
    plan = ec.plan_of(ctx, cfg, params.is_half)
    ws = ctx.workspace
    resume = _prepare_state(ctx, params, ws.exp_dir / f"logs_s2_{ts.version}",
                            tm.weights_dir(ws, "sovits"), "G_*.pth")
    conf = ws.root / "configs" / "s2.json"
    write_s2_config(engine, ts, plan, ws.exp_dir, tm.weights_dir(ws, "sovits"), conf)
    _train(ctx, engine.argv("s2_train", "--config", str(conf)), engine.env(), S2Progress(ts.epochs),
           "SoVITS training")
    verified = _verify(ctx, "sovits", ts, "SoVITS training")
    pruned = ck.prune_after_training("sovits", ws, ts.version, cfg.keep_resume_checkpoints, ctx.log)
    return {**verified, "resumed": resume, "config": "configs/s2.json", "pruned": pruned}


def run_gpt(ctx: RunContext, params: GptParams) -> dict[str, Any]:
    engine, cfg = ec.engine_of(ctx), ec.task_config(ctx)
    ts = _settings(ctx, params, sovits=False)
    plan = ec.plan_of(ctx, cfg, params.is_half)
    ws = ctx.workspace
    (ws.exp_dir / "logs_s1").mkdir(parents=True, exist_ok=True)   # the web UI creates it too
    resume = _prepare_state(ctx, params, s1_output_dir(ws.exp_dir, ts.version),
                            tm.weights_dir(ws, "gpt"), "*.ckpt")
    conf = ws.root / "configs" / "s1.yaml"
    write_s1_config(engine, ts, plan, ws.exp_dir, tm.weights_dir(ws, "gpt"), conf)
    _train(ctx, engine.argv("s1_train", "--config_file", str(conf)), s1_env(engine, plan),
           S1Progress(ts.epochs), "GPT training")
    verified = _verify(ctx, "gpt", ts, "GPT training")
    pruned = ck.prune_after_training("gpt", ws, ts.version, cfg.keep_resume_checkpoints, ctx.log)
    return {**verified, "resumed": resume, "config": "configs/s1.yaml", "pruned": pruned}


SOVITS = StepSpec(
    name="train_sovits", title="Train SoVITS",
    description="s2_train.py --config: fine-tune the SoVITS model; weights land in weights/sovits/.",
    params=SovitsParams, inputs=("text_features", "hubert_features", "semantic_features"),
    pro_inputs=("speaker_vectors",), outputs=("sovits_weights",), execute=run_sovits, needs_engine=True,
    needs_gpu=True, engine_needs=("s2G", "s2D", "disk"), weight=30)
GPT = StepSpec(
    name="train_gpt", title="Train GPT",
    description="s1_train.py --config_file: fine-tune the GPT model; weights land in weights/gpt/.",
    params=GptParams, inputs=("text_features", "semantic_features"), outputs=("gpt_weights",),
    execute=run_gpt, needs_engine=True, needs_gpu=True, engine_needs=("s1", "disk"), weight=25)
