"""Step 11: synthesise a test sentence with the trained weights."""

from __future__ import annotations

from pydantic import Field

from gsv_service.runner import RunContext, StepFailed
from gsv_service.steps.base import StepParams, StepSpec
from gsv_service.task_config import Language


class InferenceParams(StepParams):
    target_text: str = Field("这是一个测试文本，验证训练效果。", min_length=1, max_length=2000,
                             description="text to synthesise")
    target_language: Language | None = Field(None, description="default: the task's language")
    ref_audio: str | None = Field(None, max_length=255, description="slice name; default: the first "
                                  "slice with a transcript")
    ref_text: str | None = Field(None, max_length=2000, description="default: that slice's transcript")
    ref_language: Language | None = Field(None, description="default: the task's language")
    gpt_model: str | None = Field(None, max_length=255, description="GPT weight file name in weights/gpt "
                                  "(default: latest)")
    sovits_model: str | None = Field(None, max_length=255, description="SoVITS weight file name in "
                                     "weights/sovits (default: latest)")
    output_name: str = Field("output", pattern=r"^[A-Za-z0-9_\-]{1,64}$",
                             description="written as output/{output_name}.wav")


def _not_ready(ctx: RunContext, params: StepParams) -> dict:
    raise StepFailed(f"step {ctx.step} is not implemented in this build")


INFERENCE = StepSpec(
    name="test_inference", title="Test inference",
    description="Synthesise target_text with the trained weights into output/{output_name}.wav.",
    params=InferenceParams, inputs=("sovits_weights", "gpt_weights", "transcript"),
    outputs=("inference_audio",), execute=_not_ready, needs_engine=True, needs_gpu=True, weight=2)
