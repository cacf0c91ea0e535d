"""The per-task training configuration (the `config` object of POST /api/v1/task/create)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LANGUAGES = ("zh", "en", "ja", "ko", "yue", "auto", "auto_yue",
             "all_zh", "all_ja", "all_ko", "all_yue")
Language = Literal["zh", "en", "ja", "ko", "yue", "auto", "auto_yue", "all_zh", "all_ja", "all_ko",
                   "all_yue"]
ModelVersion = Literal["v1", "v2", "v2Pro", "v2ProPlus"]
GPU_ID_RE = re.compile(r"^\d{1,3}(-\d{1,3}){0,15}$")
EXP_NAME_RE = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]{0,63}$")


class TaskConfig(BaseModel):
    """Defaults follow GPT-SoVITS's web UI unless said otherwise."""

    model_config = ConfigDict(extra="forbid")

    exp_name: str = Field("my_speaker", description="experiment name: letters, digits, '_', '-', '.'")
    language: Language = Field("zh", description="language of the recordings (GPT-SoVITS codes)")
    model_version: ModelVersion = Field("v2ProPlus", description="GPT-SoVITS model version")
    batch_size: int = Field(16, ge=1, le=256, description="batch size for SoVITS and GPT training "
                            "(halved, minimum 1, when training without CUDA half precision)")
    epochs_s2: int = Field(8, ge=1, le=1000, description="SoVITS (s2) epochs; the web UI default is 8")
    epochs_s1: int = Field(15, ge=1, le=1000, description="GPT (s1) epochs; the web UI default is 15")
    save_every_epoch_s2: int = Field(4, ge=1, le=1000, description="save SoVITS weights every N epochs")
    save_every_epoch_s1: int = Field(5, ge=1, le=1000, description="save GPT weights every N epochs")
    gpu_id: str = Field("0", description='GPU ids joined by "-", e.g. "0" or "0-1"; feature '
                        "extraction runs one shard per id")
    text_low_lr_rate: float = Field(0.4, gt=0, le=1, description="SoVITS text-encoder learning-rate factor")
    if_save_latest: bool = Field(True, description="keep only the latest resume checkpoint")
    if_save_every_weights: bool = Field(True, description="write usable weights at every save")
    if_dpo: bool = Field(False, description="GPT DPO training (slower, needs more memory)")
    is_half: bool | None = Field(None, description="half precision; default: on with CUDA GPUs only")
    denoise: bool = Field(False, description="run denoise_audio in the pipeline (the web UI hides it "
                          "as unstable, so off by default)")
    speaker_name: str | None = Field(None, max_length=64, description="speaker column of the .list "
                                     "file; default: exp_name")
    webhook_url: str | None = Field(None, max_length=2000, description="POSTed to when the task "
                                    "completes or fails")

    @field_validator("exp_name")
    @classmethod
    def _exp_name(cls, v: str) -> str:
        if not EXP_NAME_RE.match(v) or v in (".", ".."):
            raise ValueError("exp_name must be 1-64 letters, digits, '_', '-' or '.', not starting "
                             "with '.'")
        return v

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", v):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        return v

    @field_validator("gpu_id", mode="before")
    @classmethod
    def _gpu_id(cls, v) -> str:
        v = str(v).strip().replace(",", "-")
        if not GPU_ID_RE.match(v):
            raise ValueError('gpu_id must be GPU numbers joined by "-", e.g. "0" or "0-1"')
        return v

    @property
    def gpu_ids(self) -> list[str]:
        return self.gpu_id.split("-")
