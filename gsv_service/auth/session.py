"""Signing the page in: POST /api/v1/session with a key sets the gsv_key cookie (HttpOnly: no script
reads it; SameSite=Strict: no other site's request carries it), so that the page's fetch() calls,
<audio src> and download links are authenticated. DELETE signs out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gsv_service.api.deps import JSON
from gsv_service.auth.keys import KeyStore
from gsv_service.auth.middleware import COOKIE, HOW

router = APIRouter(prefix="/api/v1", tags=["service"], include_in_schema=False)
COOKIE_MAX_AGE_S = 30 * 24 * 3600


class SessionIn(BaseModel):
    key: str = Field(..., min_length=1, max_length=200, description="an API key")


@router.post("/session")
def sign_in(body: SessionIn, request: Request) -> JSON:
    keys: KeyStore = request.app.state.keys
    if not keys.any_active():
        return JSON({"message": "the service has no API keys: nothing to sign in to", "scope": "admin"})
    p = keys.principal(body.key.strip(), "cookie")
    if p is None:
        return JSON({"detail": "the API key is unknown or revoked; " + HOW}, status_code=401)
    response = JSON({"message": f"signed in with key {p.name!r} (scope {p.scope.value})", "name": p.name,
                     "scope": p.scope.value})
    response.set_cookie(COOKIE, body.key.strip(), max_age=COOKIE_MAX_AGE_S, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.delete("/session")
def sign_out() -> JSON:
    response = JSON({"message": "signed out"})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
