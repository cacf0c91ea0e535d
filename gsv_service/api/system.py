"""Service-level endpoints: health, engine status, the step registry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from gsv_service import __version__
from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, DiskDep, DoctorDep, ServiceDep
from gsv_service.api.responses import EngineOut, HealthOut, StepOut, errors, ok
from gsv_service.auth.principal import principal_of
from gsv_service.doctor import DoctorReport
from gsv_service.engine import INSTALL_COMMAND, PINNED_COMMIT, VERSIONS, ffmpeg_path, visible_gpus
from gsv_service.steps.registry import STEPS
from gsv_service.tasks import TaskService
from gsv_service.task_config import Language, ModelVersion, TaskConfig

router = APIRouter(prefix="/api/v1", tags=["service"])


def _engine_status(svc: TaskService) -> dict[str, Any]:
    gpus = visible_gpus(svc.settings)
    base: dict[str, Any] = {"pinned_commit": PINNED_COMMIT, "model_versions": list(VERSIONS), "gpus": gpus,
            "device": "cuda" if gpus else "cpu", "ffmpeg": ffmpeg_path()}
    if svc.engine is None:
        base.update(found=False, root=None, install_command=INSTALL_COMMAND,
                    hint=f"no engine: the 4 audio steps run (ASR with transcripts you upload, method "
                         f"'provided'); to enable the 7 engine steps, install it with {INSTALL_COMMAND}, or "
                         "set GSV_ROOT to a GPT-SoVITS checkout and GSV_PYTHON to its interpreter, and "
                         "restart the service")
        return base
    base.update(svc.engine.status())
    return base


@router.get("/health", response_model=HealthOut, responses={
    **ok(ex.HEALTH), 503: {"model": HealthOut, "description": "the database does not answer (status degraded)",
                           "content": {"application/json": {"example": ex.HEALTH_DOWN}}}})
def health(svc: ServiceDep, disk: DiskDep, request: Request) -> Response:
    store = svc.store_health()
    eng = _engine_status(svc)
    if principal_of(request) is None:  # keys exist and none was sent: open, so nothing private
        store["url"], eng["root"] = "(hidden: send an API key)", None
    return JSON({"status": "ok" if store["ok"] else "degraded", "version": __version__, "store": store,
                 "engine": {"found": eng["found"], "root": eng["root"], "gpus": eng["gpus"],
                            "ffmpeg": eng["ffmpeg"] is not None},
                 "disk": disk.service_view()},
                status_code=200 if store["ok"] else 503)


@router.get("/engine", response_model=EngineOut, responses=ok(ex.ENGINE))
def engine(svc: ServiceDep) -> Response:
    """The GPT-SoVITS checkout: found or not, scripts, pretrained models per version, GPUs, ffmpeg."""
    return JSON(_engine_status(svc))


_DEFAULTS = TaskConfig()


@router.get("/engine/doctor", response_model=DoctorReport, responses={**ok(ex.DOCTOR), **errors(422)})
def doctor(doc: DoctorDep,
           version: Annotated[ModelVersion, Query(description="model version in use: its missing "
                                                  "pretrained files fail, other versions' warn")] = _DEFAULTS.model_version,
           language: Annotated[Language, Query(description="task language: zh needs G2PW, en NLTK "
                                               "data")] = _DEFAULTS.language,
           batch_size: Annotated[int, Query(ge=1, le=256, description="compared with each GPU's free "
                                            "memory")] = _DEFAULTS.batch_size,
           refresh: Annotated[bool, Query(description="probe the engine's interpreter again (seconds) "
                                          "instead of using the cached result")] = False) -> DoctorReport:
    """Is this installation ready to train? Every check with ok | warn | fail, what was found and
    the fix in one sentence; engine steps answer 424 with the fix of a failing check they need."""
    return doc.report(version, language, batch_size, refresh)


@router.get("/steps", response_model=list[StepOut], responses=ok(ex.STEPS))
def steps() -> Response:
    """The 11 steps in order, with inputs, outputs, engine/GPU needs and params as JSON Schema."""
    return JSON([dict(order=i + 1, **s.describe()) for i, s in enumerate(STEPS)])
