"""FastAPI dependencies as Annotated aliases, so handlers declare what they need."""

from __future__ import annotations

from typing import Annotated, Any, cast

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response

from gsv_service.disk import DiskUsage
from gsv_service.doctor import Doctor
from gsv_service.pipeline import PipelineService
from gsv_service.tasks import TaskService
from gsv_service.view_cache import ViewCache
from gsv_service.webhooks import Webhooks


# async: a plain attribute read; a `def` dependency would cost a threadpool round trip per request.
async def get_service(request: Request) -> TaskService:
    return cast(TaskService, request.app.state.service)


ServiceDep = Annotated[TaskService, Depends(get_service)]


async def get_pipelines(request: Request) -> PipelineService:
    return cast(PipelineService, request.app.state.pipelines)


PipelinesDep = Annotated[PipelineService, Depends(get_pipelines)]


async def get_task_views(request: Request) -> ViewCache:
    return cast(ViewCache, request.app.state.task_views)


TaskViewsDep = Annotated[ViewCache, Depends(get_task_views)]


async def get_doctor(request: Request) -> Doctor:
    return cast(Doctor, request.app.state.doctor)


DoctorDep = Annotated[Doctor, Depends(get_doctor)]


async def get_webhooks(request: Request) -> Webhooks:
    return cast(Webhooks, request.app.state.webhooks)


WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]


async def get_disk(request: Request) -> DiskUsage:
    return cast(DiskUsage, request.app.state.disk)


DiskDep = Annotated[DiskUsage, Depends(get_disk)]


class JSON(Response):
    """orjson-encoded JSON: datetimes as ISO 8601, several times faster than the stdlib encoder."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
