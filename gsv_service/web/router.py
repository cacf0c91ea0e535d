"""Serves the page: / (index.html, with a strict Content-Security-Policy) and its files under /ui/.

Everything the page loads comes from here; the policy keeps the browser from fetching anything
from another origin, so the page works offline and leaks nothing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from gsv_service import __version__
from gsv_service.api.deps import JSON

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


class _Static(StaticFiles):
    """The page's files, revalidated on every load (ETag), so an upgrade shows at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_HEADERS)
        return response


@router.get("/")
def index(request: Request) -> Response:
    """The page; a client that asks for JSON only gets the service's name and version."""
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return JSON({"message": "GPT-SoVITS training service", "version": __version__, "docs_url": "/docs",
                     "page": "/"})
    return FileResponse(STATIC / "index.html", headers={**_HEADERS, "Content-Security-Policy": CSP})


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui", _Static(directory=STATIC), name="ui")
