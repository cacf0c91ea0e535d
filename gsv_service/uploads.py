"""Stream a multipart upload straight into a task folder: never whole in memory, size-limited,
safe names only, all files of a request kept or none."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header

from gsv_service.errors import BadRequest, TooLarge, UnsupportedMedia
from gsv_service.workspace import (AUDIO_EXTS, INPUT_DIR, INPUT_TEXT_DIR, TRANSCRIPT_EXTS, UPLOAD_FOLDERS,
                                   PathRejected, Workspace, safe_name)

FILE_FIELDS = ("file", "files")
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
    headers: dict = field(default_factory=dict)
    tmp: Path | None = None
    final: Path | None = None
    folder: str = ""
    fh: object = None
    size: int = 0
    buf: bytearray = field(default_factory=bytearray)


class _Receiver:
    def __init__(self, ws: Workspace, max_bytes: int, folder: str | None):
        self.ws, self.max_bytes, self.folder = ws, max_bytes, folder
        self.parts: list[_Part] = []
        self.cur: _Part | None = None
        self.total = 0
        self._hf = b""
        self._hv = b""

    # --- parser callbacks (synchronous; file writes happen in flush()) ---
    def on_part_begin(self) -> None:
        self.cur = _Part()

    def on_header_field(self, data, start, end) -> None:
        self._hf += data[start:end]

    def on_header_value(self, data, start, end) -> None:
        self._hv += data[start:end]

    def on_header_end(self) -> None:
        self.cur.headers[self._hf.decode("latin-1").lower()] = self._hv
        self._hf, self._hv = b"", b""

    def on_headers_finished(self) -> None:
        part = self.cur
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
        part.filename = name
        part.folder = folder_for(name, self.folder)
        target = self.ws.root / part.folder
        target.mkdir(parents=True, exist_ok=True)
        part.final = target / name
        part.tmp = target / f".upload-{uuid.uuid4().hex}.part"
        part.fh = open(part.tmp, "wb")
        self.parts.append(part)

    def on_part_data(self, data, start, end) -> None:
        part = self.cur
        n = end - start
        self.total += n
        if self.total > self.max_bytes:
            raise TooLarge(f"upload is larger than the limit of {self.max_bytes // (1024 * 1024)} MiB "
                           "(GSV_MAX_UPLOAD_MB); split it into several requests or raise the limit")
        if part.filename is None:
            if len(part.buf) + n > MAX_FIELD_BYTES:
                raise BadRequest(f"form field {part.field_name[:40]!r} is too long")
        part.buf += data[start:end]
        part.size += n if part.filename else 0

    def on_part_end(self) -> None:
        part = self.cur
        if part.filename is None and part.field_name == "folder" and self.folder is None:
            self.folder = part.buf.decode("utf-8", "replace").strip() or None

    def pending(self) -> list[tuple[object, bytes]]:
        out = []
        for p in self.parts:
            if p.fh is not None and p.buf:
                out.append((p.fh, bytes(p.buf)))
                p.buf.clear()
        return out

    def cleanup(self) -> None:
        for p in self.parts:
            if p.fh is not None and not p.fh.closed:
                p.fh.close()
            if p.tmp is not None and p.tmp.exists():
                p.tmp.unlink(missing_ok=True)


def _write_all(items) -> None:
    for fh, data in items:
        fh.write(data)


async def receive_upload(stream: AsyncIterator[bytes], content_type: str | None, ws: Workspace,
                         max_bytes: int, folder: str | None = None) -> list[dict]:
    ctype, opts = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or not opts.get(b"boundary"):
        raise UnsupportedMedia("send files as multipart/form-data in the field 'file' or 'files'")
    if folder is not None and folder not in UPLOAD_FOLDERS:
        raise BadRequest(f"folder {folder[:40]!r} is not an upload folder; use one of "
                         f"{', '.join(UPLOAD_FOLDERS)}")
    rx = _Receiver(ws, max_bytes, folder)
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
        stored = []
        for p in rx.parts:
            p.fh.close()
            replaced = p.final.exists()
            os.replace(p.tmp, p.final)
            stored.append({"filename": p.filename, "size": p.size, "folder": p.folder,
                           "path": f"{p.folder}/{p.filename}", "replaced": replaced})
        return stored
    except Exception as e:
        rx.cleanup()
        if isinstance(e, (BadRequest, TooLarge, UnsupportedMedia)):
            raise
        if type(e).__name__.endswith("ParseError") or isinstance(e, ValueError):
            raise BadRequest(f"malformed multipart body: {e}") from None
        raise
