"""GPT-SoVITS training service: an HTTP orchestrator for the GPT-SoVITS training pipeline."""

__version__ = "0.1.0"
