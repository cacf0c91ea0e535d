"""Steps 5-8: GPT-SoVITS feature extraction (prepare_datasets/*.py), sharded over GPUs."""

from __future__ import annotations

from pydantic import Field

from gsv_service.runner import RunContext, StepFailed
from gsv_service.steps.base import StepParams, StepSpec


class FeatureParams(StepParams):
    is_half: bool | None = Field(None, description="half precision; default: the task's setting")
    parts_per_gpu: int = Field(1, ge=1, le=8, description="processes per GPU id of the task")


def _not_ready(ctx: RunContext, params: StepParams) -> dict:
    raise StepFailed(f"step {ctx.step} is not implemented in this build")


TEXT = StepSpec(
    name="extract_text_features", title="Text features",
    description="1-get-text.py: phonemes and BERT features for every transcript line.",
    params=FeatureParams, inputs=("transcript",), outputs=("text_features",), execute=_not_ready,
    needs_engine=True, needs_gpu=True, weight=5)
AUDIO = StepSpec(
    name="extract_audio_features", title="Audio features",
    description="2-get-hubert-wav32k.py: HuBERT features and 32 kHz audio per utterance.",
    params=FeatureParams, inputs=("transcript", "sliced"), optional_inputs=("denoised",),
    outputs=("hubert_features",), execute=_not_ready, needs_engine=True, needs_gpu=True, weight=5)
SPEAKER = StepSpec(
    name="extract_speaker_vectors", title="Speaker vectors",
    description="2-get-sv.py: speaker vectors (v2Pro and v2ProPlus; nothing to do for v1/v2).",
    params=FeatureParams, inputs=("hubert_features",), outputs=("speaker_vectors",), execute=_not_ready,
    needs_engine=True, needs_gpu=True, weight=3)
SEMANTIC = StepSpec(
    name="extract_semantic_features", title="Semantic tokens",
    description="3-get-semantic.py: semantic tokens from the HuBERT features.",
    params=FeatureParams, inputs=("hubert_features",), outputs=("semantic_features",), execute=_not_ready,
    needs_engine=True, needs_gpu=True, weight=5)
