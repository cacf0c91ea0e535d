"""Webhook signatures: HMAC-SHA256 of "<unix time>.<body>" with the task's secret.

Sent as `X-GSV-Signature: t=<unix time>,v1=<hex digest>`. The time is in the signed text, so a
receiver that rejects old times also rejects replayed deliveries (README: Webhooks).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER = "X-GSV-Signature"
TOLERANCE_S = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(32)


def sign(secret: str, body: bytes, ts: int) -> str:
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = TOLERANCE_S,
           now: float | None = None) -> bool:
    """What a receiver does: recompute the digest, compare in constant time, check the time."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        ts = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, ts), f"t={ts},v1={fields.get('v1', '')}")
