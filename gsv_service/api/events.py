"""Live task events: Server-Sent Events (with Last-Event-ID resume) and a WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from sse_starlette.sse import EventSourceResponse

from gsv_service.api import examples as ex
from gsv_service.api.deps import ServiceDep
from gsv_service.api.responses import errors, sse
from gsv_service.auth.access import PrincipalDep, VisibleTasks
from gsv_service.errors import BadRequest, NotFound
from gsv_service.records import EventRecord
from gsv_service.tasks import TaskService

router = APIRouter(prefix="/api/v1", tags=["events"])


def _payload(ev: EventRecord) -> dict[str, Any]:
    return {"id": ev.id, "type": ev.type, "run_id": ev.run_id, "created_at": ev.created_at, **ev.data}


def _start_id(last_event_id: str | None, after: int | None) -> int:
    for value in (last_event_id, after):
        if value is not None and str(value).strip().isdigit():
            return int(value)
    return 0


@router.get("/task/{task_id}/events", response_class=EventSourceResponse,
            responses={**sse(ex.SSE, "the task's events as they happen (the stream stays open)"),
                       **errors(404, 422)})
async def events(task_id: str, svc: ServiceDep, request: Request,
                 last_event_id: Annotated[str | None, Header(max_length=32)] = None,
                 after: Annotated[int | None, Query(ge=0, description="resume after this event id")] = None,
                 run_id: Annotated[str | None, Query(max_length=64, description="only this run's events")] = None,
                 latest: Annotated[bool, Query(description="skip the history: only new events")] = False) -> EventSourceResponse:
    """Server-Sent Events: `state` (step run status), `progress` (fraction, message, epoch/step/
    losses), `log` (batches of log lines), `pipeline`. Each event's id can be sent back as
    Last-Event-ID (or ?after=) to resume without missing anything."""
    await asyncio.to_thread(svc.get, task_id)
    return await _sse(svc, request, task_id, _start_id(last_event_id, after), latest, run_id=run_id)


async def _sse(svc: TaskService, request: Request, task_id: str | None, start: int, latest: bool,
               visible: VisibleTasks | None = None, **follow: Any) -> EventSourceResponse:
    """The event log from `start` (or from now, with `latest`) as Server-Sent Events; one task's
    events, or every task's (task_id None: each `data` then names its task)."""
    if latest and not start:
        start = await asyncio.to_thread(svc.events.last_id, task_id)

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for ev in svc.events.follow(task_id, start, request.is_disconnected, **follow):
            if visible is not None and not await visible(ev.task_id):
                continue  # another key's task
            data = _payload(ev) if task_id else {"task_id": ev.task_id, **_payload(ev)}
            yield {"id": str(ev.id), "event": ev.type, "data": orjson.dumps(data).decode()}

    return EventSourceResponse(stream(), ping=15)


EVENT_TYPES = ("state", "progress", "log", "pipeline", "webhook")


def _types(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    types = tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise BadRequest(f"unknown event type {unknown[0][:20]!r}; types are: {', '.join(EVENT_TYPES)}")
    return types


@router.get("/events", response_class=EventSourceResponse,
            responses={**sse(ex.SSE, "every task's events (each `data` with its task_id)"), **errors(400, 422)})
async def all_events(svc: ServiceDep, request: Request, principal: PrincipalDep,
                     last_event_id: Annotated[str | None, Header(max_length=32)] = None,
                     after: Annotated[int | None, Query(ge=0, description="resume after this event id")] = None,
                     types: Annotated[str | None, Query(max_length=100, description="comma list, e.g. "
                                                        "state,pipeline (default: all)")] = None,
                     latest: Annotated[bool, Query(description="skip the history: only new events")] = False) -> EventSourceResponse:
    """Server-Sent Events of every task (each with its `task_id`), e.g. for a live task list:
    the same events as /task/{task_id}/events, filtered by `types`; resume with Last-Event-ID."""
    wanted = _types(types)
    visible = None if principal.sees_all else VisibleTasks(svc.store, principal)
    return await _sse(svc, request, None, _start_id(last_event_id, after), latest, visible, types=wanted)


@router.websocket("/task/{task_id}/ws")
async def events_ws(websocket: WebSocket, task_id: str, after: int = 0) -> None:
    """The same events as /task/{task_id}/events, as JSON messages over a WebSocket (?after= to resume)."""
    svc = websocket.app.state.service
    try:
        await asyncio.to_thread(svc.get, task_id)
    except NotFound as e:
        await websocket.close(code=4404, reason=e.detail[:120])
        return
    await websocket.accept()
    closed = asyncio.Event()

    async def gone() -> bool:
        return closed.is_set()

    async def watch_close() -> None:
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            closed.set()

    watcher = asyncio.create_task(watch_close())
    try:
        async for ev in svc.events.follow(task_id, after, gone):
            await websocket.send_text(orjson.dumps(_payload(ev)).decode())
    except WebSocketDisconnect:
        pass
    finally:
        watcher.cancel()
