"""The engine's ASR models: which the ASR step can use, for which languages, and whether each is
on this machine already (GET /api/v1/options). A model that is not here is downloaded by the engine
at first use, which needs internet access from the engine's machine.

Where upstream's tools/asr (RVC-Boss/GPT-SoVITS @ 48b1a0169a28) looks for them:
- funasr, backend paraformer: folders under the checkout's tools/asr/models (zh: VAD, punctuation
  and Paraformer; yue: UniASR);
- funasr, backends fun-asr-nano and sensevoice: hub ids that funasr's AutoModel fetches into the
  Hugging Face or ModelScope cache;
- faster_whisper: tools/asr/models/faster-whisper-{size} (both of its download sources put it there).
Languages are upstream's tools/asr/config.py asr_dict (the engine's language codes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from gsv_service.engine import Engine
from gsv_service.steps.prep import AsrParams

LOCAL = "tools/asr/models"
FUNASR_LANGS = ("zh", "en", "ja", "ko", "yue", "auto")
WHISPER_LANGS = ("auto", "en", "ja", "ko")


@dataclass(frozen=True)
class AsrModel:
    """One choice of an ASR method: a funasr backend or a faster_whisper model size."""

    method: str
    name: str
    languages: tuple[str, ...]
    local: tuple[str, ...] = ()      # folders under the checkout, all needed
    hub: tuple[str, ...] = ()        # hub ids, any one of them will do
    note: str = ""


def _whisper_dir(size: str) -> str:
    return f"{LOCAL}/faster-whisper-{'large-v3' if size == 'large' else size}"


def catalogue() -> list[AsrModel]:
    """Every backend and model size the ASR step accepts (its params model is the source)."""
    backends = get_args(AsrParams.model_fields["backend"].annotation)
    sizes = get_args(AsrParams.model_fields["model_size"].annotation)
    known = {
        "fun-asr-nano": AsrModel("funasr", "fun-asr-nano", FUNASR_LANGS, hub=("FunAudioLLM/Fun-ASR-Nano-2512",)),
        "sensevoice": AsrModel("funasr", "sensevoice", FUNASR_LANGS, hub=("iic/SenseVoiceSmall",)),
        "paraformer": AsrModel("funasr", "paraformer", ("zh", "yue"), local=(
            f"{LOCAL}/speech_fsmn_vad_zh-cn-16k-common-pytorch",
            f"{LOCAL}/punc_ct-transformer_zh-cn-common-vocab272727-pytorch",
            f"{LOCAL}/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch"),
            note="checked for zh; yue uses speech_UniASR_asr_2pass-cantonese-CHS-16k-common-vocab1468-"
                 "tensorflow1-online beside it"),
    }
    out = [known.get(b, AsrModel("funasr", b, FUNASR_LANGS)) for b in backends]
    return out + [AsrModel("faster_whisper", s, WHISPER_LANGS, local=(_whisper_dir(s),)) for s in sizes]


def _modelscope_dirs(model_id: str) -> list[Path]:
    base = Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope" / "hub")
    return [b / sub for b in (base, base / "hub") for sub in (f"models/{model_id}", model_id)]


def _hf_dirs(model_id: str) -> list[Path]:
    hub = os.environ.get("HF_HUB_CACHE") or (Path(os.environ["HF_HOME"]) / "hub" if os.environ.get("HF_HOME")
                                             else Path.home() / ".cache" / "huggingface" / "hub")
    snapshots = Path(hub) / f"models--{model_id.replace('/', '--')}" / "snapshots"
    return sorted(snapshots.iterdir()) if snapshots.is_dir() else []


def _filled(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() and p.stat().st_size > 0 for p in folder.rglob("*"))


def find(model: AsrModel, engine: Engine | None) -> Path | None:
    """Where the model is on this machine, or None."""
    if model.local:
        if engine is None:
            return None
        dirs = [engine.root / rel for rel in model.local]
        return dirs[-1] if all(_filled(d) for d in dirs) else None
    for model_id in model.hub:
        for folder in _modelscope_dirs(model_id) + _hf_dirs(model_id):
            if _filled(folder):
                return folder
    return None


def where(model: AsrModel) -> str:
    """Where the engine puts the model, for people."""
    if model.local:
        return f"the checkout's {model.local[-1]}" + (f" ({model.note})" if model.note else "")
    return f"the Hugging Face or ModelScope cache ({', '.join(model.hub)})"
