"""Step-run logs: the tail of a run's log file, or a live stream of it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, ServiceDep
from gsv_service.api.responses import errors
from gsv_service.api.schemas import LogsOut
from gsv_service.log_view import is_protocol, tail_text
from gsv_service.procs import LogTail
from gsv_service.tasks import TaskService

router = APIRouter(prefix="/api/v1", tags=["logs"])


@router.get("/task/{task_id}/logs", response_model=LogsOut, responses={
    200: {"description": "JSON; with follow=true the log as plain text, streamed until the run ends",
          "content": {"application/json": {"example": ex.LOGS},
                      "text/plain": {"schema": {"type": "string"}, "example": "[service] completed\n"}}},
    **errors(404, 422)})
async def get_logs(task_id: str, svc: ServiceDep, request: Request,
                   run_id: str | None = None, step: str | None = None,
                   tail: Annotated[int | None, Query(ge=1, le=16 * 1024 * 1024, description=(
                       "the last N lines (looked for in the last 16 MiB)"))] = None,
                   tail_bytes: Annotated[int | None, Query(ge=1, le=16 * 1024 * 1024, description=(
                       "at most the last N bytes; with tail, the last `tail` lines within them"))] = None,
                   follow: bool = False) -> Response:
    """The current (or latest) run's log; pick another with run_id or step. Without tail or
    tail_bytes: the last 64 KiB. The service's own `@@gsv {...}` progress lines are left out (and
    not counted). `follow=true` streams the log as text until the run ends."""
    run = await asyncio.to_thread(svc.run_for_logs, task_id, run_id, step)  # off the event loop
    if run is None:
        return JSON({"logs": "", "run_id": None, "step": None, "status": None, "truncated": False})
    path = Path(run.log_path or "")
    if not follow:
        text, truncated = await asyncio.to_thread(tail_text, path, tail, tail_bytes)
        return JSON({"logs": text, "run_id": run.id, "step": run.step,
                     "status": run.status.value, "truncated": truncated})
    return StreamingResponse(_follow(svc, run.id, path, tail, tail_bytes, request),
                             media_type="text/plain; charset=utf-8")


async def _follow(svc: TaskService, run_id: str, path: Path, tail: int | None, tail_bytes: int | None,
                  request: Request) -> AsyncIterator[str]:
    # Every file and store read on a worker thread: the event loop serves every other request.
    follower = await asyncio.to_thread(LogTail, path, True)
    # the tail up to where the follower starts, then exactly what comes after it
    yield (await asyncio.to_thread(tail_text, path, tail, tail_bytes, follower.offset))[0]
    while True:
        chunk = await asyncio.to_thread(_new_text, follower)
        if chunk:
            yield chunk
        if not await asyncio.to_thread(svc.run_active, run_id):
            rest = await asyncio.to_thread(_new_text, follower, True)
            if rest:
                yield rest
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.25)


def _new_text(follower: LogTail, final: bool = False) -> str:
    """The log lines written since the last call, less the service's own protocol lines."""
    return "".join(line + "\n" for line in follower.lines(final=final) if not is_protocol(line))
