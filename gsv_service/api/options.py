"""What a user may choose: training settings per model version, languages, ASR and denoise methods."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from gsv_service.api import examples as ex
from gsv_service.api.deps import ServiceDep
from gsv_service.api.responses import ok
from gsv_service.options import Options, options

router = APIRouter(prefix="/api/v1", tags=["service"])


@router.get("/options", response_model=Options, responses=ok(ex.OPTIONS))
async def get_options(svc: ServiceDep) -> Options:
    """Per model version: batch size (from this machine's GPU memory, as upstream's web UI computes
    it), epochs, save frequency, text learning-rate weight, with the web UI's defaults and ranges and
    the limits this service accepts; the languages; the ASR and denoise methods available now."""
    return await run_in_threadpool(options, svc.settings, svc.engine)
