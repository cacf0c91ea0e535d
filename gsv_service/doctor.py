"""The doctor: is this machine ready to train a voice, and if not, what to do about it.

    python -m gsv_service.doctor [--json] [--version v2ProPlus] [--language zh] [--batch-size 16]

exits 0 when no check fails, 1 otherwise (./start_service.sh --doctor runs it). The same report
is GET /api/v1/engine/doctor. The service logs the summary at start (in a background thread), and
the step preflight (gsv_service/preflight.py) reuses the cheap checks and the cached probe result.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from datetime import datetime, timezone
from typing import TextIO

from pydantic import BaseModel, Field

from gsv_service import doctor_checks as dc
from gsv_service.doctor_checks import Check, Status
from gsv_service.engine import VERSIONS, Engine, load_engine
from gsv_service.probe import ProbeCache, ProbeResult
from gsv_service.settings import Settings
from gsv_service.task_config import LANGUAGES, TaskConfig

log = logging.getLogger("gsv_service.doctor")
_DEFAULTS = TaskConfig()
_RANK = {"ok": 0, "warn": 1, "fail": 2}


class ProbeInfo(BaseModel):
    python: str = Field(..., description="the interpreter that ran the probe (GSV_PYTHON)")
    ok: bool = Field(..., description="the probe ran to the end")
    error: str | None = None
    seconds: float = Field(..., description="how long the probe took")
    finished_at: datetime


class DoctorReport(BaseModel):
    status: Status = Field(..., description="the worst status of the checks")
    summary: str = Field(..., description="one line: counts and the checks that are not ok")
    version: str = Field(..., description="the model version checked as the one in use")
    language: str = Field(..., description="the task language checked (G2PW for zh, NLTK for en)")
    batch_size: int = Field(..., description="the batch size compared with free GPU memory")
    versions_usable: dict[str, bool] = Field(default_factory=dict, description="per model version: "
                                             "every pretrained file in place")
    checks: list[Check]
    probe: ProbeInfo | None = Field(None, description="the engine probe the report used (cached)")


def worst(checks: list[Check]) -> Status:
    return max((c.status for c in checks), key=_RANK.__getitem__, default="ok")


def summarize(checks: list[Check]) -> str:
    counts = {s: sum(c.status == s for c in checks) for s in ("ok", "warn", "fail")}
    head = f"doctor: {worst(checks)} ({counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail)"
    bad = [f"{s} {', '.join(c.name for c in checks if c.status == s)}" for s in ("fail", "warn")
           if counts[s]]
    return head + (" — " + "; ".join(bad) if bad else "")


def _probe_info(p: ProbeResult | None) -> ProbeInfo | None:
    if p is None:
        return None
    return ProbeInfo(python=p.python, ok=p.ok, error=p.error, seconds=p.seconds,
                     finished_at=datetime.fromtimestamp(p.finished_at, timezone.utc))


class Doctor:
    """Runs the checks for one service configuration; holds the engine probe's cached result."""

    def __init__(self, settings: Settings, engine: Engine | None, probe: ProbeCache | None = None):
        self.settings = settings
        self.engine = engine
        self.probe = probe or ProbeCache(engine)
        self._thread: threading.Thread | None = None

    def report(self, version: str = _DEFAULTS.model_version, language: str = _DEFAULTS.language,
               batch_size: int = _DEFAULTS.batch_size, refresh: bool = False) -> DoctorReport:
        """Every check. Runs the probe when none is cached (seconds) or refresh is asked."""
        checks = [dc.check_checkout(self.settings)]
        usable: dict[str, bool] = {}
        probe = None
        if self.engine is not None:
            probe = self.probe.get(refresh=refresh)
            if probe is None:  # only a cache without an engine answers None (not the one built from it)
                probe = ProbeResult(self.engine.python, None, "not probed: the probe cache has no engine")
            checks += [dc.check_packages(probe), dc.check_web_ui_packages(probe),
                       dc.check_cuda(self.settings, probe, batch_size)]
            for v in VERSIONS:
                c, usable[v] = dc.check_version_models(self.engine, v, version)
                checks.append(c)
            checks += [dc.check_item(self.engine, "g2pw", version, language),
                       dc.check_nltk(probe, version, language),
                       dc.check_item(self.engine, "langdetect", version, language),
                       dc.check_writable(self.engine)]
        checks += [dc.check_ffmpeg(), dc.check_disk(self.settings)]
        return DoctorReport(status=worst(checks), summary=summarize(checks), version=version,
                            language=language, batch_size=batch_size, versions_usable=usable,
                            checks=checks, probe=_probe_info(probe))

    # ---------- the start-up summary ----------
    def start(self) -> None:
        """Log the summary from a background thread (the probe takes seconds; start-up does not wait)."""
        self._thread = threading.Thread(target=self._log_summary, name="doctor", daemon=True)
        self._thread.start()

    def _log_summary(self) -> None:
        t0 = time.monotonic()
        try:
            rep = self.report()
        except Exception:  # the doctor must never take the service down
            log.exception("the doctor failed")
            return
        if self.probe.closed:
            return  # stopped while probing: the report says nothing about the installation
        level = logging.WARNING if rep.status == "fail" else logging.INFO
        log.log(level, "%s (%.1f s; details: GET /api/v1/engine/doctor or ./start_service.sh --doctor)",
                rep.summary, time.monotonic() - t0)
        for c in rep.checks:
            if c.status != "ok":
                log.log(level, "doctor: %s %s: %s; fix: %s", c.status, c.name, c.found, c.fix)

    def close(self, wait_s: float = 5.0) -> None:
        """Stop a running probe and wait for the start-up report (its file checks take milliseconds)."""
        self.probe.close(wait_s)
        if self._thread is not None:
            self._thread.join(wait_s)


# ---------- command line ----------

def print_report(rep: DoctorReport, out: TextIO) -> None:
    """The report for people: one line per check, its fix under it, the summary last."""
    marks = {"ok": " ok ", "warn": "WARN", "fail": "FAIL"}
    for c in rep.checks:
        print(f"[{marks[c.status]}] {c.name}: {c.found}", file=out)
        if c.fix:
            print(f"       fix: {c.fix}", file=out)
    print(rep.summary, file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gsv_service.doctor",
                                 description="Check the GPT-SoVITS engine installation the service would use "
                                             "(configured by GSV_* variables or .env). Exit 0 when no check fails.")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--version", default=_DEFAULTS.model_version, choices=VERSIONS,
                    help="model version in use (its missing files fail; others warn)")
    ap.add_argument("--language", default=_DEFAULTS.language, choices=LANGUAGES,
                    help="task language (zh needs G2PW, en NLTK data)")
    ap.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size,
                    help="batch size to compare with free GPU memory")
    args = ap.parse_args(argv)
    if args.batch_size < 1:
        ap.error("--batch-size must be at least 1")
    settings = Settings()
    doctor = Doctor(settings, load_engine(settings))
    try:
        rep = doctor.report(args.version, args.language, args.batch_size)
    finally:
        doctor.close()
    if args.json:
        print(rep.model_dump_json(indent=1))
    else:
        print_report(rep, sys.stdout)
    return 1 if rep.status == "fail" else 0


if __name__ == "__main__":
    sys.exit(main())
