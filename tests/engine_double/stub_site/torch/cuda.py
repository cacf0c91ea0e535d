"""Stub of torch.cuda. Its devices come from DOUBLE_CUDA, FREE/TOTAL GiB each, e.g. "20/24,3.5/24";
empty = no CUDA. Unset: 8 idle 80 GiB devices, so that tests scheduling on GSV_GPUS ids find them
(the double's scripts take CUDA_VISIBLE_DEVICES as the sign of CUDA, as upstream's do)."""

import os

_GIB = 1024 ** 3
_DEFAULT = ",".join(["80/80"] * 8)


def _devices():
    out = []
    for spec in os.environ.get("DOUBLE_CUDA", _DEFAULT).split(","):
        free, _, total = spec.strip().partition("/")
        if free and total:
            out.append((float(free), float(total)))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # as the driver does: only the listed devices, renumbered from 0
        out = [out[int(i)] for i in visible.split(",") if i.strip().isdigit() and int(i) < len(out)]
    return out


def is_available():
    return bool(_devices())


def device_count():
    return len(_devices())


def get_device_name(i):
    _devices()[i]
    return f"Double GPU {i}"


def mem_get_info(i):
    free, total = _devices()[i]
    return int(free * _GIB), int(total * _GIB)
