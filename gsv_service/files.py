"""Listing and finding a task's files for download (paths checked against the task folder), and
checking a download's Range header."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gsv_service.errors import BadRequest, NotFound, ServiceError
from gsv_service.workspace import PathRejected, Workspace, safe_name

LISTED_FOLDERS = ("input_audio", "input_transcripts", "converted_wav", "sliced", "denoised", "transcripts",
                  "experiments", "weights", "output", "configs", "logs")
MAX_LISTED = 10_000


def _entry(p: Path, root: Path) -> dict[str, Any]:
    st = p.stat()
    return {"name": p.name, "path": p.relative_to(root).as_posix(), "size": st.st_size,
            "modified": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()}


def list_files(ws: Workspace, folder: str | None = None) -> dict[str, list[dict[str, Any]]]:
    if folder is not None and folder not in LISTED_FOLDERS:
        raise BadRequest(f"unknown folder {folder[:40]!r}; folders are: {', '.join(LISTED_FOLDERS)}")
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ([folder] if folder else LISTED_FOLDERS):
        d = ws.root / name
        if not d.is_dir():
            out[name] = []
            continue
        files = []
        for p in sorted(d.rglob("*")):
            if p.is_file() and not p.is_symlink() and not p.name.startswith("."):
                files.append(_entry(p, ws.root))
                if len(files) >= MAX_LISTED:
                    break
        out[name] = files
    return out


def find_download(ws: Workspace, name_or_path: str) -> Path:
    """A bare name is searched (outputs, weights, experiment, audio stages back to the uploads);
    a relative path names one file exactly. Either way it stays inside the task folder."""
    try:
        if "/" in name_or_path.replace("\\", "/"):
            target = ws.resolve_inside(name_or_path)
            if target.is_dir():
                raise BadRequest(f"{name_or_path!r} is a folder; name a file (list them with GET "
                                 f"/api/v1/task/{ws.root.name}/files)")
            if not target.is_file():
                raise NotFound(f"file {name_or_path!r} not found in this task")
            return target
        name = safe_name(name_or_path)
        if (ws.root / name).is_dir():
            raise BadRequest(f"{name!r} is a folder; name a file (list them with GET "
                             f"/api/v1/task/{ws.root.name}/files)")
        found = ws.find_by_name(name)
    except PathRejected as e:
        raise BadRequest(str(e)) from None
    if found is None:
        raise NotFound(f"file {name_or_path!r} not found in this task's output, weights, experiment or "
                       f"audio folders; list files with GET /api/v1/task/{ws.root.name}/files")
    return found


_RANGE_PART = re.compile(r"^\s*(?:(\d{1,19})-(\d{0,19})|-(\d{1,19}))\s*$")
MAX_RANGES = 100


class RangeNotSatisfiable(ServiceError):
    """416: no requested byte range lies inside the file; `size` goes into Content-Range."""

    status_code = 416

    def __init__(self, detail: str, size: int):
        super().__init__(detail)
        self.size = size


def check_range(path: Path, header: str | None, if_range: bool = False) -> os.stat_result:
    """The file's stat, after refusing a Range header it cannot satisfy, with a message (the
    download itself, 206 with the bytes asked for, is Starlette's FileResponse): 400 when it is not
    `bytes=` ranges, 416 when a range starts at or past the end. Browsers send `bytes=N-` to seek
    in audio. With If-Range a stale validator means the whole file, so FileResponse decides."""
    st = path.stat()
    if header is not None and not if_range:
        _check_spec(header, st.st_size)
    return st


def _check_spec(header: str, size: int) -> None:
    unit, _, spec = header.partition("=")
    parts = spec.split(",")
    if unit.strip().lower() != "bytes" or not spec.strip() or len(parts) > MAX_RANGES:
        raise BadRequest(f"Range {header[:60]!r} is not understood: send bytes=START-END, bytes=START- "
                         f"or bytes=-LAST (at most {MAX_RANGES} ranges)")
    for part in parts:
        m = _RANGE_PART.match(part)
        if not m:
            raise BadRequest(f"Range part {part.strip()[:40]!r} is not START-END, START- or -LAST")
        if m[3] is not None:
            if int(m[3]) == 0 or size == 0:
                raise RangeNotSatisfiable(f"Range {part.strip()!r} asks for no bytes of this "
                                          f"{size}-byte file", size)
            continue
        start, end = int(m[1]), int(m[2]) if m[2] else None
        if end is not None and end < start:
            raise BadRequest(f"Range part {part.strip()!r} ends before it starts")
        if start >= size:
            raise RangeNotSatisfiable(f"Range {part.strip()!r} starts at or past the end of this "
                                      f"{size}-byte file", size)
