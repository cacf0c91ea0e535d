"""Which torch build the engine gets: a CUDA wheel that the machine's driver can run when
nvidia-smi sees a GPU, the CPU wheel otherwise; and why, in words printed to the user."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

TORCH = "2.9.1"            # torchaudio 2.9 reads audio through torchcodec 0.8; upstream works with it
TORCHAUDIO = "2.9.1"
TORCHCODEC = "0.8.*"
PYTORCH_INDEX = "https://download.pytorch.org/whl/{variant}"
# CUDA builds of torch 2.9.1, newest first, with the lowest driver CUDA version each runs on
# (upstream's install.sh offers cu126 and cu128).
CUDA_VARIANTS = (("cu128", (12, 8)), ("cu126", (12, 6)))


@dataclass(frozen=True)
class TorchChoice:
    variant: str            # "cu128", "cu126", "cpu", or "pypi" (PyPI's default build)
    index_url: str | None   # None: PyPI
    reason: str
    gpus: tuple[str, ...] = ()

    @property
    def requirements(self) -> list[str]:
        return [f"torch=={TORCH}", f"torchaudio=={TORCHAUDIO}", f"torchcodec=={TORCHCODEC}"]


def read_nvidia_smi() -> str | None:
    """nvidia-smi's report (header with the driver's CUDA version, then the GPU list), or None."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        head = subprocess.run([exe], capture_output=True, text=True, timeout=20, check=False)
        names = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout + "\n@@gpus\n" + names.stdout


def choose_torch(smi: str | None, index: str | None = None) -> TorchChoice:
    """Pick the build from nvidia-smi's output (None: no nvidia-smi or it failed). `index`
    overrides: "pypi" for PyPI's default build, or any index URL."""
    gpus: tuple[str, ...] = ()
    cuda: tuple[int, int] | None = None
    if smi:
        m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", smi)
        cuda = (int(m[1]), int(m[2])) if m else None
        listing = smi.split("@@gpus", 1)[1] if "@@gpus" in smi else ""
        gpus = tuple(line.strip() for line in listing.splitlines() if line.strip())
    if index:
        variant = "pypi" if index == "pypi" else "custom"
        return TorchChoice(variant, None if index == "pypi" else index,
                           f"--torch-index {index} given", gpus)
    if not smi:
        return TorchChoice("cpu", PYTORCH_INDEX.format(variant="cpu"),
                           "no NVIDIA GPU seen (nvidia-smi absent or failing): the CPU build")
    if cuda is None:
        return TorchChoice("cpu", PYTORCH_INDEX.format(variant="cpu"),
                           "nvidia-smi shows no driver CUDA version: the CPU build", gpus)
    for variant, lowest in CUDA_VARIANTS:
        if cuda >= lowest:
            return TorchChoice(variant, PYTORCH_INDEX.format(variant=variant),
                               f"{len(gpus) or 'a'} GPU(s) with a driver for CUDA {cuda[0]}.{cuda[1]}: "
                               f"the {variant} build (needs CUDA >= {lowest[0]}.{lowest[1]})", gpus)
    oldest = CUDA_VARIANTS[-1][1]
    return TorchChoice("cpu", PYTORCH_INDEX.format(variant="cpu"),
                       f"the driver supports CUDA {cuda[0]}.{cuda[1]} only; torch {TORCH} needs "
                       f">= {oldest[0]}.{oldest[1]}: the CPU build (update the NVIDIA driver and run "
                       "the installer again for GPU training)", gpus)
