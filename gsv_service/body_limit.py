"""A size limit on request bodies (GSV_MAX_JSON_BYTES), enforced while they arrive.

Pure ASGI: a declared Content-Length over the limit is answered 413 before any of the body is
read; a body without one (chunked) is counted as it streams and cut off at the limit, so a
200 MB JSON document never reaches memory. Uploads stream to disk under their own limits
(GSV_MAX_UPLOAD_MB, GSV_MAX_UPLOAD_FILES): the upload route is left to uploads.py.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH = re.compile(r"/api/v1/task/[^/]+/files/upload")


def too_large_detail(limit: int) -> str:
    return (f"request body is larger than {limit} bytes (GSV_MAX_JSON_BYTES); send less (large "
            "transcripts in parts, with PUT .../transcripts edits), or upload files with "
            "POST /api/v1/task/{task_id}/files/upload")


class BodyTooLarge(HTTPException):
    """Raised from receive(): FastAPI lets an HTTPException from reading the body through, so the
    app's handler answers it as JSON with `detail`."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=too_large_detail(limit))


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or UPLOAD_PATH.fullmatch(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            # Nothing of the body is read; the server closes the connection after the answer.
            status, detail = (413, too_large_detail(self.max_bytes)) if declared.isdigit() else \
                (400, "Content-Length is not a number")
            await JSONResponse({"detail": detail}, status_code=status,
                               headers={"Connection": "close"})(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message
        return counted
