"""The API's own documentation pages, served from this service's files so they work offline:
Swagger UI at /docs and ReDoc at /redoc, their scripts and styles from the fastapi-offline
package (swagger-ui-dist and redoc's standalone bundle), no CDN and no web fonts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from gsv_service.api.responses import NULL

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs-assets"

TAGS = [
    {"name": "tasks", "description": "Create a task (training settings in `config`), read it, list, run "
                                     "one step, cancel, delete. A task's `status` follows its latest run; "
                                     "`last_completed_step`, `has_weights` and `summary` say how far it got."},
    {"name": "pipeline", "description": "Run the steps in dependency order in the background, pause for "
                                        "a transcript review, continue."},
    {"name": "files", "description": "Upload recordings and transcripts (multipart), list a task's files, "
                                     "download any of them (Range requests supported)."},
    {"name": "transcripts", "description": "Review and edit the transcript; the dataset report."},
    {"name": "logs", "description": "A run's log: its tail as JSON, or followed as plain text."},
    {"name": "events", "description": (
        "Live events as Server-Sent Events (`text/event-stream`): `GET /api/v1/task/{task_id}/events` for "
        "one task, `GET /api/v1/events` for all. Each event has `id:`, `event:` (its type: state, progress, "
        "log, pipeline, webhook) and `data:` (JSON, schema EventData); send the last id back as "
        "`Last-Event-ID` (or `?after=`) to resume without missing or repeating one.\n\n"
        "**WebSocket** (OpenAPI cannot describe one): `ws://HOST/api/v1/task/{task_id}/ws?after=ID` sends "
        "the same events as JSON text messages (the EventData object), from the start or after event ID, "
        "until the client closes it; an unknown task is closed with code 4404.")},
    {"name": "metrics", "description": "Training losses by epoch and step, as JSON and as a PNG plot."},
    {"name": "models", "description": "The trained SoVITS and GPT weights, with download links."},
    {"name": "service", "description": "Health, the engine, the doctor, the 11 steps and the options a user "
                                       "may choose."},
]


def _error_422(schema: dict[str, Any]) -> None:
    """FastAPI documents its own 422 body ({"detail": [...]}) on every route with parameters; this
    service answers validation errors with its error model ({"detail": "...", "errors": [...]},
    app._install_error_handlers), so the document says that instead."""
    from gsv_service.api.responses import errors

    doc = errors(422)[422]
    ours = {"description": doc["description"], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}, "example": doc["content"]["application/json"]["example"]}}}
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            answer = op.get("responses", {}).get("422")
            if answer and "HTTPValidationError" in json.dumps(answer):
                op["responses"]["422"] = ours
    components = schema.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in json.dumps(schema.get("paths", {})):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)


def _restore_nulls(value: Any) -> Any:
    """FastAPI writes the document without null values, examples included (an example's
    `"root": null` would vanish and no longer fit its schema); responses.keep_nulls marks them."""
    if value == NULL:
        return None
    if isinstance(value, dict):
        return {k: _restore_nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_nulls(v) for v in value]
    return value


# The answers the middleware gives before a route runs (gsv_service/auth/, body_limit.py): each
# operation documents those that can reach it, so the document holds every status a client sees.
_OPEN_PATHS = ("/api/v1/health",)
_STREAMS = ("/api/v1/events", "/api/v1/task/{task_id}/events", "/api/v1/task/{task_id}/logs")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API key: python -m gsv_service keys create"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "the same key in this header"},
}


def _middleware_answers(schema: dict[str, Any]) -> None:
    from gsv_service.api.responses import errors

    def add(op: dict[str, Any], *codes: int) -> None:
        for code in codes:
            if str(code) not in op["responses"]:
                doc = errors(code)[code]
                op["responses"][str(code)] = {"description": doc["description"], "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "example": doc["content"]["application/json"]["example"]}}}

    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    schema["security"] = [{"bearer": []}, {"apiKey": []}]
    for path, ops in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, op in ops.items():
            if path in _OPEN_PATHS:
                op["security"] = [{}]  # no key needed
            else:
                add(op, 401, 403)
            if path in _STREAMS:
                add(op, 429)
            if method in ("post", "put", "patch", "delete"):
                add(op, 413, 415)
            if "application/json" in op.get("requestBody", {}).get("content", {}):
                add(op, 400)  # a body that is not UTF-8 (FastAPI's own 400)


def _links_from_create(schema: dict[str, Any]) -> None:
    """OpenAPI links: the task_id that POST /task/create answers feeds every operation on a task
    (clients and stateful testers follow them)."""
    links: dict[str, Any] = {}
    for path, ops in schema.get("paths", {}).items():
        if "{task_id}" not in path:
            continue
        for op in ops.values():
            name = op.get("operationId")
            if name:
                links[name] = {"operationId": name,
                                                      "parameters": {"task_id": "$response.body#/task_id"}}
    create = schema.get("paths", {}).get("/api/v1/task/create", {}).get("post")
    if create and links:
        create["responses"]["200"]["links"] = links


def _event_data(schema: dict[str, Any]) -> None:
    """EventData describes each SSE `data:` line; no route returns it as a body, so FastAPI does
    not put it in components by itself."""
    from gsv_service.api.responses import EventData

    doc = EventData.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.setdefault("components", {}).setdefault("schemas", {})["EventData"] = doc


def install(app: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect and /redoc (the app is built with docs_url=redoc_url=None)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _error_422(schema)
            _middleware_answers(schema)
            _links_from_create(schema)
            _event_data(schema)
            schema["paths"] = _restore_nulls(schema["paths"])
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI", oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            # no validator badge: it would send the schema to validator.swagger.io
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None})

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False)
