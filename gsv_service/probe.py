"""Asking the engine's own interpreter what it can do (engine_scripts/probe.py), and keeping the
answer: importing torch takes seconds, so the result is cached until someone asks to refresh it.

The probe runs as a child in its own process group, with a timeout, its output in temporary files
of which only a bounded tail is read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gsv_service.engine import Engine

PROBE_SCRIPT = Path(__file__).resolve().parent / "engine_scripts" / "probe.py"
PROBE_TIMEOUT_S = 60.0
MAX_OUTPUT = 256 * 1024   # bytes of the probe's stdout read back (its JSON is a few KB)
MAX_STDERR = 4000         # characters of its stderr kept for the report


@dataclass(frozen=True)
class ProbeResult:
    """One run of the probe: `data` is its JSON object when it ran to the end, else `error` says why."""

    python: str
    data: dict[str, Any] | None
    error: str | None
    timed_out: bool = False
    seconds: float = 0.0
    finished_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.data is not None

    def package(self, name: str) -> dict[str, Any]:
        return ((self.data or {}).get("packages") or {}).get(name) or {}


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_probe(engine: Engine, timeout: float = PROBE_TIMEOUT_S,
              holder: list[subprocess.Popen[bytes]] | None = None) -> ProbeResult:
    """Run the probe with the engine's interpreter, cwd and environment. While it runs, its
    process is in `holder` (so that another thread can kill it)."""
    t0 = time.monotonic()
    python = engine.python
    if not (Path(python).is_file() and os.access(python, os.X_OK)):
        return ProbeResult(python, None, f"GSV_PYTHON {python} is not an executable file")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen([python, "-s", str(PROBE_SCRIPT)], cwd=engine.root, env=engine.env(),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, close_fds=True)
        except OSError as e:
            return ProbeResult(python, None, f"cannot start {python}: {e.strerror or e}")
        if holder is not None:
            holder.append(proc)
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            timed_out = True
        finally:
            if holder is not None and proc in holder:
                holder.remove(proc)
        stdout, stderr = _read_tail(out, MAX_OUTPUT), _read_tail(err, MAX_STDERR)
    seconds = round(time.monotonic() - t0, 2)
    if timed_out:
        doing = [line for line in stderr.splitlines() if line.startswith("probe: importing ")]
        where = f", stuck {doing[-1][len('probe: '):]}" if doing else ""
        return ProbeResult(python, None, f"the probe did not finish within {timeout:g} s{where} (importing "
                           "torch, transformers and gradio should take seconds)", timed_out=True,
                           seconds=seconds)
    data = _last_json(stdout)
    if data is None:
        why = f"exited with {proc.returncode}" if proc.returncode else "printed no result"
        return ProbeResult(python, None, f"the probe {why}: {stderr.strip()[-1500:] or '(no output)'}",
                           seconds=seconds)
    return ProbeResult(python, data, None, seconds=seconds)


def _read_tail(f: IO[bytes], limit: int) -> str:
    f.flush()
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - limit))
    return f.read(limit).decode("utf-8", "replace")


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


class ProbeCache:
    """The latest probe result of one engine. One probe at a time; `close` kills a running one.

    The doctor's report waits for a probe (`get`); the step preflight never does: it reads
    `cached()` and, when nothing was probed yet, starts the one probe in the background."""

    def __init__(self, engine: Engine | None, timeout: float = PROBE_TIMEOUT_S):
        self.engine = engine
        self.timeout = timeout
        self._result: ProbeResult | None = None
        self._lock = threading.Lock()    # held while a probe runs: one at a time
        self._state = threading.Lock()   # the background thread's bookkeeping; never held long
        self._running: list[subprocess.Popen[bytes]] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def cached(self) -> ProbeResult | None:
        return self._result

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, refresh: bool = False) -> ProbeResult | None:
        """The cached result, or a fresh one (blocking) when there is none or refresh is asked."""
        if self.engine is None:
            return None
        seen = self._result
        with self._lock:
            if self._closed:
                return self._result or ProbeResult(self.engine.python, None, "not probed: the service is stopping")
            # a probe that finished while this one waited for the lock is as fresh as the one asked for
            if self._result is None or (refresh and self._result is seen):
                self._result = run_probe(self.engine, self.timeout, holder=self._running)
            return self._result

    def start_background(self) -> None:
        """Probe in a background thread unless a result is cached or a probe is under way."""
        if self.engine is None or self._closed or self._result is not None or self._lock.locked():
            return
        with self._state:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self.get, name="engine-probe", daemon=True)
            self._thread.start()

    def close(self, wait_s: float = 5.0) -> None:
        """Kill a running probe (the service is stopping) and wait for its thread."""
        self._closed = True
        deadline = time.monotonic() + wait_s
        while True:  # a probe starting right now registers its process a moment later
            for proc in list(self._running):
                _kill(proc)
            if not self._lock.locked() or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if self._thread is not None:
            self._thread.join(wait_s)
