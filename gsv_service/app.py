"""Builds the FastAPI app from settings. Nothing runs at import: start-up work is in the lifespan."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gsv_service import __version__
from gsv_service.auth.access import TaskAccess
from gsv_service.auth.setup import install_security
from gsv_service.body_limit import BodyLimit
from gsv_service.doctor import Doctor
from gsv_service.engine import load_engine
from gsv_service.errors import ServiceError
from gsv_service.lifecycle import Lifecycle
from gsv_service.pipeline import PipelineService
from gsv_service.preflight import Preflight
from gsv_service.records import RunRecord
from gsv_service.runner import LocalRunner
from gsv_service.settings import Settings
from gsv_service.steps.registry import STEP_NAMES, WEIGHTS
from gsv_service.db import make_engine, migrate
from gsv_service.disk import DiskUsage
from gsv_service.retention import Retention
from gsv_service.store import Store
from gsv_service.tasks import TaskService
from gsv_service.view_cache import StoreVersion, ViewCache
from gsv_service.webhooks import Webhooks

log = logging.getLogger("gsv_service")


def _setup_logging(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    if any(getattr(h, "_gsv", False) for h in log.handlers):
        return
    handler = logging.handlers.RotatingFileHandler(log_dir / "service.log", maxBytes=20 * 1024 * 1024,
                                                   backupCount=5, encoding="utf-8")
    handler._gsv = True  # type: ignore[attr-defined]  # marks ours: create_app may run twice in one process
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg')}")
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_req: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": _validation_detail(exc), "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error; see logs/service.log"}, status_code=500)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    _setup_logging(Path(settings.log_dir))
    db = make_engine(settings.db_url)
    store, lifecycle = Store(db, STEP_NAMES), Lifecycle(db, WEIGHTS)
    runner = LocalRunner(store, lifecycle, settings, max_workers=settings.max_concurrent_runs)
    engine = load_engine(settings)  # the GPT-SoVITS checkout, or None
    doctor = Doctor(settings, engine)
    service = TaskService(settings, store, lifecycle, runner, engine, Preflight(settings, engine, doctor.probe))
    pipelines = PipelineService(service, lifecycle, settings.pipeline_parallel)
    webhooks = Webhooks(store, settings)
    store_version = StoreVersion(db)
    runner.on_finished(webhooks.run_finished)
    disk = DiskUsage(Path(settings.task_root).resolve(), settings.disk_usage_ttl_s, settings.max_task_mb,
                     settings.max_total_mb)

    def files_changed(run: RunRecord | None) -> None:
        if run is not None:
            disk.forget(run.task_id)  # measure its folder afresh

    runner.on_finished(files_changed)
    retention = Retention(db, settings.event_retention_days, settings.retention_interval_s)
    pipelines.on_finished(webhooks.pipeline_finished)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate(db)
        Path(settings.task_root).mkdir(parents=True, exist_ok=True)
        for run in runner.recover():
            log.warning("run %s (%s of task %s) was interrupted", run.id, run.step, run.task_id)
        for rec in pipelines.recover():
            log.warning("pipeline %s of task %s was interrupted", rec.id, rec.task_id)
        log.info("service started: store=%s engine=%s", db.url.get_backend_name(),
                 service.engine.root if service.engine else None)
        doctor.start()  # its summary lands in the log when the engine probe is done (seconds)
        webhooks.start()  # pending deliveries, an earlier process's included
        retention.start()  # compacts old events now, then every GSV_RETENTION_INTERVAL_S
        yield
        retention.stop()
        doctor.close()
        runner.shutdown()
        webhooks.stop()
        store_version.close()
        db.dispose()

    from gsv_service.api import docs

    app = FastAPI(title="GPT-SoVITS training service", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_tags=docs.TAGS,  # docs.install: served offline
                  description="Train GPT-SoVITS voices over HTTP: upload audio, run the 11 steps (or "
                              "the whole pipeline), follow progress and logs, download the weights.")
    app.state.service = service
    app.state.pipelines = pipelines
    app.state.webhooks = webhooks
    app.state.task_views = ViewCache(store_version)
    app.state.doctor = doctor
    app.state.disk = disk
    app.state.settings = settings
    _install_error_handlers(app)
    install_security(app, settings, db)  # keys, trusted hosts, CORS, cross-site rules (gsv_service/auth/)
    app.add_middleware(BodyLimit, max_bytes=settings.max_json_bytes)  # outermost: 413 before anything reads

    from gsv_service import web
    from gsv_service.api import (events, files, logs, metrics, models, options, pipeline, system, tasks,
                                 transcripts)
    for module in (tasks, pipeline, files, logs, events, metrics, system, options, models, transcripts):
        app.include_router(module.router, dependencies=[TaskAccess])  # a key sees only its own tasks

    web.install(app)  # the page at / (gsv_service/web/)
    docs.install(app)  # /docs and /redoc from the service's own files

    return app
