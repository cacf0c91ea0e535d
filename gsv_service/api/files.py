"""Files of a task: upload (streamed), list, download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from gsv_service.api.deps import JSON, ServiceDep
from gsv_service.errors import TooLarge
from gsv_service.files import find_download, list_files
from gsv_service.uploads import receive_upload

router = APIRouter(prefix="/api/v1", tags=["files"])

_UPLOAD_DOC = {"requestBody": {"content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {
        "file": {"type": "string", "format": "binary", "description": "one file"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "several files"}}}}}}}


@router.post("/task/{task_id}/files/upload", openapi_extra=_UPLOAD_DOC)
async def upload(task_id: str, request: Request, svc: ServiceDep,
                 folder: Annotated[str | None, Query(description="input_audio or input_transcripts; "
                                                     "default: by file type")] = None):
    """Upload recordings (or transcripts) as multipart field `file` or `files`. Streamed to disk;
    413 above GSV_MAX_UPLOAD_MB; only a safe base name is kept."""
    task = svc.get(task_id)
    limit = svc.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise TooLarge(f"upload of {int(declared) // (1024 * 1024)} MiB is over the limit of "
                       f"{limit // (1024 * 1024)} MiB (GSV_MAX_UPLOAD_MB)")
    svc.ensure_upload_allowed(task)
    stored = await receive_upload(request.stream(), request.headers.get("content-type"),
                                  svc.workspace(task), limit, folder)
    names = ", ".join(s["filename"] for s in stored)
    first = stored[0]
    return JSON({"message": f"uploaded {len(stored)} file(s): {names}", "task_id": task_id,
                 "filename": first["filename"], "size": first["size"], "folder": first["folder"],
                 "path": first["path"], "files": stored})


@router.get("/task/{task_id}/files")
def files(task_id: str, svc: ServiceDep, folder: str | None = None):
    """Files of the task by folder (name, relative path, size, modified time)."""
    task = svc.get(task_id)
    return JSON({"task_id": task_id, "folders": list_files(svc.workspace(task), folder)})


@router.get("/task/{task_id}/files/download/{path:path}")
def download(task_id: str, path: str, svc: ServiceDep):
    """Download by bare name (searched: output, weights, experiment, audio stages back to the
    uploads) or by relative path (e.g. sliced/x.wav)."""
    task = svc.get(task_id)
    target = find_download(svc.workspace(task), path)
    return FileResponse(target, filename=target.name)
