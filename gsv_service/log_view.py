"""What the logs endpoint shows of a run's log file: its last lines (`tail`) or bytes
(`tail_bytes`), without the structured `@@gsv {...}` lines that children print for the service
(gsv_service/jobs/protocol.py; the service reads them as progress, a person has no use for them).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from gsv_service.jobs.protocol import PREFIX

DEFAULT_TAIL_BYTES = 64 * 1024   # neither tail nor tail_bytes: the last 64 KiB, as before
MAX_SCAN_BYTES = 16 * 1024 * 1024  # `tail` lines are looked for in the last 16 MiB at most
_CHUNK = 256 * 1024
_PREFIX = PREFIX.encode()


def is_protocol(line: str) -> bool:
    """A structured line for the service (each redraw of a \\r progress line counted on its own)."""
    return line.startswith(PREFIX)


def _readable(raw: bytes) -> bytes | None:
    """The line without its protocol parts, or None when nothing else is on it."""
    if _PREFIX not in raw:
        return raw
    keep = [seg for seg in raw.split(b"\r") if not seg.startswith(_PREFIX)]
    return b"\r".join(keep) if any(keep) else None


def tail_text(path: Path, lines: int | None = None, max_bytes: int | None = None,
              end: int | None = None) -> tuple[str, bool]:
    """The log's last `lines` lines within its last `max_bytes` bytes (up to byte `end`), without
    protocol lines (which `lines` does not count); and whether earlier log text was left out.
    Neither given: the last 64 KiB. A first line cut by the byte limit is left out, unless it is
    all there is."""
    if lines is None and max_bytes is None:
        max_bytes = DEFAULT_TAIL_BYTES
    limit = min(MAX_SCAN_BYTES if max_bytes is None else max_bytes, MAX_SCAN_BYTES)
    try:
        size = path.stat().st_size if end is None else end
        with open(path, "rb") as f:
            pieces, pos = _read_back(f, size, max(0, size - limit), lines)
    except FileNotFoundError:
        return "", False
    body = pieces[1:] if pos > 0 and len(pieces) > 1 else pieces
    last = body.pop()  # what follows the last newline: b"" or a line still being written
    out = [r for r in map(_readable, body) if r is not None]
    partial = _readable(last) if last else None
    truncated = pos > 0
    count = len(out) + (partial is not None)
    if lines is not None and count > lines:
        out, truncated = out[count - lines:], True
    text = b"".join(x + b"\n" for x in out) + (partial or b"")
    return text.decode("utf-8", "replace"), truncated


def _read_back(f: BinaryIO, size: int, floor: int, lines: int | None) -> tuple[list[bytes], int]:
    """The bytes from `floor` (or from where `lines` readable whole lines are found) to `size`,
    split at newlines, and where they start. Reads backwards in chunks."""
    pieces, pos, found = [b""], size, 0
    while pos > floor and (lines is None or found < lines):
        step = min(_CHUNK, pos - floor)
        pos -= step
        f.seek(pos)
        new = (f.read(step) + pieces[0]).split(b"\n")
        whole = new[1:] if len(pieces) > 1 else new[1:-1]  # the last piece of all is not a whole line
        found += sum(1 for x in whole if _readable(x) is not None)
        pieces = new + pieces[1:]
    return pieces, pos
