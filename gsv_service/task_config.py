"""The per-task training configuration (the `config` object of POST /api/v1/task/create)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LANGUAGES = ("zh", "en", "ja", "ko", "yue", "auto", "auto_yue",
             "all_zh", "all_ja", "all_ko", "all_yue")
# As the inference web UI names them (dict_language_v2): a plain code mixes in English.
LANGUAGE_NAMES = {"zh": "Chinese-English mix", "en": "English", "ja": "Japanese-English mix",
                  "ko": "Korean-English mix", "yue": "Cantonese-English mix",
                  "auto": "multilingual mix (language detected per segment)",
                  "auto_yue": "multilingual mix, Chinese read as Cantonese", "all_zh": "Chinese",
                  "all_ja": "Japanese", "all_ko": "Korean", "all_yue": "Cantonese"}
Language = Literal["zh", "en", "ja", "ko", "yue", "auto", "auto_yue", "all_zh", "all_ja", "all_ko",
                   "all_yue"]
ModelVersion = Literal["v1", "v2", "v2Pro", "v2ProPlus"]
GPU_ID_RE = re.compile(r"^\d{1,3}(-\d{1,3}){0,15}$")
EXP_NAME_RE = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]{0,63}$")
# The speaker column of every .list line: letters of any script, digits, '_', '.', '-' and inner
# spaces; never '|' or a line break, which would split or add lines. Always used with fullmatch
# (a `$` with match() also matches before a trailing newline).
SPEAKER_RE = re.compile(r"\w(?:[\w .\-]{0,62}[\w.\-])?")
WEBHOOK_URL_RE = re.compile(r"https?://[^\s/]+(/\S*)?")


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
    keep_resume_checkpoints: int = Field(1, ge=0, le=1000, description="after a training step "
                                         "completes, keep this many of its newest resume checkpoints "
                                         "(SoVITS G_/D_ pairs, GPT ckpt files; 0 = none, so the next "
                                         "run cannot resume); trained weights are never pruned")
    if_save_every_weights: bool = Field(True, description="write usable weights at every save")
    if_dpo: bool = Field(False, description="GPT DPO training (slower, needs more memory)")
    is_half: bool | None = Field(None, description="half precision; default: on with CUDA GPUs only")
    denoise: bool = Field(False, description="run denoise_audio in the pipeline (the web UI hides it "
                          "as unstable, so off by default)")
    speaker_name: str | None = Field(None, max_length=64, description="speaker column of the .list "
                                     "file; default: exp_name")
    webhook_url: str | None = Field(None, max_length=2000, description="POSTed to when the task "
                                    "completes or fails")

    @property
    def speaker(self) -> str:
        """The speaker column of the task's .list lines."""
        return self.speaker_name or self.exp_name

    @field_validator("exp_name")
    @classmethod
    def _exp_name(cls, v: str) -> str:
        if not EXP_NAME_RE.fullmatch(v) or v in (".", ".."):
            raise ValueError("exp_name must be 1-64 letters, digits, '_', '-' or '.', not starting "
                             "with '.'")
        return v

    @field_validator("speaker_name")
    @classmethod
    def _speaker_name(cls, v: str | None) -> str | None:
        if v and not SPEAKER_RE.fullmatch(v):  # "" (like null): the exp_name
            raise ValueError("speaker_name must be 1-64 letters, digits, '_', '-', '.' or inner spaces "
                             "(it is a column of the .list transcript: no '|' or line break)")
        return v

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, v: str | None) -> str | None:
        if v is not None and not WEBHOOK_URL_RE.fullmatch(v):  # fullmatch: no trailing newline
            raise ValueError("webhook_url must be an http:// or https:// URL")
        return v

    @field_validator("gpu_id", mode="before")
    @classmethod
    def _gpu_id(cls, v: object) -> str:
        v = str(v).strip().replace(",", "-")
        if not GPU_ID_RE.fullmatch(v):
            raise ValueError('gpu_id must be GPU numbers joined by "-", e.g. "0" or "0-1"')
        return v

    @property
    def gpu_ids(self) -> list[str]:
        return self.gpu_id.split("-")


# ---------- what upstream's web UI offers (webui.py @ 48b1a0169a28: set_default() and the 1B tab) ----------
# The fields above are the single source of what the service accepts and of the version-independent
# defaults; below are only the web UI's own facts on top: its slider ranges (narrower: advice, not
# limits) and what depends on the model version or the machine. GET /api/v1/options shows both.

V3V4 = ("v3", "v4")  # upstream's v3v4set: LoRA SoVITS training (not among the versions trained here yet)
LORA_RANKS = (16, 32, 64, 128)  # the lora_rank radio, v3/v4 only
LORA_RANK_DEFAULT = 32
# Languages of the inference web UI per version (dict_language_v1 / _v2); v1 has no ko, yue.
VERSION_LANGUAGES: dict[str, tuple[str, ...]] = {
    "v1": ("zh", "en", "ja", "auto", "all_zh", "all_ja"),
}
MIN_GPU_GIB = 4.0  # config.py: a GPU under 4 GiB (or compute capability < 5.3) trains on the CPU


class WebUIRange(BaseModel):
    """One web UI slider: its default and range (a recommendation; TaskConfig holds the limits)."""

    model_config = ConfigDict(frozen=True)

    default: int | float
    minimum: int | float
    maximum: int | float
    step: int | float = 1


def languages_of(version: str) -> tuple[str, ...]:
    return VERSION_LANGUAGES.get(version, LANGUAGES)


def _default(field: str) -> int | float:
    value: int | float = TaskConfig.model_fields[field].default
    return value


def webui_ranges(version: str) -> dict[str, WebUIRange]:
    """The web UI's sliders for one version, by TaskConfig field (batch size: see webui_batch_sizes)."""
    v3v4 = version in V3V4
    out = {
        "epochs_s2": WebUIRange(default=2 if v3v4 else _default("epochs_s2"), minimum=1,
                                maximum=16 if v3v4 else 25),
        "save_every_epoch_s2": WebUIRange(default=1 if v3v4 else _default("save_every_epoch_s2"),
                                          minimum=1, maximum=10 if v3v4 else 25),
        "epochs_s1": WebUIRange(default=_default("epochs_s1"), minimum=2, maximum=50),
        "save_every_epoch_s1": WebUIRange(default=_default("save_every_epoch_s1"), minimum=1, maximum=50),
    }
    if not v3v4:  # v3/v4 hide the text learning-rate slider and show the LoRA rank instead
        out["text_low_lr_rate"] = WebUIRange(default=_default("text_low_lr_rate"), minimum=0.2,
                                             maximum=0.6, step=0.05)
    return out


GPT_BATCH_MAX = 40  # the GPT batch-size slider's maximum


def webui_batch_sizes(version: str, gpu_gib: list[float] | None, ram_gib: float) -> tuple[int, int, int]:
    """(SoVITS default, SoVITS slider maximum, GPT default) as set_default() computes them: from the
    smallest GPU's memory in GiB (//2; //8 for v3/v4's SoVITS), or from RAM // 4 without a GPU;
    at least 1, and within what TaskConfig accepts."""
    if gpu_gib:
        low = min(gpu_gib)
        s2, s1 = int(low // 8 if version in V3V4 else low // 2), int(low // 2)
    else:
        s2 = s1 = int(ram_gib / 4)
    cap = _batch_max()
    s2, s1 = min(max(1, s2), cap), min(max(1, s1), GPT_BATCH_MAX, cap)
    return s2, min(s2 * 3, cap), s1


def _batch_max() -> int:
    le: int = next(m.le for m in TaskConfig.model_fields["batch_size"].metadata if hasattr(m, "le"))
    return le
