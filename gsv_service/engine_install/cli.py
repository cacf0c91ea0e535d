"""The engine installer's command line: source -> venv -> models -> .env -> doctor, each phase
timed and sized, each re-run verifying what is there and repairing only what is missing.

    python -m gsv_service.engine_install [--engine-source URL|DIR] [--versions v2ProPlus,v2] ...

It runs in the service's own venv and never changes it: the engine gets its own checkout and venv
(by default under ./engine/), and .env records where they are."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

from gsv_service.engine import PINNED_FULL
from gsv_service.engine_install import plan
from gsv_service.engine_install.engine_venv import STAMP
from gsv_service.engine_install.envfile import read_keys, update_env_file
from gsv_service.engine_install.source import DEFAULT_REMOTE, MARKER, Checkout, SourceError, get_checkout
from gsv_service.engine_install.torch_choice import choose_torch, read_nvidia_smi

REPO = Path(__file__).resolve().parents[2]
GB = 10 ** 9
# What a fresh engine venv takes on disk (measured: PyPI's CUDA build of torch 2.9.1 and upstream's
# requirements about 7.5 GB; the CPU build about 2.5 GB), checked before pip starts.
VENV_BYTES = {"cpu": 3 * GB}
VENV_BYTES_DEFAULT = 9 * GB


class InstallError(Exception):
    """A phase cannot finish; the message says what to do. Work already done is kept."""


@dataclass
class Phase:
    name: str
    action: str = "skipped"
    seconds: float = 0.0
    bytes_on_disk: int | None = None
    detail: str = ""


@dataclass
class InstallReport:
    checkout: str
    python: str | None
    commit: str | None
    phases: list[Phase] = field(default_factory=list)
    doctor: str | None = None
    ok: bool = False


def configured_engine(env_file: Path = REPO / ".env") -> tuple[Path | None, str | None]:
    """GSV_ROOT and GSV_PYTHON as the service will see them: the environment first, then .env."""
    keys = read_keys(env_file)
    root = os.environ.get("GSV_ROOT") or keys.get("GSV_ROOT") or None
    python = os.environ.get("GSV_PYTHON") or keys.get("GSV_PYTHON") or None
    return (Path(root).expanduser() if root else None), python


def _default_places(env_file: Path) -> tuple[Path, Path]:
    """Where a re-run looks: the engine the installer recorded in .env, else ./engine/."""
    root, python = configured_engine(env_file)
    engine_dir = root if root is not None and (root / MARKER).is_file() else REPO / "engine" / "GPT-SoVITS"
    venv = Path(python).parents[1] if python and (Path(python).parents[1] / STAMP).is_file() \
        else REPO / "engine" / "venv"
    return engine_dir, venv


def disk_usage(path: Path) -> int:
    """Bytes of the files under `path` (hard links counted once), without following symlinks."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _gb(n: int | None) -> str:
    return "-" if n is None else f"{n / GB:.2f} GB"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m gsv_service.engine_install",
        description="Install (or verify and repair) the GPT-SoVITS engine the service drives: upstream "
                    f"at {PINNED_FULL[:12]}, its own venv with torch, the pretrained models; then record "
                    "it in .env and run the doctor.")
    ap.add_argument("--engine-source", default=None, metavar="URL|DIR",
                    help=f"git remote, local mirror / bare git dir, or a checkout folder (default {DEFAULT_REMOTE})")
    ap.add_argument("--engine-commit", default=PINNED_FULL, metavar="SHA",
                    help=f"upstream commit to install (default the pinned {PINNED_FULL[:12]}, the one the "
                         "service is tested with; others are unsupported and the doctor warns)")
    ap.add_argument("--in-place", action="store_true",
                    help="use the --engine-source checkout folder where it is instead of copying it")
    ap.add_argument("--engine-dir", type=Path, default=None,
                    help="where the checkout goes (default: the one recorded in .env by an earlier install, "
                         "else ./engine/GPT-SoVITS)")
    ap.add_argument("--engine-venv", type=Path, default=None,
                    help="the engine's own virtual environment (default: as recorded, else ./engine/venv)")
    ap.add_argument("--engine-python", default=None,
                    help="interpreter that creates the engine venv (Python 3.10-3.12; default this one's base)")
    ap.add_argument("--torch-index", default=None, metavar="URL|pypi",
                    help="take torch from this index instead of the one chosen from nvidia-smi")
    ap.add_argument("--versions", default=",".join(plan.DEFAULT_VERSIONS),
                    help=f"model versions to get pretrained files for, comma separated "
                         f"({', '.join(plan.PLAN_VERSIONS)}; default {','.join(plan.DEFAULT_VERSIONS)})")
    ap.add_argument("--models-from", type=Path, default=None, metavar="DIR",
                    help="copy the pretrained files from this folder (laid out like pretrained_models/) "
                         "instead of downloading them")
    ap.add_argument("--hf-endpoint", default=os.environ.get("HF_ENDPOINT"), metavar="URL",
                    help="Hugging Face endpoint or mirror to download from (default $HF_ENDPOINT, else the hub)")
    ap.add_argument("--hf-mirror", default=None, metavar="NAME|URL",
                    help="download from a mirror of the hub instead: hf-mirror, or any URL")
    ap.add_argument("--skip-venv", action="store_true", help="do not build the engine venv "
                    "(GSV_PYTHON must then name a working engine interpreter, or --engine-python one)")
    ap.add_argument("--skip-models", action="store_true", help="do not download pretrained files")
    ap.add_argument("--skip-doctor", action="store_true", help="do not run the doctor at the end")
    ap.add_argument("--doctor-after-changes", action="store_true",
                    help="run the doctor only when this run installed or repaired something (what "
                         "./start_service.sh does on each start; the service logs the doctor's summary anyway)")
    ap.add_argument("--env-file", type=Path, default=REPO / ".env",
                    help="the service's .env to record GSV_ROOT/GSV_PYTHON in (default ./.env)")
    ap.add_argument("--no-env-file", action="store_true", help="do not write the .env")
    ap.add_argument("--report", type=Path, default=None,
                    help="also write the phase report as JSON here (default <engine-dir>/../install-report.json)")
    args = ap.parse_args(argv)
    try:
        args.version_list = plan.check_versions(args.versions.split(","))
    except plan.PlanError as e:
        ap.error(str(e))
    if args.models_from is not None and not args.models_from.is_dir():
        ap.error(f"--models-from {args.models_from}: no such folder")
    engine_dir, venv = _default_places(args.env_file)
    args.engine_dir = (args.engine_dir or engine_dir).expanduser().resolve()
    args.engine_venv = (args.engine_venv or venv).expanduser().resolve()
    return args


def _timed(report: InstallReport, name: str, fn: Callable[[Phase], None], size_of: Path | None) -> Phase:
    phase = Phase(name)
    print(f"== {name}")
    t0 = time.monotonic()
    try:
        fn(phase)
    finally:
        phase.seconds = round(time.monotonic() - t0, 1)
        if size_of is not None and size_of.exists():
            phase.bytes_on_disk = disk_usage(size_of)
        report.phases.append(phase)
    print(f"   {phase.action} in {phase.seconds:.1f} s{'; ' + _gb(phase.bytes_on_disk) if phase.bytes_on_disk else ''}"
          f"{'; ' + phase.detail if phase.detail else ''}")
    return phase


class _State(TypedDict, total=False):
    """What the phases hand on to the next ones."""

    checkout: Checkout
    python: str             # the engine's interpreter


def _source_phase(args: argparse.Namespace, state: _State) -> Callable[[Phase], None]:
    def run(phase: Phase) -> None:
        try:
            co: Checkout = get_checkout(args.engine_source, args.engine_dir, commit=args.engine_commit,
                                        in_place=args.in_place, python=sys.executable,
                                        log=lambda m: print(m, flush=True))
        except SourceError as e:
            raise InstallError(str(e)) from e
        state["checkout"] = co
        phase.action = co.how
        if co.how != "in place":  # before the models land in it
            phase.bytes_on_disk = disk_usage(co.root)
        phase.detail = f"{co.root} @ {(co.commit or 'unknown commit')[:12]}"
        if not co.at(args.engine_commit):
            raise InstallError(f"{co.root} is at {co.commit or 'an unknown commit'}, not "
                               f"{args.engine_commit[:12]}; check it out there (git -C {co.root} checkout "
                               f"{args.engine_commit[:12]}) or give another --engine-source")
        if co.missing:
            raise InstallError(f"files missing from the checkout, not repairable: {', '.join(co.missing)}; "
                               "give a complete clone as --engine-source")
        if co.repaired:
            phase.detail += f"; restored from the PyPI wheel: {', '.join(co.repaired)}"
    return run


def _venv_phase(args: argparse.Namespace, state: _State) -> Callable[[Phase], None]:
    from gsv_service.engine_install.engine_venv import VenvError, build_venv, venv_python

    def run(phase: Phase) -> None:
        co: Checkout = state["checkout"]
        choice = choose_torch(read_nvidia_smi(), args.torch_index)
        print(f"  torch: {choice.variant} build, because {choice.reason}", flush=True)
        if not venv_python(args.engine_venv).exists():
            need = VENV_BYTES.get(choice.variant, VENV_BYTES_DEFAULT)
            args.engine_venv.parent.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(args.engine_venv.parent).free
            if free < need:
                raise InstallError(f"the engine venv needs about {_gb(need)} and {args.engine_venv.parent} "
                                   f"has {_gb(free)} free; free some space or pass --engine-venv elsewhere")
        try:
            rep = build_venv(args.engine_venv, co.root, choice, base_python=args.engine_python,
                             log=lambda m: print(m, flush=True))
        except VenvError as e:
            raise InstallError(str(e)) from e
        state["python"] = str(rep.python)
        phase.action = rep.action
        phase.detail = rep.detail
    return run


def _models_phase(args: argparse.Namespace, state: _State) -> Callable[[Phase], None]:
    from gsv_service.engine_install.downloads import DownloadError, install_models

    def run(phase: Phase) -> None:
        co: Checkout = state["checkout"]
        items = plan.model_plan(args.version_list)
        print(f"  versions {', '.join(args.version_list)}: {len(items)} item(s), about "
              f"{_gb(plan.plan_size(items))} in all", flush=True)
        try:
            rep = install_models(items, co.root, args.engine_venv, models_from=args.models_from,
                                 endpoint=args.hf_endpoint, mirror=args.hf_mirror,
                                 log=lambda m: print(m, flush=True), progress=sys.stderr.isatty())
        except DownloadError as e:
            raise InstallError(str(e)) from e
        fetched = [r for r in rep.items.values() if r.how != "present"]
        phase.bytes_on_disk = sum(disk_usage(Path(r.path)) if Path(r.path).is_dir() else Path(r.path).stat().st_size
                                  for r in rep.items.values() if Path(r.path).exists())
        phase.action = "installed" if fetched else "present"
        phase.detail = f"{len(fetched)} of {len(items)} item(s) {'copied' if args.models_from else 'downloaded'}" \
            + (f", {rep.total_bytes / GB:.2f} GB" if fetched else "")
    return run


def _env_phase(args: argparse.Namespace, state: _State) -> Callable[[Phase], None]:
    def run(phase: Phase) -> None:
        values = {"GSV_ROOT": str(state["checkout"].root)}
        if state.get("python"):
            values["GSV_PYTHON"] = state["python"]
        changed = update_env_file(args.env_file, values)
        phase.action = "updated" if changed else "present"
        phase.detail = f"{args.env_file}: " + (", ".join(f"{k}={values[k]}" for k in changed) or "unchanged")
    return run


def _doctor_phase(args: argparse.Namespace, state: _State, report: InstallReport) -> Callable[[Phase], None]:
    def run(phase: Phase) -> None:
        from gsv_service.doctor import Doctor, print_report
        from gsv_service.engine import load_engine
        from gsv_service.settings import Settings

        over = {"GSV_ROOT": str(state["checkout"].root)}
        if state.get("python"):
            over["GSV_PYTHON"] = state["python"]
        os.environ.update(over)  # this process only: the doctor reads the same settings the service will
        settings = Settings(_env_file=None if args.no_env_file else args.env_file)
        doctor = Doctor(settings, load_engine(settings))
        try:
            rep = doctor.report(version=args.version_list[0])
        finally:
            doctor.close()
        print_report(rep, sys.stdout)
        report.doctor = rep.summary
        phase.action = rep.status
        # A start still starts the service, and a partial install (--skip-*) expects failures.
        if rep.status == "fail" and not (args.doctor_after_changes or args.skip_models or args.skip_venv):
            raise InstallError("the doctor found problems (above), each with its fix; then run the "
                               "installer again")
    return run


def install(args: argparse.Namespace, report: InstallReport) -> None:
    """Run the phases in order, recording each in `report`; raises InstallError at the first that fails."""
    args.engine_dir.parent.mkdir(parents=True, exist_ok=True)
    state: _State = {}
    with (args.engine_dir.parent / ".gsv-install.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstallError(f"another installer is working on {args.engine_dir.parent}; wait for it") from None
        _timed(report, "source", _source_phase(args, state), None)
        co: Checkout = state["checkout"]
        report.checkout, report.commit = str(co.root), co.commit
        if not args.skip_venv:
            _timed(report, "venv", _venv_phase(args, state), args.engine_venv)
        elif args.engine_python:
            state["python"] = args.engine_python
        report.python = state.get("python")
        if not args.skip_models:
            _timed(report, "models", _models_phase(args, state), None)
        if not args.no_env_file:
            _timed(report, "env", _env_phase(args, state), None)
        changed = any(p.action not in ("present", "in place", "skipped") for p in report.phases)
        if not args.skip_doctor and (changed or not args.doctor_after_changes):
            _timed(report, "doctor", _doctor_phase(args, state, report), None)
    report.ok = True


def _write_report(args: argparse.Namespace, report: InstallReport) -> None:
    path = args.report or args.engine_dir.parent / "install-report.json"
    try:
        path.write_text(json.dumps(asdict(report), indent=1) + "\n", encoding="utf-8")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    report = InstallReport(checkout=str(args.engine_dir), python=None, commit=None)
    try:
        install(args, report)
    except InstallError as e:
        print(f"\nengine install stopped: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nengine install interrupted; run it again to go on where it stopped", file=sys.stderr)
        return 130
    finally:
        _write_report(args, report)
    print(f"\nengine ready in {time.monotonic() - t0:.0f} s: GSV_ROOT={report.checkout}"
          + (f" GSV_PYTHON={report.python}" if report.python else ""))
    for p in report.phases:
        print(f"  {p.name:7} {p.action:26} {p.seconds:8.1f} s  {_gb(p.bytes_on_disk):>9}")
    return 0
