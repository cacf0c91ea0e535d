"""The one-call pipeline: run steps in dependency order, pause for review, continue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, PipelinesDep
from gsv_service.api.responses import PipelineAnswer, PipelineOut, errors, ok
from gsv_service.api.views import pipeline_view
from gsv_service.pipeline import PipelineRequest

router = APIRouter(prefix="/api/v1", tags=["pipeline"])


@router.post("/task/{task_id}/run", status_code=202, response_model=PipelineAnswer,
             responses={**ok(ex.PIPELINE_STARTED, 202), **errors(404, 409, 422, 424, e424=ex.NO_ENGINE_424)})
def run_pipeline(task_id: str, pipelines: PipelinesDep,
                 body: Annotated[PipelineRequest | None, Body(openapi_examples=ex.PIPELINE_REQUEST)] = None) -> Response:
    """Run steps from_step..to_step in the background, in dependency order. Completed steps are
    kept, failed/stale/never-run ones run; call again to resume after a failure or a restart."""
    rec = pipelines.start(task_id, body or PipelineRequest())
    return JSON({"message": f"pipeline started: {', '.join(rec.spec.steps)}",
                 **pipeline_view(rec)}, status_code=202)


@router.get("/task/{task_id}/pipeline", response_model=PipelineOut, responses={**ok(ex.PIPELINE), **errors(404)})
def get_pipeline(task_id: str, pipelines: PipelinesDep) -> Response:
    """The task's latest pipeline: status, steps, and the failing step and reason if it failed."""
    return JSON(pipeline_view(pipelines.latest(task_id)))


@router.post("/task/{task_id}/transcripts/approve", status_code=202, response_model=PipelineAnswer,
             responses={**ok(ex.APPROVED, 202), **errors(404, 409)})
def approve_transcripts(task_id: str, pipelines: PipelinesDep) -> Response:
    """Continue a pipeline paused after asr_transcribe (status awaiting_review)."""
    rec = pipelines.approve(task_id)
    return JSON({"message": "transcripts approved; pipeline continues", **pipeline_view(rec)},
                status_code=202)
