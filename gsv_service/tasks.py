"""Task service: create/list/delete tasks, check a step's preconditions, start and cancel runs.

The API calls only this; this calls the store, the step registry, the runner and the workspace.
"""

from __future__ import annotations

from typing import Any

import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from gsv_service import model_names
from gsv_service.device_limits import DeviceLimit, check_gpu_id, check_step_procs
from gsv_service.engine import INSTALL_COMMAND, Engine, EngineUnavailable, require_engine, visible_gpus
from gsv_service.errors import BadRequest, Conflict, DependencyMissing, NotFound, Unprocessable
from gsv_service.events import EventLog
from gsv_service.lifecycle import Lifecycle, TaskBusy
from gsv_service.model_names import ModelNameRejected
from gsv_service.preflight import Preflight
from gsv_service.records import RunRecord, TaskRecord
from gsv_service.runner import LocalRunner
from gsv_service.scheduler import requirement
from gsv_service.settings import Settings
from gsv_service.states import RunStatus
from gsv_service.steps.base import ARTIFACTS, AnyStep, RunContext, StepParams
from gsv_service.steps.registry import BY_NAME, STEP_NAMES, consumers_of
from gsv_service.steps.summaries import execute_summarised
from gsv_service.store import Store
from gsv_service.task_config import TaskConfig
from gsv_service.workspace import PathRejected, Workspace, check_task_id, task_workspace


def validation_message(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "__root__")
        parts.append(f"{where}{'.' + loc if loc else ''}: {e.get('msg')}")
    return "; ".join(parts)


class TaskService:
    def __init__(self, settings: Settings, store: Store, lifecycle: Lifecycle, runner: LocalRunner,
                 engine: Engine | None, preflight: Preflight | None = None):
        self.settings = settings
        self.store = store
        self.lifecycle = lifecycle
        self.runner = runner
        self.engine = engine  # the GPT-SoVITS checkout (None: not configured)
        self.preflight = preflight
        self.task_root = Path(settings.task_root).resolve()
        self.events = EventLog(store.db)

    # ---------- tasks ----------
    def create(self, name: str, config: TaskConfig, owner: str | None = None) -> TaskRecord:
        self.check_devices(config)
        task = self.store.create_task(name, config.model_dump(), owner=owner)
        self.workspace(task).ensure("input_audio", "logs")
        return task

    def get(self, task_id: str) -> TaskRecord:
        try:
            check_task_id(task_id)
        except PathRejected:
            raise NotFound(f"task {task_id[:80]!r} not found") from None
        task = self.store.get_task(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found; list tasks with GET /api/v1/tasks")
        return task

    def list_tasks(self, status: str | None, limit: int, offset: int, newest_first: bool = False,
                   owner: str | None = None) -> tuple[list[TaskRecord], int]:
        """owner: only that API key's tasks (None: all)."""
        return self.store.list_tasks(status, limit, offset, newest_first, owner=owner)

    def workspace(self, task: TaskRecord) -> Workspace:
        return task_workspace(self.task_root, task.id, task.config.exp_name)

    def delete(self, task_id: str, force: bool = False) -> TaskRecord:
        task = self.get(task_id)
        if task.active_run_id:
            if not force:
                raise Conflict(f"task {task_id} is running step '{task.current_step}'; cancel it "
                               "first (POST /api/v1/task/{id}/cancel) or delete with ?force=true")
            self.cancel(task_id, wait=True)
        self.store.delete_task(task_id)
        self.workspace(task).remove()
        return task

    def cancel(self, task_id: str, wait: bool = False) -> RunRecord | None:
        task = self.get(task_id)
        run_id = task.active_run_id
        if not run_id:
            return None
        run = self.store.get_run(run_id)
        if run is None or not run.active:
            return run
        run = self.runner.cancel(run)
        if wait:
            self._wait_until(lambda: not ((r := self.store.get_run(run_id)) and r.active),
                             self.settings.kill_grace_s + 10)
            run = self.store.get_run(run_id)
        return run

    def wait_released(self, task_id: str, timeout: float) -> None:
        """Wait until no step or pipeline owns the task (after a cancel)."""
        self._wait_until(lambda: not ((t := self.store.get_task(task_id)) and t.busy), timeout)

    @staticmethod
    def _wait_until(done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done():
            time.sleep(0.05)

    # ---------- steps ----------
    def step_spec(self, step: str) -> AnyStep:
        spec = BY_NAME.get(step)
        if spec is None:
            raise NotFound(f"unknown step {step[:60]!r}; the steps are: {', '.join(STEP_NAMES)}")
        return spec

    def parse_params(self, spec: AnyStep, params: dict[str, Any] | None) -> StepParams:
        try:
            parsed: StepParams = spec.params.model_validate(params or {})
        except ValidationError as e:
            raise Unprocessable(validation_message(e, f"params of {spec.name}")) from None
        return parsed

    def check_inputs(self, spec: AnyStep, task: TaskRecord, ws: Workspace) -> None:
        for key in spec.required_inputs(task.config):
            art = ARTIFACTS[key]
            producer = art.produced_by
            if not art.present(ws):
                hint = (f"run step '{producer}' first" if producer
                        else f"upload recordings first with POST /api/v1/task/{task.id}/files/upload")
                raise Conflict(f"step '{spec.name}' needs {art.description}, which this task does not "
                               f"have yet: {hint}", missing=key, run_first=producer)
            if producer and task.step_status(producer) == RunStatus.stale:
                raise Conflict(f"step '{spec.name}' needs {art.description}, which are stale because "
                               f"an earlier step ran again: run step '{producer}' first",
                               missing=key, run_first=producer)

    def start_step(self, task_id: str, step: str, params: dict[str, Any] | None) -> RunRecord:
        spec = self.step_spec(step)
        task = self.get(task_id)
        parsed = self.parse_params(spec, params)
        self.check_params(spec, parsed, task)
        self.check_engine(spec, parsed, task)
        self.check_engine_use(spec, parsed, task)
        if task.active_pipeline_id:
            raise Conflict(f"task {task_id} is running a pipeline, which owns the task until it ends; "
                           f"cancel it first (POST /api/v1/task/{task_id}/cancel)")
        if task.active_run_id:
            raise self._busy(task_id, self.store.get_run(task.active_run_id))
        self.check_inputs(spec, task, self.workspace(task))
        if spec.precheck is not None:
            spec.precheck(parsed, self.workspace(task), task.statuses())
        return self.launch(task, spec, parsed)

    def check_engine(self, spec: AnyStep, parsed: StepParams | None = None,
                     task: TaskRecord | None = None) -> None:
        """424 when an engine step cannot run: no engine configured, or (given the task) the
        installation fails a doctor check the step needs (preflight: milliseconds, no probe)."""
        if spec.needs_engine:
            try:
                require_engine(self.engine, spec.name)
            except EngineUnavailable as e:
                raise DependencyMissing(str(e)) from None
            if self.preflight is not None and task is not None:
                self.preflight.require(spec, task.config, parsed)

    def check_engine_use(self, spec: AnyStep, parsed: StepParams, task: TaskRecord) -> None:
        """424 at submit when these params need the engine (an ASR method, FRCRN) and there is none."""
        use = spec.engine_use(parsed, self.workspace(task)) if spec.engine_use else None
        if use and self.engine is None:
            raise DependencyMissing(f"step '{spec.name}' needs the GPT-SoVITS engine for {use.reason}, "
                                    f"and none is configured: {use.alternative}, or install the engine "
                                    f"with {INSTALL_COMMAND} and restart the service", step=spec.name,
                                    needs_engine_for=use.reason, install_command=INSTALL_COMMAND)

    def check_devices(self, config: TaskConfig) -> None:
        """422 at creation for a gpu_id this service cannot honour (device_limits)."""
        try:
            check_gpu_id(config.gpu_ids, self.settings)
        except DeviceLimit as e:
            raise Unprocessable(f"config.gpu_id: {e}") from None

    def check_params(self, spec: AnyStep, parsed: StepParams, task: TaskRecord) -> None:
        """422 at submit for what only this service can judge: model params must name files in its
        pretrained folder (model_names), and the engine processes a step starts must fit its GPUs
        or CPU (device_limits)."""
        try:
            model_names.check_params(parsed, model_names.pretrained_root(self.settings, self.engine))
        except ModelNameRejected as e:
            raise Unprocessable(f"params of {spec.name}.{e}") from None
        parts = getattr(parsed, "parts_per_gpu", None)
        if parts is not None:
            try:
                check_step_procs(len(task.config.gpu_ids), parts, self.settings)
            except DeviceLimit as e:
                raise Unprocessable(f"params of {spec.name}.parts_per_gpu: {e}") from None

    def resources_for(self, spec: AnyStep, cfg: TaskConfig) -> dict[str, list[str] | int] | None:
        gpus = visible_gpus(self.settings)
        unknown = [g for g in cfg.gpu_ids if gpus and g not in gpus]
        if spec.needs_gpu and unknown:
            raise Conflict(f"task gpu_id {cfg.gpu_id!r} names GPU {', '.join(unknown)}, but this service "
                           f"has GPUs {', '.join(gpus)} (GSV_GPUS); create a task with a gpu_id from those")
        return requirement(spec.needs_gpu, cfg.gpu_ids, gpus)

    def launch(self, task: TaskRecord, spec: AnyStep, parsed: StepParams,
               pipeline_id: str | None = None) -> RunRecord:
        """Record a queued run and hand it to the runner (preconditions already checked)."""
        ws = self.workspace(task)
        cfg = task.config
        resources = self.resources_for(spec, cfg)
        params_doc = parsed.model_dump(mode="json", by_alias=True)
        try:
            run = self.lifecycle.start_run(task.id, spec.name, params_doc,
                                           lambda rid: ws.run_log(spec.name, rid), owner=self.runner.owner,
                                           resources=resources, pipeline_id=pipeline_id)
        except TaskBusy as e:
            raise self._busy(task.id, e.run) from None
        step_status = task.statuses()

        def make_context(run: RunRecord, cancel_event: threading.Event) -> RunContext:
            ws.ensure("logs")
            return RunContext(run_id=run.id, task_id=task.id, step=spec.name,
                              config=cfg, workspace=ws, engine=self.engine,
                              settings=self.settings, log_path=Path(run.log_path or ws.run_log(spec.name, run.id)),
                              store=self.lifecycle, cancel_event=cancel_event, step_status=step_status,
                              events=self.events)

        self.runner.submit(run, make_context, lambda ctx: execute_summarised(spec, ctx, parsed),
                           consumers_of(spec.name))
        return run

    @staticmethod
    def _busy(task_id: str, run: RunRecord | None) -> Conflict:
        what = f"step '{run.step}' (run {run.id})" if run else "another step"
        return Conflict(f"task {task_id} is already running {what}; wait for it to finish or cancel "
                        f"it with POST /api/v1/task/{task_id}/cancel", active_run=run and run.id)

    # ---------- runs and logs ----------
    def runs(self, task_id: str, step: str | None = None) -> list[RunRecord]:
        self.get(task_id)
        if step:
            self.step_spec(step)
        return self.store.list_runs(task_id, step)

    def run(self, task_id: str, run_id: str) -> RunRecord:
        """One run of the task (404 for a run of another task)."""
        run = self.store.get_run(run_id)
        if run is None or run.task_id != self.get(task_id).id:
            raise NotFound(f"run {run_id[:64]!r} not found in task {task_id}")
        return run

    def queue_position(self, run_id: str) -> int | None:
        """1 = next to start, while the run waits for a GPU or CPU slot (None: it does not wait)."""
        return self.runner.scheduler.position(run_id)

    def run_active(self, run_id: str) -> bool:
        run = self.store.get_run(run_id)
        return run is not None and run.active

    def store_health(self) -> dict[str, object]:
        """The database's backend, its URL without the password, and whether it answers."""
        return {"backend": self.store.backend, "url": self.store.url, "ok": self.store.ping()}

    def run_for_logs(self, task_id: str, run_id: str | None, step: str | None) -> RunRecord | None:
        task = self.get(task_id)
        if run_id:
            return self.run(task_id, run_id)
        if step:
            self.step_spec(step)
            runs = self.store.list_runs(task_id, step)
            return runs[-1] if runs else None
        if task.active_run_id:
            return self.store.get_run(task.active_run_id)
        return self.store.latest_run(task_id)

    def ensure_upload_allowed(self, task: TaskRecord) -> None:
        if task.active_run_id and task.current_step in ("convert_audio", "asr_transcribe"):
            raise Conflict(f"step '{task.current_step}' is reading the uploads right now; upload "
                           "again when it has finished")


__all__ = ["TaskService", "BadRequest", "validation_message"]
