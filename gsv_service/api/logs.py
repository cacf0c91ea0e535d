"""Step-run logs: the tail of a run's log file, or a live stream of it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from gsv_service.api.deps import JSON, ServiceDep
from gsv_service.api.schemas import LogsOut
from gsv_service.procs import LogTail, tail_bytes
from gsv_service.states import ACTIVE

router = APIRouter(prefix="/api/v1", tags=["logs"])


@router.get("/task/{task_id}/logs", response_model=LogsOut)
async def get_logs(task_id: str, svc: ServiceDep, request: Request,
                   run_id: str | None = None, step: str | None = None,
                   tail: Annotated[int, Query(ge=1, le=16 * 1024 * 1024, description="bytes")] = 65536,
                   follow: bool = False):
    """The current (or latest) run's log; pick another with run_id or step. `follow=true` streams
    the log as text until the run ends."""
    run = svc.run_for_logs(task_id, run_id, step)
    if run is None:
        return JSON({"logs": "", "run_id": None, "step": None, "status": None, "truncated": False})
    path = Path(run["log_path"])
    if not follow:
        size = path.stat().st_size if path.exists() else 0
        return JSON({"logs": tail_bytes(path, tail), "run_id": run["id"], "step": run["step"],
                     "status": run["status"], "truncated": size > tail})
    return StreamingResponse(_follow(svc, run["id"], path, tail, request),
                             media_type="text/plain; charset=utf-8")


async def _follow(svc, run_id: str, path: Path, tail: int, request: Request):
    follower = LogTail(path, start_at_end=True)
    yield tail_bytes(path, tail, end=follower.offset)  # then exactly what comes after it
    active = {s.value for s in ACTIVE}
    while True:
        chunk = "".join(line + "\n" for line in follower.lines())
        if chunk:
            yield chunk
        run = svc.store.get_run(run_id)
        if run is None or run["status"] not in active:
            rest = "".join(line + "\n" for line in follower.lines(final=True))
            if rest:
                yield rest
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.25)
