"""What a user may choose, on this service as it is now (GET /api/v1/options): per model version
the training settings with upstream's web UI defaults and ranges (batch size from this machine's
GPU memory, as the web UI computes it), the languages, and the ASR and denoise methods with what
each needs. Limits come from TaskConfig; the web UI's facts from task_config too."""

from __future__ import annotations

from typing import Any, Literal

import psutil
from pydantic import BaseModel, Field

from gsv_service import asr_models, model_names
from gsv_service.engine import INSTALL_COMMAND, VERSIONS, Engine, gpu_memory, visible_gpus
from gsv_service.settings import Settings
from gsv_service.steps.prep import ENGINE_ASR, frcrn_missing
from gsv_service.task_config import (GPT_BATCH_MAX, LANGUAGE_NAMES, LANGUAGES, LORA_RANK_DEFAULT, LORA_RANKS, MIN_GPU_GIB,
                                     V3V4, TaskConfig, WebUIRange, languages_of, webui_batch_sizes,
                                     webui_ranges)
from gsv_service.transcripts import engine_language

GIB = 1024 ** 3
Number = int | float


class NumberOption(BaseModel):
    """One setting: where to set it, the web UI's default and range, and what the service accepts."""

    field: str = Field(..., description="the TaskConfig key (POST /task/create config)")
    step_param: str | None = Field(None, description="the step param that overrides it for one run")
    default: Number = Field(..., description="the web UI's default (for this machine, for batch sizes)")
    task_default: Number = Field(..., description="what a task gets when the field is left out")
    minimum: Number = Field(..., description="the smallest value the service accepts")
    maximum: Number = Field(..., description="the largest value the service accepts")
    exclusive_minimum: bool = Field(False, description="minimum itself is not accepted")
    webui_minimum: Number = Field(..., description="the web UI slider's range: what upstream offers")
    webui_maximum: Number
    step: Number = 1


class ChoiceOption(BaseModel):
    field: str
    default: int
    choices: list[int]


class SovitsOptions(BaseModel):
    batch_size: NumberOption
    epochs: NumberOption
    save_every_epoch: NumberOption
    text_low_lr_rate: NumberOption | None = Field(None, description="v1..v2ProPlus (not v3/v4)")
    lora_rank: ChoiceOption | None = Field(None, description="v3/v4 only (LoRA training)")


class GptOptions(BaseModel):
    batch_size: NumberOption
    epochs: NumberOption
    save_every_epoch: NumberOption


class VersionOptions(BaseModel):
    version: str
    default: bool = Field(..., description="the task default (TaskConfig.model_version)")
    pretrained_installed: bool | None = Field(None, description="every pretrained model of the version "
                                              "is in the engine; null without an engine")
    languages: list[str] = Field(..., description="language codes the version's text front end knows")
    sovits: SovitsOptions
    gpt: GptOptions


class GpuInfo(BaseModel):
    id: str
    name: str
    memory_gib: float = Field(..., description="total memory + 0.4 GiB, as upstream's config.py counts it")


class DeviceOptions(BaseModel):
    device: Literal["cuda", "cpu"]
    gpus: list[GpuInfo]
    batch_size_basis: str = Field(..., description="how the default batch sizes were computed")


class LanguageOption(BaseModel):
    code: str
    name: str
    versions: list[str]
    asr: list[str] = Field(..., description="engine ASR models that transcribe it (method/name)")


class AsrModelOption(BaseModel):
    name: str = Field(..., description="the backend (funasr) or model_size (faster_whisper) param")
    param: Literal["backend", "model_size"]
    default: bool
    languages: list[str]
    installed: bool = Field(..., description="found on this machine; else downloaded at first use")
    path: str | None = Field(None, description="where it was found")
    location: str = Field(..., description="where the engine keeps it")


class MethodOption(BaseModel):
    method: str
    default: bool
    needs_engine: bool
    available: bool = Field(..., description="usable on this service now")
    why_not: str | None = None
    description: str
    models: list[AsrModelOption] = Field(default_factory=list)


class EngineBrief(BaseModel):
    configured: bool
    root: str | None = None
    install_command: str = INSTALL_COMMAND


class Options(BaseModel):
    engine: EngineBrief
    device: DeviceOptions
    default_version: str
    versions: list[VersionOptions]
    languages: list[LanguageOption]
    asr_methods: list[MethodOption] = Field(..., description="asr_transcribe's method param")
    denoise_methods: list[MethodOption] = Field(..., description="denoise_audio's method param")
    pretrained_models: list[str] = Field(default_factory=list, description="names the model params "
                                         "(pretrained_s2G, pretrained_s2D, pretrained_s1) accept: "
                                         "files in the pretrained folder")


# ---------- training settings ----------

def _bounds(field: str) -> dict[str, Any]:
    """What TaskConfig accepts for a field (its JSON Schema bounds)."""
    prop = TaskConfig.model_json_schema()["properties"][field]
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    return {"minimum": low, "maximum": prop["maximum"], "exclusive_minimum": "exclusiveMinimum" in prop,
            "task_default": prop["default"]}


def _number(field: str, step_param: str, ui: WebUIRange) -> NumberOption:
    return NumberOption(field=field, step_param=step_param, default=ui.default, webui_minimum=ui.minimum,
                        webui_maximum=ui.maximum, step=ui.step, **_bounds(field))


def version_options(version: str, gpu_gib: list[float], ram_gib: float, engine: Engine | None,
                    engine_status: dict[str, Any] | None) -> VersionOptions:
    ui = webui_ranges(version)
    s2, s2_max, s1 = webui_batch_sizes(version, gpu_gib, ram_gib)
    s2_batch = WebUIRange(default=s2, minimum=1, maximum=s2_max)
    s1_batch = WebUIRange(default=s1, minimum=1, maximum=GPT_BATCH_MAX)
    sovits = SovitsOptions(
        batch_size=_number("batch_size", "train_sovits.batch_size", s2_batch),
        epochs=_number("epochs_s2", "train_sovits.epochs", ui["epochs_s2"]),
        save_every_epoch=_number("save_every_epoch_s2", "train_sovits.save_every_epoch", ui["save_every_epoch_s2"]),
        text_low_lr_rate=(_number("text_low_lr_rate", "train_sovits.text_low_lr_rate", ui["text_low_lr_rate"])
                          if "text_low_lr_rate" in ui else None),
        lora_rank=(ChoiceOption(field="lora_rank", default=LORA_RANK_DEFAULT, choices=list(LORA_RANKS))
                   if version in V3V4 else None))
    gpt = GptOptions(
        batch_size=_number("batch_size", "train_gpt.batch_size", s1_batch),
        epochs=_number("epochs_s1", "train_gpt.epochs", ui["epochs_s1"]),
        save_every_epoch=_number("save_every_epoch_s1", "train_gpt.save_every_epoch", ui["save_every_epoch_s1"]))
    installed = engine_status["versions"][version]["supported"] if engine_status else None
    return VersionOptions(version=version, default=version == TaskConfig().model_version,
                          pretrained_installed=installed, languages=list(languages_of(version)),
                          sovits=sovits, gpt=gpt)


def device_options(settings: Settings) -> tuple[DeviceOptions, list[float], float]:
    """The GPUs the web UI would train on (>= 4 GiB) and the basis of the batch-size defaults."""
    ram = psutil.virtual_memory().total / GIB
    known = gpu_memory(settings)
    gpus = [GpuInfo(id=i, name=name, memory_gib=round(mib / 1024 + 0.4, 1)) for i, (name, mib) in known.items()]
    usable = [g.memory_gib for g in gpus if g.memory_gib >= MIN_GPU_GIB]
    ids = visible_gpus(settings)
    if usable:
        basis = (f"the smallest GPU's memory, {min(usable):.1f} GiB, // 2 (SoVITS // 8 for v3/v4), as the "
                 "web UI computes it")
    elif ids:
        basis = (f"GPUs {', '.join(ids)} are configured, but nvidia-smi does not say their memory (or each "
                 f"has under {MIN_GPU_GIB:.0f} GiB): CPU rule, RAM {ram:.1f} GiB / 4")
    else:
        basis = (f"no GPU: the web UI's CPU rule, RAM {ram:.1f} GiB / 4; training on a CPU is very slow and "
                 "runs without half precision (the batch size is halved)")
    return (DeviceOptions(device="cuda" if ids else "cpu", gpus=gpus, batch_size_basis=basis),
            usable, ram)


# ---------- ASR and denoise ----------

def _asr_models(method: str, engine: Engine | None) -> list[AsrModelOption]:
    defaults = {"funasr": "fun-asr-nano", "faster_whisper": "large-v3"}
    out = []
    for m in asr_models.catalogue():
        if m.method != method:
            continue
        found = asr_models.find(m, engine)
        out.append(AsrModelOption(name=m.name, param="backend" if method == "funasr" else "model_size",
                                  default=m.name == defaults[method], languages=list(m.languages),
                                  installed=found is not None, path=str(found) if found else None,
                                  location=asr_models.where(m)))
    return out


def asr_methods(engine: Engine | None) -> list[MethodOption]:
    scripts = {"funasr": "asr_funasr", "faster_whisper": "asr_whisper"}
    out = [
        MethodOption(method="auto", default=True, needs_engine=False, available=True,
                     description="provided when transcripts were uploaded, else funasr (needs the engine)"),
        MethodOption(method="provided", default=False, needs_engine=False, available=True,
                     description="transcripts you upload: a .list, or one .txt per slice named after it"),
    ]
    for method in ENGINE_ASR:
        why = None
        if engine is None:
            why = f"needs the GPT-SoVITS engine; install it with {INSTALL_COMMAND}"
        elif not engine.script(scripts[method]).is_file():
            why = f"the engine has no {engine.script(scripts[method])}"
        desc = {"funasr": "FunASR in the engine: Fun-ASR-Nano (default), SenseVoice, or Paraformer (zh, yue)",
                "faster_whisper": "Faster-Whisper in the engine (zh and yue are handed to FunASR)"}[method]
        out.append(MethodOption(method=method, default=False, needs_engine=True, available=why is None,
                                why_not=why, description=desc, models=_asr_models(method, engine)))
    return out


def denoise_methods(engine: Engine | None) -> list[MethodOption]:
    why = frcrn_missing(engine)
    return [
        MethodOption(method="auto", default=True, needs_engine=False, available=True,
                     description=f"frcrn when the engine and its model are here, else spectral (now: "
                                 f"{'spectral' if why else 'frcrn'})"),
        MethodOption(method="spectral", default=False, needs_engine=False, available=True,
                     description="spectral gating, built in (noisereduce)"),
        MethodOption(method="frcrn", default=False, needs_engine=True, available=why is None, why_not=why,
                     description="the engine's FRCRN model (writes 16 kHz audio)"),
        MethodOption(method="none", default=False, needs_engine=False, available=True,
                     description="copy the slices through"),
    ]


def languages(versions: list[str]) -> list[LanguageOption]:
    models = asr_models.catalogue()
    return [LanguageOption(code=code, name=LANGUAGE_NAMES[code],
                           versions=[v for v in versions if code in languages_of(v)],
                           asr=[f"{m.method}/{m.name}" for m in models if engine_language(code) in m.languages])
            for code in LANGUAGES]


def options(settings: Settings, engine: Engine | None) -> Options:
    device, gpu_gib, ram = device_options(settings)
    status = engine.status() if engine else None
    return Options(
        engine=EngineBrief(configured=engine is not None, root=str(engine.root) if engine else None),
        device=device, default_version=TaskConfig().model_version,
        versions=[version_options(v, gpu_gib, ram, engine, status) for v in VERSIONS],
        languages=languages(list(VERSIONS)), asr_methods=asr_methods(engine),
        denoise_methods=denoise_methods(engine),
        pretrained_models=model_names.available(model_names.pretrained_root(settings, engine)))
