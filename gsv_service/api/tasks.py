"""Tasks: create, read, list, run a step, cancel, delete."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Body, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, DiskDep, PipelinesDep, ServiceDep, TaskViewsDep, WebhooksDep
from gsv_service.api.responses import CancelOut, errors, ok
from gsv_service.api.schemas import (Message, RunOut, StepRequest, StepStarted, TaskCreate, TaskCreated,
                                     TaskOut)
from gsv_service.api.views import run_view, task_view
from gsv_service.auth.access import PrincipalDep, check_task_quota
from gsv_service.disk import DiskUsage
from gsv_service.states import TaskStatus
from gsv_service.steps.registry import STEP_NAMES
from gsv_service.tasks import TaskService

router = APIRouter(prefix="/api/v1", tags=["tasks"])


# The step names, documented as an enum; an unknown name answers 404 naming the steps (not a bare 422).
StepPath = Annotated[str, Path(description="one of the 11 steps", json_schema_extra={"enum": list(STEP_NAMES)})]
StepQuery = Annotated[str | None, Query(description="only this step's runs",
                                        json_schema_extra={"enum": list(STEP_NAMES)})]


@router.post("/task/create", response_model=TaskCreated, status_code=200,
             responses={**ok(ex.TASK_CREATED), **errors(422, 429)})
def create_task(body: Annotated[TaskCreate, Body(openapi_examples=ex.CREATE_REQUEST)], svc: ServiceDep,
                webhooks: WebhooksDep, principal: PrincipalDep) -> Response:
    """Create a task; its `config` holds the training settings (defaults: the web UI's). With a
    `webhook_url`, the answer carries `webhook_secret` (shown this once): the key the deliveries
    are signed with."""
    webhooks.check_url(body.config.webhook_url)  # 422 before anything exists
    check_task_quota(svc, principal)  # 429 at GSV_MAX_TASKS_PER_KEY
    task = svc.create(body.task_name, body.config, owner=principal.key_id)
    view = task_view(task)
    if body.config.webhook_url:
        view["webhook_secret"] = webhooks.new_secret(task.id)
    return JSON(view)


@router.get("/task/{task_id}", response_model=TaskOut,
            responses={**ok(ex.TASK), 304: {"description": "unchanged since the ETag sent in If-None-Match"},
                       **errors(404)})
async def get_task(task_id: str, request: Request, svc: ServiceDep, views: TaskViewsDep, disk: DiskDep) -> Response:
    """The task, its steps and a summary. Clients poll this: send the last answer's ETag in
    If-None-Match and get 304 while nothing changed."""
    # A poll while nothing changed is answered from the view cache on the event loop (one
    # PRAGMA); building an answer reads the store and measures the task's folder, on a worker
    # thread. The disk figure is not a database change, so an answer is kept at most its TTL.
    answer = views.cached(task_id)
    if answer is None:
        answer = await run_in_threadpool(views.build, task_id, lambda: _task_json(svc, disk, task_id),
                                         disk.ttl_s)
    body, etag = answer
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


def _task_json(svc: TaskService, disk: DiskUsage, task_id: str) -> bytes:
    task = svc.get(task_id)
    view = task_view(task)
    if task.status == TaskStatus.queued and task.active_run_id:  # where it stands in the GPU queue
        view["queue_position"] = svc.queue_position(task.active_run_id)
    view["disk"] = disk.task_view(disk.task_bytes(task_id))
    return orjson.dumps(view)


@router.get("/tasks", response_model=list[TaskOut], responses={**ok(ex.TASKS), **errors(422)})
def list_tasks(svc: ServiceDep, response: Response, principal: PrincipalDep,
               status: Annotated[TaskStatus | None, Query(description="only tasks in this status")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0)] = 0,
               order: Annotated[Literal["asc", "desc"], Query(description="asc: oldest first")] = "asc") -> Response:
    """Tasks oldest first (newest first with order=desc); the total matching count is in the
    X-Total-Count header."""
    tasks, total = svc.list_tasks(status.value if status else None, limit, offset, order == "desc",
                                  owner=principal.owner_filter())
    return JSON([task_view(t) for t in tasks], headers={"X-Total-Count": str(total)})


@router.post("/task/{task_id}/step/{step}", response_model=StepStarted, status_code=202,
             responses={**ok(ex.STEP_STARTED, 202), **errors(404, 409, 422, 424, e409=ex.STEP_BUSY)})
def run_step(task_id: str, step: StepPath, svc: ServiceDep,
             body: Annotated[StepRequest | None, Body(openapi_examples=ex.STEP_REQUEST)] = None) -> Response:
    """Start one step in the background. 409 while another step runs or an input is missing
    (the answer names the step to run first); 424 for engine steps without an engine."""
    run = svc.start_step(task_id, step, (body.params if body else None) or {})
    return JSON({"message": f"step {step} accepted (run {run.id})", "task_id": task_id, "step": step,
                 "run_id": run.id, "status": run.status.value, "run": run_view(run)}, status_code=202)


@router.post("/task/{task_id}/cancel", response_model=CancelOut, responses={**ok(ex.CANCEL), **errors(404)})
def cancel_task(task_id: str, pipelines: PipelinesDep) -> Response:
    """Cancel the running or queued step, or the running pipeline with its steps: SIGTERM to
    their process groups, SIGKILL after a grace period."""
    run, pipeline = pipelines.cancel(task_id)
    if pipeline:
        return JSON({"message": "cancelling the pipeline and its running steps", "task_id": task_id,
                     "cancelled": True, "pipeline_id": pipeline.id})
    if run is None:
        return JSON({"message": "no step is running", "task_id": task_id, "cancelled": False})
    return JSON({"message": f"cancelling step {run.step} (run {run.id})", "task_id": task_id,
                 "cancelled": True, "run": run_view(run)})


@router.delete("/task/{task_id}", response_model=Message, responses={**ok(ex.DELETED), **errors(404)})
def delete_task(task_id: str, pipelines: PipelinesDep) -> Response:
    """Delete a task and its folder; a running step or pipeline is cancelled first."""
    pipelines.delete_task(task_id)
    return JSON({"message": "task deleted", "task_id": task_id})


@router.get("/task/{task_id}/runs", response_model=list[RunOut],
            responses={**ok([ex.RUN_DONE]), **errors(404, 422)})
def list_runs(task_id: str, svc: ServiceDep, step: StepQuery = None) -> Response:
    """Every step run of the task, oldest first."""
    return JSON([run_view(r) for r in svc.runs(task_id, step)])


@router.get("/task/{task_id}/runs/{run_id}", response_model=RunOut, responses={**ok(ex.RUN_DONE), **errors(404)})
def get_run(task_id: str, run_id: str, svc: ServiceDep) -> Response:
    run = svc.run(task_id, run_id)
    view = run_view(run)
    if run.status == "queued":
        view["queue_position"] = svc.queue_position(run.id)
    return JSON(view)
