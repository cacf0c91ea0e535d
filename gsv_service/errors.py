"""Errors the service layer raises; the API turns each into a JSON answer with `detail`."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 400

    def __init__(self, detail: str, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(ServiceError):
    status_code = 400


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class TooLarge(ServiceError):
    status_code = 413


class UnsupportedMedia(ServiceError):
    status_code = 415


class Unprocessable(ServiceError):
    status_code = 422


class DependencyMissing(ServiceError):
    """A precondition outside the request: the engine is not configured."""

    status_code = 424
