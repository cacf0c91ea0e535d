"""Training metrics: loss series per step kind, as JSON and as a PNG plot."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, ServiceDep
from gsv_service.api.responses import MetricsOut, errors, ok
from gsv_service.metrics import plot_png, task_metrics

router = APIRouter(prefix="/api/v1", tags=["metrics"])


@router.get("/task/{task_id}/metrics", response_model=MetricsOut, responses={**ok(ex.METRICS), **errors(404)})
async def metrics(task_id: str, svc: ServiceDep) -> Response:
    """Loss series of every SoVITS and GPT training run of the task, by epoch and step."""
    runs = await asyncio.to_thread(svc.runs, task_id)
    return JSON({"task_id": task_id, **await asyncio.to_thread(task_metrics, runs)})


@router.get("/task/{task_id}/metrics/plot.png", response_class=Response,
            responses={200: {"description": "the loss curves (SoVITS above, GPT below)",
                             "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
                       **errors(404)})
async def metrics_plot(task_id: str, svc: ServiceDep) -> Response:
    runs = await asyncio.to_thread(svc.runs, task_id)
    data = await asyncio.to_thread(lambda: plot_png(task_metrics(runs)))
    return Response(data, media_type="image/png")
