"""How many engine processes a task may make the service start: its gpu_id (one feature shard per
id, times the step's parts_per_gpu) is checked against the GPUs, or the CPU, this service has.

Upstream's web UI spells two processes on GPU 0 as "0-0"; here each GPU is named once and
parts_per_gpu says how many processes each gets, so the count is explicit and bounded.
"""

from __future__ import annotations

import os

from gsv_service.engine import visible_gpus
from gsv_service.settings import Settings

PARTS_PER_GPU_MAX = 8  # FeatureParams.parts_per_gpu's own limit


class DeviceLimit(ValueError):
    """The task's gpu_id or a step's parts_per_gpu asks for more than this service has."""


def step_proc_cap(settings: Settings) -> tuple[int, str]:
    """(engine processes one step may start, where that number comes from)."""
    if settings.max_step_procs:
        return settings.max_step_procs, "GSV_MAX_STEP_PROCS"
    gpus = visible_gpus(settings)
    if gpus:
        return len(gpus) * PARTS_PER_GPU_MAX, f"{PARTS_PER_GPU_MAX} per GPU, {len(gpus)} GPU(s)"
    cores = max(2, os.cpu_count() or 1)
    return cores, f"no GPU: the {cores} CPU cores"


def check_gpu_id(gpu_ids: list[str], settings: Settings) -> None:
    """Each id once, each a GPU of this service (or, without GPUs, a CPU shard within the cap)."""
    dupes = sorted({g for g in gpu_ids if gpu_ids.count(g) > 1}, key=int)
    if dupes:
        raise DeviceLimit(f"gpu_id names {', '.join(dupes)} more than once; name each GPU once and set "
                          "the feature steps' parts_per_gpu for several processes per GPU")
    gpus = visible_gpus(settings)
    if gpus:
        unknown = [g for g in gpu_ids if g not in gpus]
        if unknown:
            raise DeviceLimit(f"gpu_id names GPU {', '.join(unknown)}, which this service does not have; "
                              f"its GPUs are {', '.join(gpus)} (GSV_GPUS): use ids from those, joined "
                              'by "-"')
        return
    cap, why = step_proc_cap(settings)
    allowed = [str(i) for i in range(cap)]
    unknown = [g for g in gpu_ids if g not in allowed]
    if unknown:
        raise DeviceLimit(f"this service has no GPU, so gpu_id only sets how many CPU processes a feature "
                          f"step starts: at most {cap} ({why}); use distinct ids from 0 to {cap - 1}, "
                          f'e.g. "0" or "0-1"')


def check_step_procs(n_ids: int, parts_per_gpu: int, settings: Settings) -> None:
    """A step's processes (gpu_id ids x parts_per_gpu) within the cap."""
    cap, why = step_proc_cap(settings)
    if n_ids * parts_per_gpu > cap:
        most = max(1, cap // max(1, n_ids))
        raise DeviceLimit(f"parts_per_gpu {parts_per_gpu} with {n_ids} id(s) in the task's gpu_id would "
                          f"start {n_ids * parts_per_gpu} engine processes; this service allows {cap} per "
                          f"step ({why}): use parts_per_gpu of at most {most}")
