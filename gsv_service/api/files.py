"""Files of a task: upload (streamed), list, download."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, DiskDep, ServiceDep
from gsv_service.api.responses import FilesOut, UploadOut, errors, ok
from gsv_service.errors import TooLarge
from gsv_service.files import LISTED_FOLDERS, RangeNotSatisfiable, check_range, find_download, list_files
from gsv_service.task_guard import task_row_held
from gsv_service.upload_limits import allowance
from gsv_service.uploads import receive_upload

router = APIRouter(prefix="/api/v1", tags=["files"])

_UPLOAD_DOC = {"requestBody": {"content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {
        "file": {"type": "string", "format": "binary", "description": "one file"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "several files"}}}, "example": ex.UPLOAD_REQUEST}}}}
_FILE = {"*/*": {"schema": {"type": "string", "format": "binary"}}}  # the file's own type: audio/x-wav, ...
_DOWNLOAD_DOC: dict[int | str, dict[str, Any]] = {200: {"description": "the file, with its own content type (Range requests answer 206)",
                       "content": _FILE},
                 206: {"description": "Partial Content: the byte range asked for (several: multipart/byteranges)",
                       "content": _FILE}}


@router.post("/task/{task_id}/files/upload", openapi_extra=_UPLOAD_DOC, response_model=UploadOut,
             responses={**ok(ex.UPLOAD), **errors(400, 404, 409, 413, 415, 422)})
async def upload(task_id: str, request: Request, svc: ServiceDep, disk: DiskDep,
                 folder: Annotated[str | None, Query(description="input_audio or input_transcripts; "
                                                     "default: by file type")] = None) -> Response:
    """Upload recordings (or transcripts) as multipart field `file` or `files`. Streamed to disk;
    413 above GSV_MAX_UPLOAD_MB, GSV_MAX_UPLOAD_FILES files, or what is left of the task's or the
    service's disk budget (GSV_MAX_TASK_MB, GSV_MAX_TOTAL_MB); only a safe base name is kept; 404 if
    the task is deleted before the upload completes (nothing is kept)."""
    task = await run_in_threadpool(svc.get, task_id)  # a store read: never on the event loop
    limit = svc.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise TooLarge(f"upload of {int(declared) // (1024 * 1024)} MiB is over the limit of "
                       f"{limit // (1024 * 1024)} MiB (GSV_MAX_UPLOAD_MB)")
    svc.ensure_upload_allowed(task)
    ws = await run_in_threadpool(svc.workspace, task)
    allow = await run_in_threadpool(allowance, svc.settings, disk, task.id)  # may walk the folders
    if declared and declared.isdigit() and int(declared) > allow.max_bytes + 1024 * 1024:
        raise TooLarge(allow.over_limit)
    try:
        stored = await receive_upload(request.stream(), request.headers.get("content-type"), ws,
                                      allow.max_bytes, folder, max_files=allow.max_files,
                                      over_limit=allow.over_limit,
                                      hold=lambda: task_row_held(svc.store.db, task.id))
    finally:
        disk.forget(task.id)  # its files changed: the next upload measures afresh
    names = ", ".join(s["filename"] for s in stored)
    first = stored[0]
    return JSON({"message": f"uploaded {len(stored)} file(s): {names}", "task_id": task_id,
                 "filename": first["filename"], "size": first["size"], "folder": first["folder"],
                 "path": first["path"], "files": stored})


@router.get("/task/{task_id}/files", response_model=FilesOut, responses={**ok(ex.FILES), **errors(400, 404)})
def files(task_id: str, svc: ServiceDep,
          folder: Annotated[str | None, Query(description="only this folder (default: all)",
                                              json_schema_extra={"enum": list(LISTED_FOLDERS)})] = None) -> Response:
    """Files of the task by folder (name, relative path, size, modified time)."""
    task = svc.get(task_id)
    return JSON({"task_id": task_id, "folders": list_files(svc.workspace(task), folder)})


@router.get("/task/{task_id}/files/download/{path:path}", response_class=FileResponse,
            responses={**_DOWNLOAD_DOC, **errors(400, 404, 416)})
def download(task_id: str, path: str, svc: ServiceDep, request: Request) -> Response:
    """Download by bare name (searched: output, weights, experiment, audio stages back to the
    uploads) or by relative path (e.g. sliced/x.wav). Honours Range (206 Partial Content), so
    players can seek; 416 for a range past the end."""
    task = svc.get(task_id)
    target = find_download(svc.workspace(task), path)
    try:
        stat = check_range(target, request.headers.get("range"), "if-range" in request.headers)
    except RangeNotSatisfiable as e:
        return JSON({"detail": e.detail}, status_code=416, headers={"Content-Range": f"bytes */{e.size}"})
    return FileResponse(target, filename=target.name, stat_result=stat)
