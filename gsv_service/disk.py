"""Disk use of the tasks, for GET /task/{id} and /health.

Clients poll GET /task/{id} many times a second, and a trained task holds thousands of files, so a
measure is reused for `ttl_s` seconds (GSV_DISK_USAGE_TTL_S) and forgotten when a step run of this
process ends. While one thread walks a folder, others answer with the previous measure instead of
walking it too. Sizes are apparent file sizes (the sum of st_size; symlinks not followed).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gsv_service.workspace import check_task_id

_TOTAL = ""  # the cache key of the whole task_root (no task id is empty)


def folder_bytes(folder: Path) -> int:
    """Sum of the sizes of the regular files under folder; what vanishes during the walk is skipped."""
    total, stack = 0, [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:  # gone or unreadable: counts as empty
            continue
    return total


def _mb(mb: int | None) -> int | None:
    return None if mb is None else mb * 1024 * 1024


class DiskUsage:
    def __init__(self, task_root: Path, ttl_s: float, task_budget_mb: int | None = None,
                 total_budget_mb: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.task_root = Path(task_root)
        self.ttl_s = ttl_s
        self.task_budget_bytes = _mb(task_budget_mb)
        self.total_budget_bytes = _mb(total_budget_mb)
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, int]] = {}
        self._walking: dict[str, threading.Lock] = {}

    def cached(self, task_id: str) -> int | None:
        """A fresh measure of the task without walking anything (None: a walk is due)."""
        hit = self._cache.get(task_id)
        return hit[1] if hit and self._clock() - hit[0] < self.ttl_s else None

    def task_bytes(self, task_id: str) -> int:
        return self._measure(check_task_id(task_id), self.task_root / task_id)

    def total_bytes(self) -> int:
        return self._measure(_TOTAL, self.task_root)

    def forget(self, task_id: str) -> None:
        """Its files changed (a step ended, an upload, a delete): measure it, and the total, afresh."""
        with self._lock:
            self._cache.pop(task_id, None)
            self._cache.pop(_TOTAL, None)
            self._walking.pop(task_id, None)

    def free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.task_root).free
        except OSError:
            return None

    def _measure(self, key: str, folder: Path) -> int:
        with self._lock:
            hit = self._cache.get(key)
            walking = self._walking.setdefault(key, threading.Lock())
        if hit and self._clock() - hit[0] < self.ttl_s:
            return hit[1]
        if not walking.acquire(blocking=hit is None):
            assert hit is not None  # a blocking acquire always succeeds
            return hit[1]  # another thread is walking it: the previous measure meanwhile
        try:
            again = self._cache.get(key)
            if again and again is not hit and self._clock() - again[0] < self.ttl_s:
                return again[1]
            value = folder_bytes(folder)
            with self._lock:
                self._cache[key] = (self._clock(), value)
            return value
        finally:
            walking.release()

    def task_view(self, used: int) -> dict[str, int | None]:
        return {"used_bytes": used, "budget_bytes": self.task_budget_bytes}

    def service_view(self) -> dict[str, int | None]:
        return {"used_bytes": self.total_bytes(), "budget_bytes": self.total_budget_bytes,
                "free_bytes": self.free_bytes()}
