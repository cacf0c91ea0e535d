"""Webhook deliveries and signing secrets in the database: enqueue, claim a due one, record the outcome.

A delivery is claimed with a conditional UPDATE that pushes its next_attempt_at past the attempt's
longest duration: two worker processes never both send it, and the claim of a process that dies
mid-attempt expires by itself, so the delivery is retried after a restart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, func, insert, select, update
from sqlalchemy.engine import Engine

from gsv_service.db import aware
from gsv_service.events import emit
from gsv_service.models import WebhookDelivery, WebhookSecret, table_of, utcnow
from gsv_service.webhook_signing import new_secret

_D, _S = table_of(WebhookDelivery), table_of(WebhookSecret)


@dataclass(frozen=True)
class Delivery:
    """One POST to make (a row of webhook_deliveries); attempts counts those claimed so far."""
    id: str
    task_id: str
    url: str
    destination: str  # host:port, the unit of "one attempt in flight"
    event: str
    body: dict[str, Any]
    status: str  # pending | delivered | failed
    attempts: int
    created_at: datetime
    last_status_code: int | None = None
    outcome: str | None = None


def _delivery(m: RowMapping) -> Delivery:
    created = aware(m["created_at"])
    assert created is not None  # NOT NULL
    return Delivery(id=m["id"], task_id=m["task_id"], url=m["url"], destination=m["destination"],
                    event=m["event"], body=dict(m["body"]), status=m["status"], attempts=m["attempts"],
                    created_at=created, last_status_code=m["last_status_code"], outcome=m["outcome"])


class DeliveryStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # ---------- secrets ----------
    def new_secret(self, task_id: str) -> str:
        """A fresh signing secret for the task (replacing any earlier one); the caller shows it once."""
        secret = new_secret()
        with self.engine.begin() as c:
            if c.execute(update(_S).where(_S.c.task_id == task_id).values(secret=secret)).rowcount == 0:
                c.execute(insert(_S).values(task_id=task_id, secret=secret, created_at=utcnow()))
        return secret

    def secret(self, task_id: str) -> str | None:
        with self.engine.connect() as c:
            return c.execute(select(_S.c.secret).where(_S.c.task_id == task_id)).scalar()

    # ---------- deliveries ----------
    def enqueue(self, task_id: str, url: str, destination: str, body: dict[str, Any]) -> str:
        delivery_id, now = uuid.uuid4().hex, utcnow()
        with self.engine.begin() as c:
            c.execute(insert(_D).values(id=delivery_id, task_id=task_id, url=url, destination=destination,
                                        event=body["event"], body=body, status="pending", attempts=0,
                                        next_attempt_at=now, created_at=now))
        return delivery_id

    def due(self, limit: int, skip_destinations: set[str]) -> list[Delivery]:
        """Pending deliveries whose time has come, oldest first, none to a busy destination."""
        q = (select(_D).where(_D.c.status == "pending", _D.c.next_attempt_at <= utcnow())
             .order_by(_D.c.next_attempt_at).limit(limit))
        if skip_destinations:
            q = q.where(_D.c.destination.not_in(skip_destinations))
        with self.engine.connect() as c:
            return [_delivery(m) for m in c.execute(q).mappings()]

    def next_due_at(self) -> datetime | None:
        with self.engine.connect() as c:
            return aware(c.execute(select(func.min(_D.c.next_attempt_at))
                                   .where(_D.c.status == "pending")).scalar())

    def claim(self, d: Delivery, hold_s: float) -> Delivery | None:
        """Take the delivery for one attempt (counted now); None if another worker took it."""
        cond = (_D.c.id == d.id) & (_D.c.status == "pending") & (_D.c.attempts == d.attempts)
        with self.engine.begin() as c:
            done = c.execute(update(_D).where(cond).values(
                attempts=_D.c.attempts + 1, next_attempt_at=utcnow() + timedelta(seconds=hold_s)))
        return replace(d, attempts=d.attempts + 1) if done.rowcount == 1 else None

    def retry_at(self, delivery_id: str, when: datetime, status_code: int | None) -> None:
        with self.engine.begin() as c:
            c.execute(update(_D).where(_D.c.id == delivery_id)
                      .values(next_attempt_at=when, last_status_code=status_code))

    def finish(self, d: Delivery, outcome: str, status_code: int | None) -> dict[str, Any]:
        """Record the final outcome on the row and as the task's `webhook` event, in one transaction.
        The event says delivered or not, the attempts and the HTTP status: never a network error's
        text (which would tell a caller what listens where)."""
        now, delivered = utcnow(), outcome == "delivered"
        data = {"delivery_id": d.id, "url": d.url, "event": d.event, "delivered": delivered,
                "outcome": outcome, "attempts": d.attempts, "status_code": status_code}
        with self.engine.begin() as c:
            c.execute(update(_D).where(_D.c.id == d.id).values(
                status="delivered" if delivered else "failed", outcome=outcome,
                last_status_code=status_code, finished_at=now))
            emit(c, d.task_id, None, "webhook", data)
        return data

    def get(self, delivery_id: str) -> Delivery | None:
        with self.engine.connect() as c:
            m = c.execute(select(_D).where(_D.c.id == delivery_id)).mappings().first()
        return _delivery(m) if m else None
