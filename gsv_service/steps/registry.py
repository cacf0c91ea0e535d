"""The ordered registry of the 11 steps. Adding a step = one module + one line here."""

from __future__ import annotations

from gsv_service.steps import features, inference, prep, training
from gsv_service.steps.base import AnyStep

STEPS: tuple[AnyStep, ...] = (
    prep.CONVERT, prep.SLICE, prep.DENOISE, prep.ASR,
    features.TEXT, features.AUDIO, features.SPEAKER, features.SEMANTIC,
    training.SOVITS, training.GPT,
    inference.INFERENCE,
)
BY_NAME: dict[str, AnyStep] = {s.name: s for s in STEPS}
STEP_NAMES: tuple[str, ...] = tuple(s.name for s in STEPS)
WEIGHTS: dict[str, float] = {s.name: s.weight for s in STEPS}


def consumers_of(step: str) -> list[str]:
    """Every later step that reads, directly or through others, what `step` writes."""
    produced = set(BY_NAME[step].outputs)
    out: list[str] = []
    for spec in STEPS[STEP_NAMES.index(step) + 1:]:
        if set(spec.all_inputs) & produced:
            out.append(spec.name)
            produced |= set(spec.outputs)
    return out
