"""How much one upload may bring: the request limit (GSV_MAX_UPLOAD_MB), what is left of the
task's disk budget (GSV_MAX_TASK_MB) and of all tasks' (GSV_MAX_TOTAL_MB), and the number of files
(GSV_MAX_UPLOAD_FILES). Each answer past a limit is a 413 that says which limit and what to do.

Disk use comes from gsv_service/disk.py (measured afresh after each upload and each step run).
Two uploads into one task at the same moment are each checked against the use before them: a
budget can be passed by at most what those concurrent requests bring.
"""

from __future__ import annotations

from dataclasses import dataclass

from gsv_service.disk import DiskUsage
from gsv_service.errors import TooLarge
from gsv_service.settings import Settings

MIB = 1024 * 1024


@dataclass(frozen=True)
class UploadAllowance:
    max_bytes: int
    max_files: int
    over_limit: str  # the 413 detail once the body passes max_bytes


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB"


def allowance(settings: Settings, disk: DiskUsage, task_id: str) -> UploadAllowance:
    """What an upload into the task may bring now (blocking: may walk the folders)."""
    limit = settings.max_upload_bytes
    message = (f"upload is larger than the limit of {settings.max_upload_mb} MiB (GSV_MAX_UPLOAD_MB); "
               "split it into several requests or raise the limit")
    budgets = []
    if settings.max_task_mb:
        budgets.append((settings.max_task_mb * MIB, disk.task_bytes(task_id), f"task {task_id} uses",
                        "GSV_MAX_TASK_MB", "upload into a new task, or raise GSV_MAX_TASK_MB"))
    if settings.max_total_mb:
        budgets.append((settings.max_total_mb * MIB, disk.total_bytes(), "all tasks together use",
                        "GSV_MAX_TOTAL_MB", "delete tasks you no longer need, or raise GSV_MAX_TOTAL_MB"))
    for budget, used, who_uses, name, todo in budgets:
        left = budget - used
        if left <= 0:
            raise TooLarge(f"{who_uses} {_mib(used)} of the {_mib(budget)} disk budget ({name}); nothing "
                           f"more can be uploaded: {todo}")
        if left < limit:
            limit = left
            message = (f"this upload is larger than what is left of the disk budget: {who_uses} "
                       f"{_mib(used)} of {_mib(budget)} ({name}), {_mib(left)} left; upload less, or {todo}")
    return UploadAllowance(limit, settings.max_upload_files, message)
