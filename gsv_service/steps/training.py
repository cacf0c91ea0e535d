"""Steps 9-10: SoVITS (s2_train.py) and GPT (s1_train.py) training."""

from __future__ import annotations

from pydantic import Field

from gsv_service.runner import RunContext, StepFailed
from gsv_service.steps.base import StepParams, StepSpec


class SovitsParams(StepParams):
    batch_size: int | None = Field(None, ge=1, le=256, description="default: the task's batch_size")
    epochs: int | None = Field(None, ge=1, le=1000, description="default: the task's epochs_s2")
    save_every_epoch: int | None = Field(None, ge=1, le=1000, description="default: the task's setting")
    text_low_lr_rate: float | None = Field(None, gt=0, le=1)
    pretrained_s2G: str | None = Field(None, max_length=1024, description="base G weights on the server")
    pretrained_s2D: str | None = Field(None, max_length=1024, description="base D weights on the server")
    if_save_latest: bool | None = None
    if_save_every_weights: bool | None = None


class GptParams(StepParams):
    batch_size: int | None = Field(None, ge=1, le=256, description="default: the task's batch_size")
    epochs: int | None = Field(None, ge=1, le=1000, description="default: the task's epochs_s1")
    save_every_epoch: int | None = Field(None, ge=1, le=1000, description="default: the task's setting")
    pretrained_s1: str | None = Field(None, max_length=1024, description="base GPT weights on the server")
    if_dpo: bool | None = None
    if_save_latest: bool | None = None
    if_save_every_weights: bool | None = None


def _not_ready(ctx: RunContext, params: StepParams) -> dict:
    raise StepFailed(f"step {ctx.step} is not implemented in this build")


SOVITS = StepSpec(
    name="train_sovits", title="Train SoVITS",
    description="s2_train.py --config: fine-tune the SoVITS model; weights land in weights/sovits/.",
    params=SovitsParams, inputs=("text_features", "hubert_features", "semantic_features"),
    pro_inputs=("speaker_vectors",), outputs=("sovits_weights",), execute=_not_ready, needs_engine=True,
    needs_gpu=True, weight=30)
GPT = StepSpec(
    name="train_gpt", title="Train GPT",
    description="s1_train.py --config_file: fine-tune the GPT model; weights land in weights/gpt/.",
    params=GptParams, inputs=("text_features", "semantic_features"), outputs=("gpt_weights",),
    execute=_not_ready, needs_engine=True, needs_gpu=True, weight=25)
