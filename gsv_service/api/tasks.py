"""Tasks: create, read, list, run a step, cancel, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, PipelinesDep, ServiceDep
from gsv_service.api.responses import CancelOut, errors, ok
from gsv_service.api.schemas import Message, RunOut, StepRequest, StepStarted, TaskCreate, TaskOut
from gsv_service.api.views import run_view, task_view
from gsv_service.states import TaskStatus
from gsv_service.steps.registry import STEP_NAMES

router = APIRouter(prefix="/api/v1", tags=["tasks"])


# The step names, documented as an enum; an unknown name answers 404 naming the steps (not a bare 422).
StepPath = Annotated[str, Path(description="one of the 11 steps", json_schema_extra={"enum": list(STEP_NAMES)})]
StepQuery = Annotated[str | None, Query(description="only this step's runs",
                                        json_schema_extra={"enum": list(STEP_NAMES)})]


@router.post("/task/create", response_model=TaskOut, status_code=200,
             responses={**ok(ex.TASK_CREATED), **errors(422)})
def create_task(body: Annotated[TaskCreate, Body(openapi_examples=ex.CREATE_REQUEST)], svc: ServiceDep):
    """Create a task; its `config` holds the training settings (defaults: the web UI's)."""
    return JSON(task_view(svc.create(body.task_name, body.config)))


@router.get("/task/{task_id}", response_model=TaskOut, responses={**ok(ex.TASK), **errors(404)})
async def get_task(task_id: str, svc: ServiceDep):
    # Clients poll this. On SQLite (WAL: a reader never waits for the writer) the one indexed
    # SELECT takes ~0.1 ms, less than a threadpool round trip, so it runs on the event loop;
    # other databases answer over the network, so they get a worker thread.
    if svc.store.engine.dialect.name == "sqlite":
        return JSON(await _with_queue(svc, task_view(svc.get(task_id))))
    return JSON(await _with_queue(svc, task_view(await run_in_threadpool(svc.get, task_id))))


async def _with_queue(svc, view: dict) -> dict:
    """While a step waits for a GPU (or CPU slot), say where it stands in the queue (several
    queries: on a worker thread, never on the event loop)."""
    if view["status"] == "queued" and view["active_run_id"]:
        view["queue_position"] = await run_in_threadpool(svc.runner.scheduler.position,
                                                         view["active_run_id"])
    return view


@router.get("/tasks", response_model=list[TaskOut], responses={**ok(ex.TASKS), **errors(422)})
def list_tasks(svc: ServiceDep, response: Response,
               status: Annotated[TaskStatus | None, Query(description="only tasks in this status")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0)] = 0,
               order: Annotated[Literal["asc", "desc"], Query(description="asc: oldest first")] = "asc"):
    """Tasks oldest first (newest first with order=desc); the total matching count is in the
    X-Total-Count header."""
    tasks, total = svc.list(status.value if status else None, limit, offset, order == "desc")
    return JSON([task_view(t) for t in tasks], headers={"X-Total-Count": str(total)})


@router.post("/task/{task_id}/step/{step}", response_model=StepStarted, status_code=202,
             responses={**ok(ex.STEP_STARTED, 202), **errors(404, 409, 422, 424, e409=ex.STEP_BUSY)})
def run_step(task_id: str, step: StepPath, svc: ServiceDep,
             body: Annotated[StepRequest | None, Body(openapi_examples=ex.STEP_REQUEST)] = None):
    """Start one step in the background. 409 while another step runs or an input is missing
    (the answer names the step to run first); 424 for engine steps without an engine."""
    run = svc.start_step(task_id, step, (body.params if body else None) or {})
    return JSON({"message": f"step {step} accepted (run {run['id']})", "task_id": task_id, "step": step,
                 "run_id": run["id"], "status": run["status"], "run": run_view(run)}, status_code=202)


@router.post("/task/{task_id}/cancel", response_model=CancelOut, responses={**ok(ex.CANCEL), **errors(404)})
def cancel_task(task_id: str, pipelines: PipelinesDep):
    """Cancel the running or queued step, or the running pipeline with its steps: SIGTERM to
    their process groups, SIGKILL after a grace period."""
    out = pipelines.cancel(task_id)
    if out["pipeline"]:
        return JSON({"message": "cancelling the pipeline and its running steps", "task_id": task_id,
                     "cancelled": True, "pipeline_id": out["pipeline"]["id"]})
    run = out["run"]
    if run is None:
        return JSON({"message": "no step is running", "task_id": task_id, "cancelled": False})
    return JSON({"message": f"cancelling step {run['step']} (run {run['id']})", "task_id": task_id,
                 "cancelled": True, "run": run_view(run)})


@router.delete("/task/{task_id}", response_model=Message, responses={**ok(ex.DELETED), **errors(404)})
def delete_task(task_id: str, svc: ServiceDep, pipelines: PipelinesDep):
    """Delete a task and its folder; a running step or pipeline is cancelled first."""
    task = svc.get(task_id)
    if task["active_pipeline_id"]:
        pipelines.cancel(task_id)
        svc.wait_released(task_id, svc.settings.kill_grace_s + 15)
    svc.delete(task_id, force=True)
    return JSON({"message": "task deleted", "task_id": task_id})


@router.get("/task/{task_id}/runs", response_model=list[RunOut],
            responses={**ok([ex.RUN_DONE]), **errors(404, 422)})
def list_runs(task_id: str, svc: ServiceDep, step: StepQuery = None):
    """Every step run of the task, oldest first."""
    if step:
        svc.step_spec(step)
    return JSON([run_view(r) for r in svc.runs(task_id, step)])


@router.get("/task/{task_id}/runs/{run_id}", response_model=RunOut, responses={**ok(ex.RUN_DONE), **errors(404)})
def get_run(task_id: str, run_id: str, svc: ServiceDep):
    view = run_view(svc.run_for_logs(task_id, run_id, None))
    if view["status"] == "queued":
        view["queue_position"] = svc.runner.scheduler.position(view["id"])
    return JSON(view)
