"""Adapter for the GPT-SoVITS checkout: where its scripts and pretrained models are, and the
environment its scripts expect. Nothing here imports the engine: it runs in its own interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from gsv_service.settings import Settings

VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")
PINNED_FULL = "48b1a0169a28582a8984402f82cf438d3bfa6aca"  # RVC-Boss/GPT-SoVITS, the tested commit
PINNED_COMMIT = PINNED_FULL[:12]

# What upstream's web UI adds to sys.path through users.pth (we pass it as PYTHONPATH instead).
SYS_PATH_DIRS = ("", "GPT_SoVITS/BigVGAN", "tools", "tools/asr", "GPT_SoVITS", "tools/uvr5")

SCRIPTS = {
    "text": "GPT_SoVITS/prepare_datasets/1-get-text.py",
    "hubert": "GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py",
    "sv": "GPT_SoVITS/prepare_datasets/2-get-sv.py",
    "semantic": "GPT_SoVITS/prepare_datasets/3-get-semantic.py",
    "s2_train": "GPT_SoVITS/s2_train.py",
    "s1_train": "GPT_SoVITS/s1_train.py",
    "inference": "GPT_SoVITS/inference_cli.py",
    "denoise": "tools/cmd-denoise.py",
    "asr_funasr": "tools/asr/funasr_asr.py",
    "asr_whisper": "tools/asr/fasterwhisper_asr.py",
}

S2_TEMPLATES = {"v1": "s2.json", "v2": "s2.json", "v2Pro": "s2v2Pro.json", "v2ProPlus": "s2v2ProPlus.json"}
S1_TEMPLATES = {"v1": "s1longer.yaml", "v2": "s1longer-v2.yaml", "v2Pro": "s1longer-v2.yaml",
                "v2ProPlus": "s1longer-v2.yaml"}

# Relative to GPT_SoVITS/pretrained_models, as upstream's config.py expects them.
PRETRAINED: dict[str, Any] = {  # a name -> its path, or a version -> {name: path}
    "bert": "chinese-roberta-wwm-ext-large",
    "cnhubert": "chinese-hubert-base",
    "sv": "sv/pretrained_eres2netv2w24s4ep4.ckpt",
    "v1": {"s2G": "s2G488k.pth", "s2D": "s2D488k.pth",
           "s1": "s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt"},
    "v2": {"s2G": "gsv-v2final-pretrained/s2G2333k.pth", "s2D": "gsv-v2final-pretrained/s2D2333k.pth",
           "s1": "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"},
    "v2Pro": {"s2G": "v2Pro/s2Gv2Pro.pth", "s2D": "v2Pro/s2Dv2Pro.pth", "s1": "s1v3.ckpt"},
    "v2ProPlus": {"s2G": "v2Pro/s2Gv2ProPlus.pth", "s2D": "v2Pro/s2Dv2ProPlus.pth", "s1": "s1v3.ckpt"},
}


# Installs the engine next to the service (checkout, its environment, pretrained models).
INSTALL_COMMAND = "./start_service.sh --engine-only"


class EngineUnavailable(Exception):
    """No usable GPT-SoVITS checkout; the message says how to configure one."""


@dataclass
class Engine:
    root: Path
    python: str
    settings: Settings
    pretrained_root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pretrained_root = (self.settings.pretrained_dir
                                or self.root / "GPT_SoVITS" / "pretrained_models").resolve()

    def script(self, key: str) -> Path:
        return self.root / SCRIPTS[key]

    def pretrained(self, key: str, version: str | None = None) -> Path:
        """Path of a pretrained model, honouring the service-wide overrides."""
        overrides = {"bert": self.settings.bert_dir, "cnhubert": self.settings.cnhubert_dir,
                     "sv": self.settings.sv_path}
        override = overrides.get(key)
        if override:
            return Path(override).resolve()
        rel: str = PRETRAINED[version][key] if version else PRETRAINED[key]
        return self.pretrained_root / rel

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for an engine process: ours, plus upstream's sys.path and unbuffered output."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GSV_")}
        paths = [str(self.root / d) if d else str(self.root) for d in SYS_PATH_DIRS]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        env.update(extra or {})
        return env

    def argv(self, key: str, *args: str) -> list[str]:
        return [self.python, "-s", str(self.script(key)), *args]

    def s2_template(self, version: str) -> Path:
        return self.root / "GPT_SoVITS" / "configs" / S2_TEMPLATES[version]

    def s1_template(self, version: str) -> Path:
        return self.root / "GPT_SoVITS" / "configs" / S1_TEMPLATES[version]

    def feature_env(self, stage: str, version: str, common: dict[str, str],
                    pretrained_s2G: Path | None = None) -> dict[str, str]:
        """Env of one prepare_datasets shard: the web UI's variables for that script."""
        extra = {**common, "version": version}
        if stage == "text":
            extra["bert_pretrained_dir"] = str(self.pretrained("bert"))
            # Chinese G2P (text/chinese2.py) loads G2PW's tokenizer from env bert_path, which the
            # web UI never sets (it relies on the default path): pass the same BERT.
            extra["bert_path"] = extra["bert_pretrained_dir"]
        elif stage in ("hubert", "sv"):
            extra["cnhubert_base_dir"] = str(self.pretrained("cnhubert"))
            extra["sv_path"] = str(self.pretrained("sv"))
        elif stage == "semantic":
            extra["pretrained_s2G"] = str(pretrained_s2G or self.pretrained("s2G", version))
            extra["s2config_path"] = str(self.s2_template(version))
        return self.env(extra)

    def required_models(self, stage: str, version: str) -> dict[str, Path]:
        """Pretrained files a stage reads, by the setting that overrides each."""
        need = {"text": {"GSV_BERT_DIR": self.pretrained("bert")},
                "hubert": {"GSV_CNHUBERT_DIR": self.pretrained("cnhubert")},
                "sv": {"GSV_SV_PATH": self.pretrained("sv")},
                "semantic": {"pretrained_s2G": self.pretrained("s2G", version)},
                "s2": {"pretrained_s2G": self.pretrained("s2G", version),
                       "pretrained_s2D": self.pretrained("s2D", version)},
                "s1": {"pretrained_s1": self.pretrained("s1", version)},
                "infer": {"GSV_BERT_DIR": self.pretrained("bert"),
                          "GSV_CNHUBERT_DIR": self.pretrained("cnhubert")}}
        out = dict(need[stage])
        if stage == "infer" and version in ("v2Pro", "v2ProPlus"):
            out["GSV_SV_PATH"] = self.pretrained("sv")
        return out

    def status(self) -> dict[str, Any]:
        missing = [k for k in SCRIPTS if not self.script(k).is_file()]
        models = {k: self.pretrained(k).exists() for k in ("bert", "cnhubert", "sv")}
        versions: dict[str, dict[str, Any]] = {}
        for v in VERSIONS:
            have = {k: self.pretrained(k, v).exists() for k in ("s2G", "s2D", "s1")}
            need_sv = v.startswith("v2Pro")
            ok = all(have.values()) and models["bert"] and models["cnhubert"] and (models["sv"] or not need_sv)
            versions[v] = {"supported": ok, "pretrained": have}
        return {"found": True, "root": str(self.root), "python": self.python,
                "scripts_missing": missing, "pretrained_models": models, "versions": versions}


def _default_python(root: Path) -> str:
    for cand in (root / "runtime" / "python", root / ".venv" / "bin" / "python"):
        if cand.exists():
            return str(cand)
    return sys.executable


def load_engine(settings: Settings) -> Engine | None:
    root = settings.engine_root
    if root is None or not (Path(root) / "GPT_SoVITS").is_dir():
        return None
    root = Path(root).resolve()
    python = settings.engine_python or _default_python(root)
    if os.sep in python:  # engine processes run with cwd = the checkout: a relative path would move
        python = os.path.abspath(os.path.expanduser(python))  # not resolve(): a venv's python is a link
    return Engine(root=root, python=python, settings=settings)


def require_engine(engine: Engine | None, step: str) -> Engine:
    if engine is None:
        raise EngineUnavailable(
            f"step '{step}' needs the GPT-SoVITS engine, and none is configured: install it with "
            f"{INSTALL_COMMAND}, or set GSV_ROOT to a GPT-SoVITS checkout (RVC-Boss/GPT-SoVITS @ "
            f"{PINNED_COMMIT}) with its pretrained models and GSV_PYTHON to the interpreter of its "
            "environment; then restart the service")
    return engine


@lru_cache(maxsize=1)
def _nvidia_gpus() -> tuple[str, ...]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ()
    try:
        out = subprocess.run([exe, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in out.splitlines() if line.strip().isdigit())


@lru_cache(maxsize=1)
def _nvidia_memory() -> tuple[tuple[str, str, float], ...]:
    """(index, name, total memory in MiB) of every GPU nvidia-smi lists; () without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ()
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(parse_gpu_memory(out))


def parse_gpu_memory(text: str) -> list[tuple[str, str, float]]:
    rows = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            try:
                rows.append((parts[0], ",".join(parts[1:-1]), float(parts[-1])))
            except ValueError:  # "[N/A]" and the like
                continue
    return rows


def gpu_memory(settings: Settings) -> dict[str, tuple[str, float]]:
    """The service's GPUs (visible_gpus) that nvidia-smi describes: id -> (name, total MiB)."""
    gpus = set(visible_gpus(settings))
    return {i: (name, mib) for i, name, mib in _nvidia_memory() if i in gpus}


def visible_gpus(settings: Settings) -> list[str]:
    """The GPU ids the service schedules on: GSV_GPUS if set, else what nvidia-smi lists."""
    if settings.gpus is not None:
        return [g.strip() for g in settings.gpus.replace("-", ",").split(",") if g.strip()]
    return list(_nvidia_gpus())


class DeviceError(ValueError):
    """The task asks for GPUs this service does not have."""


@dataclass(frozen=True)
class DevicePlan:
    """Where a step's engine processes run: one entry per task GPU id (None = a CPU process)."""

    devices: tuple[str | None, ...]
    is_half: bool

    @property
    def cuda(self) -> bool:
        return self.devices[0] is not None

    def visible(self, i: int) -> str:
        """_CUDA_VISIBLE_DEVICES of shard i: its GPU, or none at all on a CPU-only service."""
        return self.devices[i % len(self.devices)] or ""

    @property
    def gpu_numbers(self) -> str:
        """s2_train's train.gpu_numbers ("0-1"); "0" on CPU, where upstream ignores it."""
        return "-".join(d or "0" for d in self.devices) if self.cuda else "0"


def device_plan(settings: Settings, gpu_ids: list[str], is_half: bool | None) -> DevicePlan:
    """CUDA only when the service has GPUs; half precision defaults to on with CUDA and is
    always off on CPU (upstream does the same: is_half and torch.cuda.is_available())."""
    gpus = visible_gpus(settings)
    if not gpus:
        return DevicePlan(tuple(None for _ in gpu_ids), False)
    unknown = [g for g in gpu_ids if g not in gpus]
    if unknown:
        raise DeviceError(f"the task's gpu_id names GPU {', '.join(unknown)}, which this service "
                          f"does not have (its GPUs: {', '.join(gpus)}; GSV_GPUS); change the "
                          "task's gpu_id")
    return DevicePlan(tuple(gpu_ids), True if is_half is None else is_half)


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")
