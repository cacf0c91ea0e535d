"""What a step is: its declaration (StepSpec) and the artifacts steps pass to each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gsv_service.runner import RunContext
from gsv_service.task_config import TaskConfig
from gsv_service.workspace import Workspace


PRO_VERSIONS = ("v2Pro", "v2ProPlus")


class StepParams(BaseModel):
    """Base of every step's params model: unknown fields are an error (typos are caught)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Artifact:
    """A set of files one step writes and later steps read."""

    key: str
    description: str
    rel: Callable[[Workspace], Path]       # where it lives
    produced_by: str | None                # step name; None = uploaded by the user
    pattern: str = "*"                     # a folder counts as present when it holds a match

    def path(self, ws: Workspace) -> Path:
        return self.rel(ws)

    def present(self, ws: Workspace) -> bool:
        p = self.path(ws)
        if p.is_dir():
            return any(p.glob(self.pattern))
        return p.is_file() and p.stat().st_size > 0


def _exp(name: str) -> Callable[[Workspace], Path]:
    return lambda ws: ws.exp_dir / name


def transcript_path(ws: Workspace) -> Path:
    return ws.root / "transcripts" / f"{ws.exp_name}.list"


ARTIFACTS: dict[str, Artifact] = {a.key: a for a in (
    Artifact("input_audio", "uploaded recordings", lambda ws: ws.root / "input_audio", None),
    Artifact("converted_wav", "32 kHz mono WAV files", lambda ws: ws.root / "converted_wav",
             "convert_audio", "*.wav"),
    Artifact("sliced", "sliced utterances", lambda ws: ws.root / "sliced", "slice_audio", "*.wav"),
    Artifact("denoised", "denoised utterances", lambda ws: ws.root / "denoised", "denoise_audio", "*.wav"),
    Artifact("transcript", "the transcript list (.list)", transcript_path, "asr_transcribe"),
    Artifact("text_features", "text features (2-name2text.txt)", _exp("2-name2text.txt"),
             "extract_text_features"),
    Artifact("hubert_features", "HuBERT features and 32 kHz audio (4-cnhubert/, 5-wav32k/)",
             _exp("4-cnhubert"), "extract_audio_features", "*.pt"),
    Artifact("speaker_vectors", "speaker vectors (7-sv_cn/)", _exp("7-sv_cn"), "extract_speaker_vectors",
             "*.pt"),
    Artifact("semantic_features", "semantic tokens (6-name2semantic.tsv)", _exp("6-name2semantic.tsv"),
             "extract_semantic_features"),
    Artifact("sovits_weights", "trained SoVITS weights", lambda ws: ws.root / "weights" / "sovits",
             "train_sovits", "*.pth"),
    Artifact("gpt_weights", "trained GPT weights", lambda ws: ws.root / "weights" / "gpt", "train_gpt",
             "*.ckpt"),
    Artifact("inference_audio", "synthesised audio", lambda ws: ws.root / "output", "test_inference",
             "*.wav"),
)}


@dataclass(frozen=True)
class EngineUse:
    """Why a step's params need the engine, and what does the job without it."""

    reason: str        # "method 'funasr'"
    alternative: str   # "use method 'spectral' (built in)"


@dataclass(frozen=True)
class StepSpec:
    """Everything the service needs to know about one step."""

    name: str
    title: str
    description: str
    params: type[StepParams]
    inputs: tuple[str, ...]                 # artifacts that must be present
    outputs: tuple[str, ...]
    execute: Callable[[RunContext, StepParams], dict]
    optional_inputs: tuple[str, ...] = ()   # read when present (e.g. denoised over sliced)
    needs_engine: bool = False
    # For a step that needs the engine only with some params (ASR methods, FRCRN): why these params
    # need it, or None. Checked at submit (424 without an engine).
    engine_use: Callable[[StepParams, Workspace], EngineUse | None] | None = None
    needs_gpu: bool = False
    # What an engine step reads besides its inputs, checked before it starts (gsv_service/preflight.py):
    # pretrained items by the model plan's roles (bert, cnhubert, sv, s2G, s2D, s1, g2pw, nltk,
    # langdetect; each only where the task's version and language need it), "ffmpeg", "disk".
    engine_needs: tuple[str, ...] = ()
    weight: float = 1.0                     # share of the task's overall progress
    pro_inputs: tuple[str, ...] = ()        # required for v2Pro/v2ProPlus only (speaker vectors)

    def required_inputs(self, cfg: TaskConfig) -> tuple[str, ...]:
        return self.inputs + (self.pro_inputs if cfg.model_version in PRO_VERSIONS else ())

    @property
    def all_inputs(self) -> tuple[str, ...]:
        return self.inputs + self.optional_inputs + self.pro_inputs

    def describe(self) -> dict:
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "needs_engine": self.needs_engine, "needs_gpu": self.needs_gpu,
            "engine_needs": list(self.engine_needs),
            "inputs": [_artifact_doc(k) for k in self.inputs],
            "optional_inputs": [_artifact_doc(k) for k in self.optional_inputs],
            "inputs_v2pro_only": [_artifact_doc(k) for k in self.pro_inputs],
            "outputs": [_artifact_doc(k) for k in self.outputs],
            "params_schema": self.params.model_json_schema(),
        }


def _artifact_doc(key: str) -> dict:
    a = ARTIFACTS[key]
    return {"name": key, "description": a.description, "produced_by": a.produced_by}


def audio_source(ctx: RunContext) -> Path:
    """Utterances for ASR and features: denoised when denoise_audio is completed (not stale),
    else the slices."""
    ws = ctx.workspace
    den = ARTIFACTS["denoised"]
    if ctx.step_status.get("denoise_audio") == "completed" and den.present(ws):
        return den.path(ws)
    return ARTIFACTS["sliced"].path(ws)
