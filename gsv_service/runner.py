"""Runs step runs in the background: the one owner of every child process.

`LocalRunner` executes runs on threads of this process. A step's `execute(ctx, params)` runs on
such a thread and launches processes through `RunContext.run` (steps/base.py), which supervises
them with procs.supervise: each in its own process group, output streamed to the run's log file,
new lines fed to the step's parser, every group killed when the run is cancelled.
"""

from __future__ import annotations

import logging
import socket
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psutil

from gsv_service.lifecycle import Lifecycle, RunStateConflict
from gsv_service.procs import group_alive, kill_group, process_alive
from gsv_service.records import RunRecord
from gsv_service.scheduler import Scheduler
from gsv_service.settings import Settings
from gsv_service.states import Reason, RunStatus
from gsv_service.steps.base import Cancelled, RunContext, StepFailed
from gsv_service.store import Store

log = logging.getLogger("gsv_service.runner")


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


StepExecutor = Callable[[RunContext], dict[str, Any]]
ContextFactory = Callable[[RunRecord, threading.Event], RunContext]
RunListener = Callable[[RunRecord | None], None]


@dataclass
class _Job:
    run: RunRecord
    make_context: ContextFactory
    execute: StepExecutor
    invalidates: list[str]
    cancel: threading.Event = field(default_factory=threading.Event)
    leases: list[str] = field(default_factory=list)


class LocalRunner:
    """Executes runs on threads of this process: at most `max_workers` at once, and runs that
    need GPUs (or CPU slots) only once the scheduler leases them."""

    def __init__(self, store: Store, lifecycle: Lifecycle, settings: Settings, max_workers: int,
                 scheduler: Scheduler | None = None):
        self.store = store
        self.lifecycle = lifecycle
        self.settings = settings
        self.owner = owner_id()
        self.scheduler = scheduler or Scheduler(store.db, settings.cpu_slots)
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="run")
        self._jobs: dict[str, _Job] = {}        # every run of this process not yet finished
        self._waiting: list[str] = []          # accepted, not yet started, in arrival order
        self._running = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._listeners: list[RunListener] = []
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dispatch", daemon=True)
        self._dispatcher.start()

    def on_finished(self, fn: RunListener) -> None:
        """Call fn(run) after every run of this process ends (pipelines, webhooks)."""
        self._listeners.append(fn)

    def submit(self, run: RunRecord, make_context: ContextFactory, execute: StepExecutor,
               invalidates: list[str]) -> None:
        with self._lock:
            self._jobs[run.id] = _Job(run, make_context, execute, invalidates)
            self._waiting.append(run.id)
        self._wake.set()  # the dispatch thread decides: it may wait on the database, a caller never does

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
        """Start what may start. Only the dispatch thread calls it, so decisions never overlap; the
        lock guards the in-memory queue and is never held across a database transaction (one can
        wait seconds for a busy store, and submit, cancel and finishing runs all need the lock)."""
        with self._lock:
            if self.max_workers - self._running <= 0 or not self._waiting:
                return
            needy = {r for r in self._waiting if self._jobs[r].run.resources}
        granted = self.scheduler.acquire(needy) if needy else {}
        with self._lock:  # the queue may have changed meanwhile (cancels, new runs, ended runs)
            slots = self.max_workers - self._running
            start = [r for r in self._waiting
                     if r in granted or not self._jobs[r].run.resources][:slots]
            for rid in start:
                self._waiting.remove(rid)
                self._jobs[rid].leases = granted.get(rid, [])
                self._running += 1
                self._pool.submit(self._execute, self._jobs[rid])
        for rid in set(granted) - set(start):  # over the cap, or cancelled meanwhile: give them back
            self.scheduler.give_back(rid)

    def _execute(self, job: _Job) -> None:
        run_id = job.run.id
        try:
            if job.cancel.is_set():
                return  # cancelled while queued; cancel() already recorded it
            try:
                self.lifecycle.mark_running(run_id, self.owner)
            except RunStateConflict:
                return
            ctx = job.make_context(job.run, job.cancel)
            ctx.leases = job.leases
            self._run_step(ctx, job.execute, job.invalidates)
        except Exception:  # never lose a run: the record must leave `running`
            log.exception("run %s crashed in the runner", run_id)
            self.lifecycle.finish_run_if_active(run_id, RunStatus.failed, reason=Reason.error.value,
                                                error_message="internal error in the service runner; "
                                                              "see the service log")
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

    def _run_step(self, ctx: RunContext, execute: StepExecutor, invalidates: list[str]) -> None:
        """Execute the step and record how it ended."""
        finish = self.lifecycle.finish_run_if_active
        try:
            result = execute(ctx)
        except Cancelled:
            if self._stopping:  # the service is stopping: the run can be resumed later
                ctx.log("interrupted: the service is stopping")
                self.lifecycle.fail_interrupted(ctx.run_id)
                return
            ctx.log("cancelled")
            finish(ctx.run_id, RunStatus.cancelled, reason=Reason.cancelled_by_user.value,
                   error_message="cancelled by request")
            return
        except StepFailed as e:
            ctx.log(f"failed: {e}")
            finish(ctx.run_id, RunStatus.failed, error_message=str(e), reason=e.reason.value, result=e.result)
            return
        except Exception as e:  # a bug or an unexpected I/O error in the step: keep its traceback
            ctx.log("error:\n" + traceback.format_exc())
            finish(ctx.run_id, RunStatus.failed, reason=Reason.error.value,
                   error_message=f"{type(e).__name__}: {e}")
            return
        # A cancel that arrives after the work finished is too late: the outputs are there.
        ctx.flush_progress()
        ctx.log("completed")
        finish(ctx.run_id, RunStatus.completed, result=result or {}, invalidates=invalidates)

    def cancel(self, run: RunRecord) -> RunRecord | None:
        """Cancel a queued or running run. Works for runs of other worker processes too."""
        run_id = run.id
        self.lifecycle.request_cancel(run_id)
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None:
                job.cancel.set()
                if run_id in self._waiting:
                    self._waiting.remove(run_id)
                    self._jobs.pop(run_id, None)
        if run.status == RunStatus.queued:
            self.lifecycle.finish_run_if_active(run_id, RunStatus.cancelled, reason=Reason.cancelled_by_user.value,
                                                error_message="cancelled before it started")
        elif job is None:
            # Owned by another process of this service: stop its children directly; that
            # process records the outcome. If its owner is gone, record it here.
            for pgid in run.pgids or []:
                threading.Thread(target=kill_group, args=(pgid, self.settings.kill_grace_s),
                                 daemon=True).start()
            if not owner_alive(run.owner):
                self.lifecycle.finish_run_if_active(run_id, RunStatus.cancelled,
                                                    reason=Reason.cancelled_by_user.value,
                                                    error_message="cancelled by request")
        return self.store.get_run(run_id)

    def recover(self) -> list[RunRecord]:
        """After a restart: runs whose owner died are failed as `interrupted`; their orphaned
        process groups (they live in their own sessions) are killed first."""
        recovered = []
        for run in self.store.active_runs():
            if run.owner == self.owner or owner_alive(run.owner):
                continue
            for pgid in run.pgids or []:
                if group_alive(pgid):
                    kill_group(pgid, self.settings.kill_grace_s)
            done = self.lifecycle.fail_interrupted(run.id)
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
            self.lifecycle.fail_interrupted(job.run.id)
