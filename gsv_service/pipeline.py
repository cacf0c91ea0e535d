"""Runs a task's steps in dependency order in the background (POST /api/v1/task/{id}/run).

The graph comes from the steps' declared inputs and outputs: a step waits for the steps in the
plan that produce what it reads. Steps already completed (and not stale) are kept; failed, stale
and never-run steps run. The first failure stops new launches; steps already running finish.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gsv_service.engine import INSTALL_COMMAND
from gsv_service.errors import Conflict, DependencyMissing, NotFound, ServiceError, Unprocessable
from gsv_service.lifecycle import Lifecycle
from gsv_service.records import PipelineRecord, PipelineSpec, RunRecord, TaskRecord
from gsv_service.runner import owner_alive
from gsv_service.states import PipelineStatus, Reason, RunStatus, TaskStatus
from gsv_service.steps.base import ARTIFACTS, StepParams
from gsv_service.steps.prep import PROVIDED_HINT
from gsv_service.steps.registry import BY_NAME, STEP_NAMES
from gsv_service.task_config import TaskConfig
from gsv_service.tasks import TaskService

log = logging.getLogger("gsv_service.pipeline")
StepName = Annotated[str, Field(max_length=40)]


class PipelineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_step: StepName | None = Field(None, description="first step; given, it runs again even if completed")
    to_step: StepName | None = Field(None, description="last step (default: test_inference)")
    steps_params: dict[StepName, dict[str, Any]] = Field(default_factory=dict, description="params per step name")
    stop_after_asr_for_review: bool = Field(False, description="pause after asr_transcribe (status "
                                            "awaiting_review) until POST .../transcripts/approve")
    parallel: bool | None = Field(None, description="run independent steps at the same time; default: "
                                  "the service setting GSV_PIPELINE_PARALLEL")


def dependencies(plan: tuple[str, ...] | list[str]) -> dict[str, set[str]]:
    """step -> the steps of the plan that produce something it reads."""
    deps: dict[str, set[str]] = {}
    for name in plan:
        producers = {ARTIFACTS[a].produced_by for a in BY_NAME[name].all_inputs}
        deps[name] = {p for p in producers if p is not None and p in plan and p != name}
    return deps


# What a driver loop knows of a step that failed: (step, error message, reason).
Failure = tuple[str, str, str]
PipelineListener = Callable[[PipelineRecord], None]


class PipelineService:
    def __init__(self, tasks: TaskService, lifecycle: Lifecycle, default_parallel: bool):
        self.tasks = tasks
        self.store = tasks.store
        self.lifecycle = lifecycle
        self.default_parallel = default_parallel
        self._wake: dict[str, threading.Event] = {}  # pipeline id -> its current driver's Event
        self._wake_lock = threading.Lock()
        self._end_listeners: list[PipelineListener] = []
        tasks.runner.on_finished(self._on_run_finished)

    def on_finished(self, fn: PipelineListener) -> None:
        """Call fn(pipeline) when a pipeline ends or pauses for review."""
        self._end_listeners.append(fn)

    # ---------- requests ----------
    def start(self, task_id: str, req: PipelineRequest) -> PipelineRecord:
        task = self.tasks.get(task_id)
        spec = self._plan(task, req)
        rec = self.lifecycle.start_pipeline(task_id, spec, self.tasks.runner.owner)
        if rec is None:
            raise Conflict(f"task {task_id} is busy (a step or a pipeline is running); wait for it or "
                           f"cancel it with POST /api/v1/task/{task_id}/cancel")
        self._spawn(rec)
        return rec

    def _plan(self, task: TaskRecord, req: PipelineRequest) -> PipelineSpec:
        for name in [req.from_step, req.to_step, *req.steps_params]:
            if name is not None:
                self.tasks.step_spec(name)
        i0 = STEP_NAMES.index(req.from_step) if req.from_step else 0
        i1 = STEP_NAMES.index(req.to_step) if req.to_step else len(STEP_NAMES) - 1
        if i0 > i1:
            raise Unprocessable(f"from_step {req.from_step} comes after to_step {req.to_step}")
        cfg = task.config
        plan = [s for s in STEP_NAMES[i0:i1 + 1]
                if s != "denoise_audio" or cfg.denoise or s in req.steps_params or s == req.from_step]
        parsed = {name: self.tasks.parse_params(BY_NAME[name], req.steps_params.get(name)) for name in plan}
        for name in plan:
            self.tasks.check_params(BY_NAME[name], parsed[name], task)
        blocked = [(name, e) for name in plan if (e := self._engine_problem(task, name, parsed[name]))]
        if blocked:
            raise self._unreachable(task, req, cfg, blocked)
        params = {name: p.model_dump(mode="json", by_alias=True) for name, p in parsed.items()}
        parallel = self.default_parallel if req.parallel is None else req.parallel
        return PipelineSpec(steps=tuple(plan), steps_params=params, force=req.from_step,
                            stop_after_asr_for_review=req.stop_after_asr_for_review, parallel=parallel)

    def _engine_problem(self, task: TaskRecord, name: str, parsed: StepParams) -> DependencyMissing | None:
        try:
            self.tasks.check_engine(BY_NAME[name], parsed, task)
            self.tasks.check_engine_use(BY_NAME[name], parsed, task)
        except DependencyMissing as e:
            return e
        return None

    def _unreachable(self, task: TaskRecord, req: PipelineRequest, cfg: TaskConfig,
                     blocked: list[tuple[str, DependencyMissing]]) -> DependencyMissing:
        """The 424 for a plan with steps the engine is missing for: it names them, the furthest
        step this task can reach now (`to_step`) and the install command."""
        reachable = stopped_at = None
        for name in STEP_NAMES:
            if name == "denoise_audio" and not (cfg.denoise or name in req.steps_params):
                continue  # a pipeline leaves it out
            try:
                parsed = self.tasks.parse_params(BY_NAME[name], req.steps_params.get(name))
            except ServiceError:
                break
            if self._engine_problem(task, name, parsed):
                stopped_at = name
                break
            reachable = name
        first, err = blocked[0]
        if self.tasks.engine is None:
            names = [f"{n} with {e.extra['needs_engine_for']}" if e.extra.get("needs_engine_for") else n
                     for n, e in blocked]
            detail = (f"no GPT-SoVITS engine is configured, and this pipeline needs it for: "
                      f"{'; '.join(names)}")
        else:  # configured, but a check failed: its own words
            detail = err.detail.rstrip(".")
        if reachable:
            detail += (f". Without it this task can run up to '{reachable}' now: POST "
                       f"/api/v1/task/{task.id}/run with {{\"to_step\": \"{reachable}\"}}")
        if stopped_at == "asr_transcribe":
            detail += f"; {PROVIDED_HINT}, and it can run up to 'asr_transcribe'"
        detail += f". To train, install the engine with {INSTALL_COMMAND} and restart the service"
        extra = {k: v for k, v in err.extra.items() if k != "needs_engine_for"}
        return DependencyMissing(detail, **{**extra, "step": first, "steps": [n for n, _ in blocked],
                                            "to_step": reachable, "install_command": INSTALL_COMMAND})

    def approve(self, task_id: str) -> PipelineRecord:
        """Continue a pipeline paused for transcript review."""
        task = self.tasks.get(task_id)
        rec = self.store.latest_pipeline(task_id)
        if task.status != TaskStatus.awaiting_review or not rec or rec.status != PipelineStatus.awaiting_review:
            raise Conflict(f"task {task_id} is not waiting for a transcript review (status "
                           f"{task.status.value}); start a pipeline with stop_after_asr_for_review first")
        spec = replace(rec.spec, reviewed=True, force=None)
        resumed = self.lifecycle.resume_pipeline(rec.id, task_id, spec, self.tasks.runner.owner)
        if resumed is None:
            raise Conflict(f"task {task_id} is busy; wait for the running step to end")
        self._spawn(resumed)
        return resumed

    def cancel(self, task_id: str) -> tuple[RunRecord | None, PipelineRecord | None]:
        """Cancel what owns the task: its pipeline (with the pipeline's running steps) or its step.
        Returns (the step run cancelled, the pipeline cancelled); both None when nothing ran."""
        task = self.tasks.get(task_id)
        pipeline_id = task.active_pipeline_id
        if not pipeline_id:
            return self.tasks.cancel(task_id), None
        self.lifecycle.request_pipeline_cancel(pipeline_id)
        for run in self.store.list_runs(task_id):
            if run.pipeline_id == pipeline_id and run.active:
                self.tasks.runner.cancel(run)
        rec = self.store.get_pipeline(pipeline_id)
        if rec and rec.status == PipelineStatus.running and not owner_alive(rec.owner):
            self.lifecycle.finish_pipeline(pipeline_id, PipelineStatus.cancelled,
                                           reason=Reason.cancelled_by_user.value,
                                           error_message="cancelled by request")
        self._notify(pipeline_id)
        return None, self.store.get_pipeline(pipeline_id)

    def delete_task(self, task_id: str) -> None:
        """Delete a task and its folder; what owns it (a pipeline or a step) is cancelled first
        and waited for, so no process is left writing into a deleted folder."""
        if self.tasks.get(task_id).active_pipeline_id:
            self.cancel(task_id)
            self.tasks.wait_released(task_id, self.tasks.settings.kill_grace_s + 15)
        self.tasks.delete(task_id, force=True)

    def latest(self, task_id: str) -> PipelineRecord:
        self.tasks.get(task_id)
        rec = self.store.latest_pipeline(task_id)
        if rec is None:
            raise NotFound(f"task {task_id} has never run a pipeline; start one with POST "
                           f"/api/v1/task/{task_id}/run")
        return rec

    def recover(self) -> list[PipelineRecord]:
        """Pipelines whose process died are failed as interrupted; POST /run continues them."""
        return [self.lifecycle.finish_pipeline(
                    rec.id, PipelineStatus.failed, reason=Reason.interrupted.value,
                    error_message="interrupted: the service stopped during the pipeline; POST "
                                  f"/api/v1/task/{rec.task_id}/run to continue from where it stopped")
                for rec in self.store.unfinished_pipelines() if not owner_alive(rec.owner)]

    # ---------- the driver ----------
    def _spawn(self, rec: PipelineRecord) -> None:
        wake = threading.Event()
        with self._wake_lock:
            self._wake[rec.id] = wake
        threading.Thread(target=self._drive_safely, args=(rec, wake), name=f"pipeline-{rec.id[:8]}",
                         daemon=True).start()

    def _on_run_finished(self, run: RunRecord | None) -> None:
        if run and run.pipeline_id:
            self._notify(run.pipeline_id)

    def _notify(self, pipeline_id: str) -> None:
        ev = self._wake.get(pipeline_id)
        if ev:
            ev.set()

    def _drive_safely(self, rec: PipelineRecord, wake: threading.Event) -> None:
        try:
            self._drive(rec, wake)
        except Exception as e:  # never leave the task owned by a dead pipeline
            log.exception("pipeline %s crashed", rec.id)
            self.lifecycle.finish_pipeline(rec.id, PipelineStatus.failed, reason=Reason.error.value,
                                           error_message=f"internal error in the pipeline: {e}")
        finally:
            # Only our own Event: an approve may have resumed this pipeline (once _end recorded the
            # pause) and put its new driver's Event here already.
            with self._wake_lock:
                if self._wake.get(rec.id) is wake:
                    del self._wake[rec.id]

    def _drive(self, rec: PipelineRecord, wake: threading.Event) -> None:
        drive = _Drive(rec)
        while True:
            now = self.store.get_pipeline(rec.id)
            if now is None or now.cancel_requested:
                drive.failure = drive.failure or ("", "cancelled by request", Reason.cancelled_by_user.value)
            if drive.failure is None and not drive.pause:
                drive.failure = self._launch_ready(drive)
            if not drive.running:
                break
            wake.wait(1.0)
            wake.clear()
            for step, run_id in list(drive.running.items()):
                run = self.store.get_run(run_id)
                if run is None or not run.active:
                    drive.ended(step, run)
        self._end(drive)

    def _launch_ready(self, drive: _Drive) -> Failure | None:
        """Start every step whose producers are done (one at a time unless parallel).
        Returns a failure when a step cannot start."""
        progressed = True
        while progressed:
            progressed = False
            for step in drive.ready():
                if drive.running and not drive.spec.parallel:
                    return None
                task = self.tasks.get(drive.task_id)
                if task.step_status(step) == RunStatus.completed and step != drive.force:
                    drive.done.add(step)  # kept from an earlier run
                    progressed = True
                    continue
                step_spec = BY_NAME[step]
                try:
                    self.tasks.check_inputs(step_spec, task, self.tasks.workspace(task))
                    parsed = step_spec.params.model_validate(drive.spec.steps_params[step])
                    run = self.tasks.launch(task, step_spec, parsed, pipeline_id=drive.pipeline_id)
                except ServiceError as e:
                    return (step, f"step {step} could not start: {e.detail}", Reason.error.value)
                drive.running[step] = run.id
                if step == drive.force:
                    drive.force = None
        return None

    def _end(self, drive: _Drive) -> None:
        failure, finish, pipeline_id = drive.failure, self.lifecycle.finish_pipeline, drive.pipeline_id
        if failure and failure[2] == Reason.cancelled_by_user.value:
            rec = finish(pipeline_id, PipelineStatus.cancelled, failed_step=failure[0] or None,
                         error_message=failure[1], reason=failure[2])
        elif failure:
            rec = finish(pipeline_id, PipelineStatus.failed, failed_step=failure[0],
                         error_message=failure[1], reason=failure[2])
        elif drive.pause and set(drive.spec.steps) - drive.done:
            rec = finish(pipeline_id, PipelineStatus.awaiting_review, reason="awaiting_review")
        else:
            rec = finish(pipeline_id, PipelineStatus.completed)
        for fn in self._end_listeners:
            try:
                fn(rec)
            except Exception:
                log.exception("pipeline listener failed")


class _Drive:
    """One driver loop's view of its pipeline: what is done, what runs, how it stands."""

    def __init__(self, rec: PipelineRecord):
        self.pipeline_id, self.task_id, self.spec = rec.id, rec.task_id, rec.spec
        self.deps = dependencies(rec.spec.steps)
        self.force = rec.spec.force
        self.done: set[str] = set()
        self.running: dict[str, str] = {}  # step -> run id
        self.failure: Failure | None = None
        self.pause = False

    def ready(self) -> list[str]:
        return [s for s in self.spec.steps
                if s not in self.done and s not in self.running and self.deps[s] <= self.done]

    def ended(self, step: str, run: RunRecord | None) -> None:
        del self.running[step]
        if run is not None and run.status == RunStatus.completed:
            self.done.add(step)
            if step == "asr_transcribe" and self.spec.stop_after_asr_for_review and not self.spec.reviewed:
                self.pause = True
        elif self.failure is None:
            status = run.status.value if run else "vanished"
            error = (run.error_message if run else None) or ""
            self.failure = (step, f"step {step} {status}: {error}".strip(),
                            (run.reason if run else None) or Reason.error.value)
