"""Task service: create/list/delete tasks, check a step's preconditions, start and cancel runs.

The API calls only this; this calls the store, the step registry, the runner and the workspace.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import ValidationError

from gsv_service.engine import INSTALL_COMMAND, EngineUnavailable, require_engine, visible_gpus
from gsv_service.events import EventLog
from gsv_service.preflight import Preflight
from gsv_service.errors import BadRequest, Conflict, DependencyMissing, NotFound, Unprocessable
from gsv_service.runner import LocalRunner
from gsv_service.steps.base import RunContext
from gsv_service.scheduler import requirement
from gsv_service.settings import Settings
from gsv_service.states import ACTIVE, RunStatus
from gsv_service.steps.base import ARTIFACTS, StepSpec
from gsv_service.steps.registry import BY_NAME, STEP_NAMES, consumers_of
from gsv_service.steps.summaries import execute_summarised
from gsv_service.store import Store, TaskBusy
from gsv_service.task_config import TaskConfig
from gsv_service.workspace import PathRejected, Workspace, check_task_id, task_workspace


def validation_message(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "__root__")
        parts.append(f"{where}{'.' + loc if loc else ''}: {e.get('msg')}")
    return "; ".join(parts)


class TaskService:
    def __init__(self, settings: Settings, store: Store, runner: LocalRunner, engine,
                 preflight: Preflight | None = None):
        self.settings = settings
        self.store = store
        self.runner = runner
        self.engine = engine
        self.preflight = preflight
        self.task_root = Path(settings.task_root).resolve()
        self.events = EventLog(store.engine)

    # ---------- tasks ----------
    def create(self, name: str, config: TaskConfig) -> dict:
        task = self.store.create_task(name, config.model_dump())
        self.workspace(task).ensure("input_audio", "logs")
        return task

    def get(self, task_id: str) -> dict:
        try:
            check_task_id(task_id)
        except PathRejected:
            raise NotFound(f"task {task_id[:80]!r} not found") from None
        task = self.store.get_task(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found; list tasks with GET /api/v1/tasks")
        return task

    def list(self, status: str | None, limit: int, offset: int, newest_first: bool = False):
        return self.store.list_tasks(status, limit, offset, newest_first)

    def workspace(self, task: dict) -> Workspace:
        return task_workspace(self.task_root, task["id"], task["config"]["exp_name"])

    def delete(self, task_id: str, force: bool = False) -> dict:
        task = self.get(task_id)
        if task["active_run_id"]:
            if not force:
                raise Conflict(f"task {task_id} is running step '{task['current_step']}'; cancel it "
                               "first (POST /api/v1/task/{id}/cancel) or delete with ?force=true")
            self.cancel(task_id, wait=True)
        self.store.delete_task(task_id)
        self.workspace(task).remove()
        return task

    def cancel(self, task_id: str, wait: bool = False) -> dict | None:
        task = self.get(task_id)
        run_id = task["active_run_id"]
        if not run_id:
            return None
        run = self.store.get_run(run_id)
        if run is None or run["status"] not in {s.value for s in ACTIVE}:
            return run
        run = self.runner.cancel(run)
        if wait:
            self._wait_finished(run_id, self.settings.kill_grace_s + 10)
            run = self.store.get_run(run_id)
        return run

    def _wait_finished(self, run_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.store.get_run(run_id)
            if run is None or run["status"] not in {s.value for s in ACTIVE}:
                return
            time.sleep(0.05)

    def wait_released(self, task_id: str, timeout: float) -> None:
        """Wait until no step or pipeline owns the task (after a cancel)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.store.get_task(task_id)
            if task is None or not (task["active_run_id"] or task["active_pipeline_id"]):
                return
            time.sleep(0.05)

    # ---------- steps ----------
    def step_spec(self, step: str) -> StepSpec:
        spec = BY_NAME.get(step)
        if spec is None:
            raise NotFound(f"unknown step {step[:60]!r}; the steps are: {', '.join(STEP_NAMES)}")
        return spec

    def parse_params(self, spec: StepSpec, params: dict | None):
        try:
            return spec.params.model_validate(params or {})
        except ValidationError as e:
            raise Unprocessable(validation_message(e, f"params of {spec.name}")) from None

    def check_inputs(self, spec: StepSpec, task: dict, ws: Workspace) -> None:
        cfg = TaskConfig.model_validate(task["config"])
        steps = task["steps"]
        for key in spec.required_inputs(cfg):
            art = ARTIFACTS[key]
            producer = art.produced_by
            if not art.present(ws):
                hint = (f"run step '{producer}' first" if producer
                        else f"upload recordings first with POST /api/v1/task/{task['id']}/files/upload")
                raise Conflict(f"step '{spec.name}' needs {art.description}, which this task does not "
                               f"have yet: {hint}", missing=key, run_first=producer)
            if producer and steps.get(producer, {}).get("status") == RunStatus.stale.value:
                raise Conflict(f"step '{spec.name}' needs {art.description}, which are stale because "
                               f"an earlier step ran again: run step '{producer}' first",
                               missing=key, run_first=producer)

    def start_step(self, task_id: str, step: str, params: dict | None) -> dict:
        spec = self.step_spec(step)
        task = self.get(task_id)
        parsed = self.parse_params(spec, params)
        self.check_engine(spec, parsed, task)
        self.check_engine_use(spec, parsed, task)
        if task["active_pipeline_id"]:
            raise Conflict(f"task {task_id} is running a pipeline, which owns the task until it ends; "
                           f"cancel it first (POST /api/v1/task/{task_id}/cancel)")
        if task["active_run_id"]:
            raise self._busy(task_id, self.store.get_run(task["active_run_id"]))
        self.check_inputs(spec, task, self.workspace(task))
        if spec.precheck is not None:
            spec.precheck(parsed, self.workspace(task), task["steps"])
        return self.launch(task, spec, parsed)

    def check_engine(self, spec: StepSpec, parsed=None, task: dict | None = None) -> None:
        """424 when an engine step cannot run: no engine configured, or (given the task) the
        installation fails a doctor check the step needs (preflight: milliseconds, no probe)."""
        if spec.needs_engine:
            try:
                require_engine(self.engine, spec.name)
            except EngineUnavailable as e:
                raise DependencyMissing(str(e)) from None
            if self.preflight is not None and task is not None:
                self.preflight.require(spec, TaskConfig.model_validate(task["config"]), parsed)

    def check_engine_use(self, spec: StepSpec, parsed, task: dict) -> None:
        """424 at submit when these params need the engine (an ASR method, FRCRN) and there is none."""
        use = spec.engine_use(parsed, self.workspace(task)) if spec.engine_use else None
        if use and self.engine is None:
            raise DependencyMissing(f"step '{spec.name}' needs the GPT-SoVITS engine for {use.reason}, "
                                    f"and none is configured: {use.alternative}, or install the engine "
                                    f"with {INSTALL_COMMAND} and restart the service", step=spec.name,
                                    needs_engine_for=use.reason, install_command=INSTALL_COMMAND)

    def resources_for(self, spec: StepSpec, cfg: TaskConfig) -> dict | None:
        gpus = visible_gpus(self.settings)
        unknown = [g for g in cfg.gpu_ids if gpus and g not in gpus]
        if spec.needs_gpu and unknown:
            raise Conflict(f"task gpu_id {cfg.gpu_id!r} names GPU {', '.join(unknown)}, but this service "
                           f"has GPUs {', '.join(gpus)} (GSV_GPUS); create a task with a gpu_id from those")
        return requirement(spec.needs_gpu, cfg.gpu_ids, gpus)

    def launch(self, task: dict, spec: StepSpec, parsed, pipeline_id: str | None = None) -> dict:
        """Record a queued run and hand it to the runner (preconditions already checked)."""
        ws = self.workspace(task)
        cfg = TaskConfig.model_validate(task["config"])
        resources = self.resources_for(spec, cfg)
        params_doc = parsed.model_dump(mode="json", by_alias=True)
        try:
            run = self.store.start_run(task["id"], spec.name, params_doc,
                                       lambda rid: ws.run_log(spec.name, rid), owner=self.runner.owner,
                                       resources=resources, pipeline_id=pipeline_id)
        except TaskBusy as e:
            raise self._busy(task["id"], e.run) from None
        step_status = {k: v["status"] for k, v in task["steps"].items()}

        def make_context(run_row: dict, cancel_event) -> RunContext:
            ws.ensure("logs")
            return RunContext(run_id=run_row["id"], task_id=task["id"], step=spec.name,
                             config=cfg, workspace=ws, engine=self.engine,
                             settings=self.settings, log_path=Path(run_row["log_path"]), store=self.store,
                             cancel_event=cancel_event, step_status=step_status,
                             events=self.events)

        self.runner.submit(run, make_context, lambda ctx: execute_summarised(spec, ctx, parsed),
                           consumers_of(spec.name))
        return run

    @staticmethod
    def _busy(task_id: str, run: dict | None) -> Conflict:
        what = f"step '{run['step']}' (run {run['id']})" if run else "another step"
        return Conflict(f"task {task_id} is already running {what}; wait for it to finish or cancel "
                        f"it with POST /api/v1/task/{task_id}/cancel", active_run=run and run["id"])

    # ---------- runs and logs ----------
    def runs(self, task_id: str, step: str | None = None) -> list[dict]:
        self.get(task_id)
        return self.store.list_runs(task_id, step)

    def run_for_logs(self, task_id: str, run_id: str | None, step: str | None) -> dict | None:
        task = self.get(task_id)
        if run_id:
            run = self.store.get_run(run_id)
            if run is None or run["task_id"] != task["id"]:
                raise NotFound(f"run {run_id[:64]!r} not found in task {task_id}")
            return run
        if step:
            self.step_spec(step)
            runs = self.store.list_runs(task_id, step)
            return runs[-1] if runs else None
        if task["active_run_id"]:
            return self.store.get_run(task["active_run_id"])
        return self.store.latest_run(task_id)

    def ensure_upload_allowed(self, task: dict) -> None:
        if task["active_run_id"] and task["current_step"] in ("convert_audio", "asr_transcribe"):
            raise Conflict(f"step '{task['current_step']}' is reading the uploads right now; upload "
                           "again when it has finished")


__all__ = ["TaskService", "BadRequest", "validation_message"]
