"""Stream a multipart upload straight into a task folder: never whole in memory, size-limited,
a bounded number of files (each file open only while its bytes are written), safe names only,
all files of a request kept or none, and none at all once the task is deleted (task_guard)."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header

from gsv_service.errors import BadRequest, NotFound, TooLarge, UnsupportedMedia
from gsv_service.workspace import (AUDIO_EXTS, INPUT_DIR, INPUT_TEXT_DIR, TRANSCRIPT_EXTS, UPLOAD_FOLDERS,
                                   PathRejected, Workspace, safe_name)

FILE_FIELDS = ("file", "files")
MAX_FILES = 1000  # GSV_MAX_UPLOAD_FILES's default
# Holds the task's row while the files are moved into place; yields whether the task still exists.
Hold = Callable[[], AbstractContextManager[bool]]
FLUSH_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 4096


def folder_for(name: str, folder: str | None) -> str:
    ext = Path(name).suffix.lower()
    if folder is not None:
        if folder not in UPLOAD_FOLDERS:
            raise BadRequest(f"folder {folder[:40]!r} is not an upload folder; use one of "
                             f"{', '.join(UPLOAD_FOLDERS)}")
        if ext not in UPLOAD_FOLDERS[folder]:
            raise UnsupportedMedia(f"file {name!r}: type {ext or '(none)'} cannot go to {folder}/; "
                                   f"accepted there: {', '.join(sorted(UPLOAD_FOLDERS[folder]))}")
        return folder
    if ext in AUDIO_EXTS:
        return INPUT_DIR
    if ext in TRANSCRIPT_EXTS:
        return INPUT_TEXT_DIR
    raise UnsupportedMedia(f"file {name!r}: type {ext or '(none)'} is not accepted; upload audio or video "
                           f"({', '.join(sorted(AUDIO_EXTS))}) or transcripts "
                           f"({', '.join(sorted(TRANSCRIPT_EXTS))})")


@dataclass
class _Part:
    field_name: str = ""
    filename: str | None = None
    headers: dict[str, bytes] = field(default_factory=dict)
    tmp: Path | None = None
    final: Path | None = None
    folder: str = ""
    size: int = 0
    buf: bytearray = field(default_factory=bytearray)
    ended: bool = False    # all its bytes have arrived
    written: bool = False  # ... and are in its temp file


class _Receiver:
    def __init__(self, ws: Workspace, max_bytes: int, folder: str | None, max_files: int = MAX_FILES,
                 over_limit: str | None = None):
        self.ws, self.max_bytes, self.folder, self.max_files = ws, max_bytes, folder, max_files
        self.over_limit = over_limit or (f"upload is larger than the limit of {max_bytes // (1024 * 1024)} "
                                         "MiB (GSV_MAX_UPLOAD_MB); split it into several requests or "
                                         "raise the limit")
        self.parts: list[_Part] = []
        self.cur: _Part | None = None
        self.total = 0
        self._hf = b""
        self._hv = b""

    def _part(self) -> _Part:
        """The part being parsed: the parser begins every part before any other callback for it."""
        assert self.cur is not None
        return self.cur

    # --- parser callbacks (synchronous; file writes happen in flush()) ---
    def on_part_begin(self) -> None:
        self.cur = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hf += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hv += data[start:end]

    def on_header_end(self) -> None:
        self._part().headers[self._hf.decode("latin-1").lower()] = self._hv
        self._hf, self._hv = b"", b""

    def on_headers_finished(self) -> None:
        part = self._part()
        _, opts = parse_options_header(part.headers.get("content-disposition", b""))
        part.field_name = opts.get(b"name", b"").decode("utf-8", "replace")
        raw_name = opts.get(b"filename")
        if raw_name is None:
            return  # a plain form field
        if part.field_name not in FILE_FIELDS:
            raise BadRequest(f"file field {part.field_name[:40]!r} is not accepted; send files as "
                             "'file' (one) or 'files' (many)")
        try:
            name = safe_name(raw_name.decode("utf-8", "replace"))
        except PathRejected as e:
            raise BadRequest(str(e)) from None
        if len(self.parts) >= self.max_files:
            raise TooLarge(f"upload has more than {self.max_files} files (GSV_MAX_UPLOAD_FILES); send "
                           f"them in several requests of at most {self.max_files} files each")
        part.filename = name
        part.folder = folder_for(name, self.folder)
        target = self.ws.root / part.folder
        target.mkdir(parents=True, exist_ok=True)
        part.final = target / name
        part.tmp = target / f".upload-{uuid.uuid4().hex}.part"
        self.parts.append(part)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part()
        n = end - start
        self.total += n
        if self.total > self.max_bytes:
            raise TooLarge(self.over_limit)
        if part.filename is None:
            if len(part.buf) + n > MAX_FIELD_BYTES:
                raise BadRequest(f"form field {part.field_name[:40]!r} is too long")
        part.buf += data[start:end]
        part.size += n if part.filename else 0

    def on_part_end(self) -> None:
        part = self._part()
        part.ended = True
        if part.filename is None and part.field_name == "folder" and self.folder is None:
            self.folder = part.buf.decode("utf-8", "replace").strip() or None

    def pending(self) -> list[tuple[Path, bytes]]:
        """Bytes to append to each temp file; a finished part comes up once more (maybe with no
        bytes, so that an empty file exists too) and then never again."""
        out: list[tuple[Path, bytes]] = []
        for p in self.parts:
            if p.written or not (p.buf or p.ended):
                continue
            assert p.tmp is not None  # set before a file part joins self.parts
            out.append((p.tmp, bytes(p.buf)))
            p.buf.clear()
            p.written = p.ended
        return out

    def cleanup(self) -> None:
        for p in self.parts:
            if p.tmp is not None:
                p.tmp.unlink(missing_ok=True)


def _write_all(items: list[tuple[Path, bytes]]) -> None:
    # Opened per batch and closed again: however many files a request holds, one is open at a time.
    for tmp, data in items:
        with open(tmp, "ab") as fh:
            fh.write(data)


def _move_into_place(parts: list[_Part], hold: Hold | None) -> list[dict[str, Any]]:
    """Rename every temp file to its name, while the task's row is held (none if it is gone)."""
    stored: list[dict[str, Any]] = []
    with hold() if hold else nullcontext(True) as alive:
        if not alive:
            raise _TaskGone
        for p in parts:
            assert p.tmp is not None and p.final is not None  # set before a file part joins parts
            replaced = p.final.exists()
            os.replace(p.tmp, p.final)
            stored.append({"filename": p.filename, "size": p.size, "folder": p.folder,
                           "path": f"{p.folder}/{p.filename}", "replaced": replaced})
    return stored


class _TaskGone(Exception):
    """The task was deleted while its upload streamed."""


async def receive_upload(stream: AsyncIterator[bytes], content_type: str | None, ws: Workspace,
                         max_bytes: int, folder: str | None = None, *, max_files: int = MAX_FILES,
                         over_limit: str | None = None, hold: Hold | None = None) -> list[dict[str, Any]]:
    """Store the request's files in the task folder. `over_limit`: the 413 detail past max_bytes;
    `hold`: holds the task's row while the files are moved into place (task_guard)."""
    ctype, opts = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or not opts.get(b"boundary"):
        raise UnsupportedMedia("send files as multipart/form-data in the field 'file' or 'files'")
    if folder is not None and folder not in UPLOAD_FOLDERS:
        raise BadRequest(f"folder {folder[:40]!r} is not an upload folder; use one of "
                         f"{', '.join(UPLOAD_FOLDERS)}")
    rx = _Receiver(ws, max_bytes, folder, max_files, over_limit)
    parser = MultipartParser(opts[b"boundary"], {
        "on_part_begin": rx.on_part_begin, "on_part_data": rx.on_part_data, "on_part_end": rx.on_part_end,
        "on_header_field": rx.on_header_field, "on_header_value": rx.on_header_value,
        "on_header_end": rx.on_header_end, "on_headers_finished": rx.on_headers_finished})
    try:
        buffered = 0
        async for chunk in stream:
            parser.write(chunk)
            buffered += len(chunk)
            if buffered >= FLUSH_BYTES:  # write in a thread so status requests are never held up
                await anyio.to_thread.run_sync(_write_all, rx.pending())
                buffered = 0
        parser.finalize()
        await anyio.to_thread.run_sync(_write_all, rx.pending())
        if not rx.parts:
            raise BadRequest("no file in the request; send files in the multipart field 'file' or 'files'")
        return await anyio.to_thread.run_sync(_move_into_place, rx.parts, hold)
    except Exception as e:
        rx.cleanup()
        raise await _failure(e, ws, hold) from None


async def _failure(e: Exception, ws: Workspace, hold: Hold | None) -> Exception:
    """The error to answer an upload that did not complete with."""
    if isinstance(e, (BadRequest, TooLarge, UnsupportedMedia)):
        return e
    gone = isinstance(e, _TaskGone) or (isinstance(e, OSError) and hold is not None
                                        and not await anyio.to_thread.run_sync(_exists, hold))
    if gone:  # the delete removed the folder; what this upload made there since goes too
        await anyio.to_thread.run_sync(ws.remove)
        return NotFound("the task was deleted while this upload was in progress; nothing was kept")
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return TooLarge("the server's disk is full; nothing of this upload was kept. Free space (delete "
                        "tasks you no longer need) and upload again")
    if type(e).__name__.endswith("ParseError") or isinstance(e, ValueError):
        return BadRequest(f"malformed multipart body: {e}")
    return e


def _exists(hold: Hold) -> bool:
    with hold() as alive:
        return alive
