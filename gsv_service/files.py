"""Listing and finding a task's files for download (paths checked against the task folder)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from gsv_service.errors import BadRequest, NotFound
from gsv_service.workspace import PathRejected, Workspace, safe_name

LISTED_FOLDERS = ("input_audio", "input_transcripts", "converted_wav", "sliced", "denoised", "transcripts",
                  "experiments", "weights", "output", "configs", "logs")
MAX_LISTED = 10_000


def _entry(p: Path, root: Path) -> dict:
    st = p.stat()
    return {"name": p.name, "path": p.relative_to(root).as_posix(), "size": st.st_size,
            "modified": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()}


def list_files(ws: Workspace, folder: str | None = None) -> dict[str, list[dict]]:
    if folder is not None and folder not in LISTED_FOLDERS:
        raise BadRequest(f"unknown folder {folder[:40]!r}; folders are: {', '.join(LISTED_FOLDERS)}")
    out: dict[str, list[dict]] = {}
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
