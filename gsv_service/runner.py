"""Runs step runs in the background: the one owner of every child process.

`LocalRunner` executes runs on threads of this process. A step's `execute(ctx, params)` runs on
such a thread and launches processes through `RunContext.run`, which puts each in its own process
group, streams its output to the run's log file, feeds new log lines to the step's parser, checks
exit codes, and kills the groups when the run is cancelled.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from gsv_service.procs import (Command, ExitWaiter, LogTail, group_alive, kill_group, process_alive,
                               spawn)
from gsv_service.states import Reason, RunStatus
from gsv_service.scheduler import Scheduler
from gsv_service.store import RunStateConflict, Store

log = logging.getLogger("gsv_service.runner")

PROGRESS_WRITE_INTERVAL_S = 0.5
LOG_EVENT_INTERVAL_S = 0.5
TAIL_INTERVAL_S = 0.2  # log lines, progress and cancel are looked at this often


class StepFailed(Exception):
    """A step ends in failure with a message a person can act on."""

    def __init__(self, message: str, reason: Reason = Reason.error, result: dict | None = None):
        super().__init__(message)
        self.reason = reason
        self.result = result


class Cancelled(Exception):
    pass


def owner_id() -> str:
    me = psutil.Process()
    return f"{socket.gethostname()}:{me.pid}:{me.create_time():.3f}"


def owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    try:
        host, pid, ct = owner.rsplit(":", 2)
    except ValueError:
        return False
    return host == socket.gethostname() and process_alive(int(pid), float(ct))


@dataclass
class RunContext:
    """What a running step sees: its run, task, files, engine, and the process launcher."""

    run_id: str
    task_id: str
    step: str
    config: dict
    workspace: object  # gsv_service.workspace.Workspace
    engine: object | None
    settings: object
    log_path: Path
    store: Store
    cancel_event: threading.Event
    step_status: dict = field(default_factory=dict)  # step -> status when the run was accepted
    leases: list = field(default_factory=list)        # "gpu:0", "cpu:0", ... held while it runs
    events: object | None = None                      # EventLog: log lines go to live followers
    _last_progress_write: float = 0.0
    _unwritten: tuple | None = None
    _live: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- reporting ----
    def log(self, message: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"[service] {message}\n")

    def progress(self, fraction: float, message: str | None = None, metrics: dict | None = None,
                 force: bool = False) -> None:
        """Report progress; writes are throttled, the latest one is kept for flush_progress()."""
        now = time.monotonic()
        if not force and now - self._last_progress_write < PROGRESS_WRITE_INTERVAL_S:
            self._unwritten = (fraction, message, metrics)
            return
        self._last_progress_write = now
        self._unwritten = None
        self.store.set_progress(self.run_id, fraction, message, metrics)

    def flush_progress(self) -> None:
        if self._unwritten is not None:
            self.progress(*self._unwritten, force=True)

    @property
    def gpu_ids(self) -> list[str]:
        """GPUs leased to this run (empty on a CPU machine)."""
        return [r.split(":", 1)[1] for r in self.leases if r.startswith("gpu:")]

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    # ---- processes ----
    def run(self, commands: list[Command], on_line: Callable[[str], None] | None = None,
            poll: Callable[[], None] | None = None, poll_interval: float = 1.0) -> list[int]:
        """Run commands in parallel, each in its own process group; return their exit codes.

        Output goes to the run's log file only. `on_line` sees every new log line, `poll` is
        called every poll_interval seconds (e.g. to count output files). Raises Cancelled after
        killing every group if the run is cancelled meanwhile.
        """
        self.check_cancelled()
        tail = LogTail(self.log_path)
        for cmd in commands:
            self.log(f"$ {' '.join(cmd.argv)}" + (f"  ({cmd.label})" if cmd.label else ""))
        procs, exits = [], None
        try:
            for cmd in commands:
                procs.append(spawn(cmd, self.log_path))
            with self._lock:
                self._live = procs
            self.store.set_pgids(self.run_id, [p.pid for p in procs])
            exits = ExitWaiter(procs)
            last_poll = last_flush = 0.0
            pending: list[str] = []
            while True:
                done = all(p.poll() is not None for p in procs)
                for line in tail.lines(final=done):
                    pending.append(line)
                    if on_line:
                        on_line(line)
                if pending and (done or time.monotonic() - last_flush >= LOG_EVENT_INTERVAL_S):
                    last_flush = time.monotonic()
                    self._publish_lines(pending)
                    pending = []
                if poll and (done or time.monotonic() - last_poll >= poll_interval):
                    last_poll = time.monotonic()
                    poll()
                if done:
                    break
                exits.wait(TAIL_INTERVAL_S)  # wakes at once when a child exits
                if self.cancel_event.is_set():
                    self._kill(procs)
                    for line in tail.lines(final=True):  # what they printed before dying
                        if on_line:
                            on_line(line)
                    raise Cancelled()
            return [p.returncode for p in procs]
        finally:
            if exits is not None:
                exits.close()
            # Whatever happened (exception in a parser, cancel, crash), leave no process behind.
            self._kill(procs)
            with self._lock:
                self._live = []

    def _publish_lines(self, lines: list[str]) -> None:
        if self.events is not None:
            self.events.append_log_lines(self.task_id, self.run_id, self.step, lines)

    def _kill(self, procs: list) -> None:
        for p in procs:
            if p.poll() is None or group_alive(p.pid):
                kill_group(p.pid, self.settings.kill_grace_s, [p])
            p.wait()


StepExecutor = Callable[[RunContext], dict]


@dataclass
class _Job:
    run: dict
    make_context: Callable[[dict, threading.Event], RunContext]
    execute: StepExecutor
    invalidates: list[str]
    cancel: threading.Event = field(default_factory=threading.Event)
    leases: list[str] = field(default_factory=list)


class LocalRunner:
    """Executes runs on threads of this process: at most `max_workers` at once, and runs that
    need GPUs (or CPU slots) only once the scheduler leases them."""

    def __init__(self, store: Store, settings, max_workers: int, scheduler: Scheduler | None = None):
        self.store = store
        self.settings = settings
        self.owner = owner_id()
        self.scheduler = scheduler or Scheduler(store.engine, getattr(settings, "cpu_slots", 1))
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="run")
        self._jobs: dict[str, _Job] = {}        # every run of this process not yet finished
        self._waiting: list[str] = []          # accepted, not yet started, in arrival order
        self._running = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._listeners: list[Callable[[dict], None]] = []
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dispatch", daemon=True)
        self._dispatcher.start()

    def on_finished(self, fn: Callable[[dict], None]) -> None:
        """Call fn(run_row) after every run of this process ends (pipelines, webhooks)."""
        self._listeners.append(fn)

    def submit(self, run: dict, make_context: Callable[[dict, threading.Event], RunContext],
               execute: StepExecutor, invalidates: list[str]) -> None:
        with self._lock:
            self._jobs[run["id"]] = _Job(run, make_context, execute, invalidates)
            self._waiting.append(run["id"])
        self._dispatch()

    def _dispatch_loop(self) -> None:
        # Other processes free GPUs too, so waiting runs are retried periodically as well.
        while not self._stopping:
            self._wake.wait(0.25)
            self._wake.clear()
            if self._waiting:
                try:
                    self._dispatch()
                except Exception:
                    log.exception("dispatch failed")

    def _dispatch(self) -> None:
        with self._lock:
            slots = self.max_workers - self._running
            if slots <= 0 or not self._waiting:
                return
            plain = [r for r in self._waiting if not self._jobs[r].run.get("resources")]
            needy = {r for r in self._waiting if self._jobs[r].run.get("resources")}
            granted = self.scheduler.acquire(needy) if needy else {}
            start = [r for r in self._waiting if r in granted or r in plain][:slots]
            for rid in set(granted) - set(start):  # over the cap: give the GPUs back for now
                with self.store.engine.begin() as c:
                    Scheduler.release(c, rid)
            for rid in start:
                self._waiting.remove(rid)
                self._jobs[rid].leases = granted.get(rid, [])
                self._running += 1
                self._pool.submit(self._execute, self._jobs[rid])

    def _execute(self, job: _Job) -> None:
        run_id = job.run["id"]
        try:
            if job.cancel.is_set():
                return  # cancelled while queued; cancel() already recorded it
            try:
                self.store.mark_running(run_id, self.owner)
            except RunStateConflict:
                return
            ctx = job.make_context(job.run, job.cancel)
            ctx.leases = job.leases
            self._finish(ctx, job.execute, job.invalidates)
        except Exception:  # never lose a run: the record must leave `running`
            log.exception("run %s crashed in the runner", run_id)
            self._safe_finish(run_id, RunStatus.failed, error_message="internal error in the service "
                              "runner; see the service log", reason=Reason.error.value)
        finally:
            with self._lock:
                self._jobs.pop(run_id, None)
                self._running -= 1
            self._wake.set()
            row = self.store.get_run(run_id)
            for fn in self._listeners:
                try:
                    fn(row)
                except Exception:
                    log.exception("run listener failed")

    def _finish(self, ctx: RunContext, execute: StepExecutor, invalidates: list[str]) -> None:
        try:
            result = execute(ctx)
        except Cancelled:
            if self._stopping:  # the service is stopping: the run can be resumed later
                ctx.log("interrupted: the service is stopping")
                self.store.fail_interrupted(ctx.run_id)
                return
            ctx.log("cancelled")
            self._safe_finish(ctx.run_id, RunStatus.cancelled, reason=Reason.cancelled_by_user.value,
                              error_message="cancelled by request")
            return
        except StepFailed as e:
            ctx.log(f"failed: {e}")
            self._safe_finish(ctx.run_id, RunStatus.failed, error_message=str(e), reason=e.reason.value,
                              result=e.result)
            return
        except Exception as e:  # a bug or an unexpected I/O error in the step: keep its traceback
            ctx.log("error:\n" + traceback.format_exc())
            self._safe_finish(ctx.run_id, RunStatus.failed, reason=Reason.error.value,
                              error_message=f"{type(e).__name__}: {e}")
            return
        # A cancel that arrives after the work finished is too late: the outputs are there.
        ctx.flush_progress()
        ctx.log("completed")
        self._safe_finish(ctx.run_id, RunStatus.completed, result=result or {}, invalidates=invalidates)

    def _safe_finish(self, run_id: str, status: RunStatus, **kw) -> None:
        try:
            self.store.finish_run(run_id, status, **kw)
        except RunStateConflict:
            pass  # already finished elsewhere (e.g. cancelled while queued)

    def cancel(self, run: dict) -> dict:
        """Cancel a queued or running run. Works for runs of other worker processes too."""
        run_id = run["id"]
        self.store.request_cancel(run_id)
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None:
                job.cancel.set()
                if run_id in self._waiting:
                    self._waiting.remove(run_id)
                    self._jobs.pop(run_id, None)
        if run["status"] == RunStatus.queued.value:
            self._safe_finish(run_id, RunStatus.cancelled, reason=Reason.cancelled_by_user.value,
                              error_message="cancelled before it started")
        elif job is None:
            # Owned by another process of this service: stop its children directly; that
            # process records the outcome. If its owner is gone, record it here.
            for pgid in run.get("pgids") or []:
                threading.Thread(target=kill_group, args=(pgid, self.settings.kill_grace_s),
                                 daemon=True).start()
            if not owner_alive(run.get("owner")):
                self._safe_finish(run_id, RunStatus.cancelled, reason=Reason.cancelled_by_user.value,
                                  error_message="cancelled by request")
        return self.store.get_run(run_id)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._jobs:
                    return True
            time.sleep(0.05)
        return False

    def recover(self) -> list[dict]:
        """After a restart: runs whose owner died are failed as `interrupted`; their orphaned
        process groups (they live in their own sessions) are killed first."""
        recovered = []
        for run in self.store.active_runs():
            if run.get("owner") == self.owner or owner_alive(run.get("owner")):
                continue
            for pgid in run.get("pgids") or []:
                if group_alive(pgid):
                    kill_group(pgid, self.settings.kill_grace_s)
            done = self.store.fail_interrupted(run["id"])
            if done:
                recovered.append(done)
        return recovered

    def shutdown(self) -> None:
        """Stop what runs here (recorded as interrupted) and wait for the threads."""
        self._stopping = True
        self._wake.set()
        with self._lock:
            jobs = list(self._jobs.values())
            self._waiting.clear()
        for job in jobs:
            job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=False)
        for job in jobs:  # never started: record them as interrupted too
            self.store.fail_interrupted(job.run["id"])
