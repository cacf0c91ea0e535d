"""Structured lines a child prints for the parent: a fixed prefix followed by one JSON object.

    @@gsv {"event": "progress", "done": 3, "total": 10, "message": "..."}
    @@gsv {"event": "item_error", "item": "a.mp3", "error": "not an audio file"}
    @@gsv {"event": "result", ...}
"""

from __future__ import annotations

import json
import sys
from typing import Any

PREFIX = "@@gsv "


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(PREFIX + json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def parse(line: str) -> dict[str, Any] | None:
    """The event in a log line, or None for ordinary output."""
    if not line.startswith(PREFIX):
        return None
    try:
        obj = json.loads(line[len(PREFIX):])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and "event" in obj else None
