"""Steps 1-4: audio preparation (built in; the engine is optional for denoise and ASR)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gsv_service.runner import RunContext, StepFailed
from gsv_service.steps.base import StepParams, StepSpec
from gsv_service.task_config import Language


class ConvertParams(StepParams):
    workers: int | None = Field(None, ge=1, le=64, description="parallel ffmpeg processes; default: cores")


class SliceParams(StepParams):
    """Same meaning and defaults as GPT-SoVITS's web UI slicer."""

    threshold: float = Field(-34.0, ge=-100, le=0, description="dB; quieter frames count as silence")
    min_length: int = Field(4000, ge=100, le=600_000, description="ms; minimum length of a slice")
    min_interval: int = Field(300, ge=10, le=60_000, description="ms; minimum silence to cut at")
    hop_size: int = Field(10, ge=1, le=1000, description="ms; volume curve resolution")
    max_sil_kept: int = Field(500, ge=0, le=60_000, description="ms; silence kept around a slice")
    max: float = Field(0.9, gt=0, le=1.0, alias="_max", description="peak level after normalising")
    alpha: float = Field(0.25, ge=0, le=1.0, description="mix of normalised and original audio")

    model_config = {"populate_by_name": True, "extra": "forbid"}


class DenoiseParams(StepParams):
    method: Literal["auto", "spectral", "frcrn", "none"] = Field(
        "auto", description="auto = frcrn when the engine and its model are present, else spectral")
    precision: Literal["float16", "float32"] = Field("float16", description="frcrn precision")


class AsrParams(StepParams):
    method: Literal["auto", "provided", "funasr", "faster_whisper"] = Field(
        "auto", description="auto = provided when transcripts were uploaded, else funasr")
    language: Language | None = Field(None, description="default: the task's language")
    backend: Literal["fun-asr-nano", "sensevoice", "paraformer"] = Field(
        "fun-asr-nano", description="funasr backend")
    model_size: str = Field("large-v3", max_length=40, description="faster_whisper model size")
    precision: Literal["float16", "float32", "int8"] = Field("float16", description="ASR precision")


def _not_ready(ctx: RunContext, params: StepParams) -> dict:
    raise StepFailed(f"step {ctx.step} is not implemented in this build")


CONVERT = StepSpec(
    name="convert_audio", title="Convert audio",
    description="Every upload becomes 32 kHz mono 16-bit WAV (ffmpeg); bad files are reported by name.",
    params=ConvertParams, inputs=("input_audio",), outputs=("converted_wav",), execute=_not_ready,
    weight=2)
SLICE = StepSpec(
    name="slice_audio", title="Slice audio",
    description="Cut recordings at silences into utterances, with the web UI slicer's parameters.",
    params=SliceParams, inputs=("converted_wav",), outputs=("sliced",), execute=_not_ready, weight=2)
DENOISE = StepSpec(
    name="denoise_audio", title="Denoise audio",
    description="Spectral denoise (built in) or the engine's FRCRN model; 'none' copies through.",
    params=DenoiseParams, inputs=("sliced",), outputs=("denoised",), execute=_not_ready, weight=3)
ASR = StepSpec(
    name="asr_transcribe", title="Transcribe",
    description="Write the .list transcript (wav_path|speaker|LANG|text) from uploaded transcripts "
                "or the engine's ASR.",
    params=AsrParams, inputs=("sliced",), optional_inputs=("denoised",), outputs=("transcript",),
    execute=_not_ready, weight=5)
