"""Recording where the engine is: GSV_* keys written into the service's .env, so the next start
finds the engine. Other lines (comments, other keys, a user's own settings) are kept as they are;
the file is replaced atomically, so a crash never leaves half a .env."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _quote(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_./:@+,-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_keys(path: Path) -> dict[str, str]:
    """The keys a .env sets (last one wins), values unquoted as python-dotenv reads them."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _KEY.match(line)
        if not m:
            continue
        value = line[m.end():].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[m[1]] = value
    return out


def update_env_file(path: Path, values: Mapping[str, str | None]) -> list[str]:
    """Set (or, for None, remove) `values` in the .env at `path`. Returns the keys that changed."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    before = read_keys(path)
    changed = [k for k, v in values.items() if before.get(k) != v]
    if not changed:
        return []
    kept: list[str] = []
    written: set[str] = set()
    for line in lines:
        m = _KEY.match(line)
        key = m[1] if m else None
        if key is not None and key in values:
            value = values[key]
            if key in written or value is None:
                continue  # drop duplicates and removed keys
            kept.append(f"{key}={_quote(value)}")
            written.add(key)
        else:
            kept.append(line)
    new = [f"{k}={_quote(v)}" for k, v in values.items() if v is not None and k not in written]
    if new:
        kept += ["# written by the engine installer (python -m gsv_service.engine_install)", *new]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".env.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(kept) + "\n")
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return changed
