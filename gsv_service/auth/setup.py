"""Puts the security layers on the app, outermost first: trusted Host headers, CORS (only with
GSV_CORS_ORIGINS), then the key / scope / cross-site / stream check; and the page's sign-in route."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from starlette.middleware.cors import CORSMiddleware

from gsv_service.auth import session
from gsv_service.auth.hosts import TrustedHosts
from gsv_service.auth.keys import KeyStore
from gsv_service.auth.middleware import AuthMiddleware
from gsv_service.settings import Settings


def install_security(app: FastAPI, settings: Settings, engine: Engine) -> None:
    keys = KeyStore(engine)
    app.state.keys = keys
    app.include_router(session.router)
    # add_middleware puts each one outside the ones added before it.
    app.add_middleware(AuthMiddleware, keys=keys, settings=settings)
    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"],
                           expose_headers=["X-Total-Count", "Content-Range"], max_age=600)
    app.add_middleware(TrustedHosts, allowed_hosts=settings.trusted_host_list, www_redirect=False)
