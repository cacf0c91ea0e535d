"""The ordered registry of the 11 training steps (re-exported from gsv_service.steps.registry)."""

from gsv_service.steps.registry import BY_NAME, STEP_NAMES, STEPS, consumers_of

__all__ = ["STEPS", "STEP_NAMES", "BY_NAME", "consumers_of"]
