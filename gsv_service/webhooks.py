"""Webhook delivery: POST the task's outcome to its config's webhook_url.

Each delivery is a row in `webhook_deliveries` (gsv_service/webhook_store.py), so it survives a
restart. A dispatcher thread hands due rows to a small pool, at most one attempt in flight per
destination (host:port) in this process: a slow receiver delays only its own deliveries. An
attempt checks the destination again (gsv_service/webhook_targets.py), connects to the address it
checked, signs the body (gsv_service/webhook_signing.py) and never follows a redirect. Failures are
retried with exponential backoff for at most GSV_WEBHOOK_MAX_RETRY_S; the outcome is a `webhook`
event saying delivered or not, the attempts and the HTTP status, never a network error's text.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import orjson

from gsv_service import webhook_sender
from gsv_service.errors import Unprocessable
from gsv_service.models import utcnow
from gsv_service.settings import Settings
from gsv_service.webhook_signing import HEADER, sign
from gsv_service.records import PipelineRecord, RunRecord
from gsv_service.states import PipelineStatus, RunStatus
from gsv_service.store import Store
from gsv_service.webhook_store import Delivery, DeliveryStore
from gsv_service.webhook_targets import TargetPolicy, Unresolvable, WebhookRefused, split_url

log = logging.getLogger("gsv_service.webhooks")
MAX_BACKOFF_S = 60.0
RETRY_CODES = frozenset((408, 425, 429))  # 4xx answers worth trying again; other 3xx/4xx are final
IDLE_POLL_S = 2.0  # other worker processes enqueue too: look at the table at least this often


class Webhooks:
    def __init__(self, store: Store, settings: Settings | None = None, policy: TargetPolicy | None = None,
                 backoff_s: float = 1.0):
        settings = settings or Settings(_env_file=None)
        self.store = store
        self.deliveries = DeliveryStore(store.db)
        self.policy = policy or TargetPolicy(settings.webhook_allow)
        self.backoff_s = backoff_s
        self.timeout_s = settings.webhook_timeout_s
        self.max_retry_s = settings.webhook_max_retry_s
        self.workers = settings.webhook_workers
        # An attempt's claim outlasts its longest duration (DNS lookup, then the bounded POST).
        self.hold_s = 2 * self.timeout_s + 10
        self._busy: set[str] = set()  # destinations with an attempt in flight here
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="webhook")
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)

    def start(self) -> None:
        """Begin delivering (after migrations): pending rows left by an earlier process included."""
        self._thread.start()

    # ---- at task creation ----
    def check_url(self, url: str | None) -> None:
        """422 when the URL is not one the service will call (scheme, host, address)."""
        if url:
            try:
                self.policy.check(url)
            except WebhookRefused as e:
                raise Unprocessable(str(e)) from None

    def new_secret(self, task_id: str) -> str:
        return self.deliveries.new_secret(task_id)

    # ---- hooks ----
    def run_finished(self, run: RunRecord | None) -> None:
        """A manual step run ended: the task's status is now that run's."""
        if run and not run.pipeline_id and run.status in (RunStatus.completed, RunStatus.failed):
            self._enqueue(run.task_id, {"event": f"step.{run.status.value}", "step": run.step,
                                        "run_id": run.id, "status": run.status.value,
                                        "error_message": run.error_message, "reason": run.reason})

    def pipeline_finished(self, rec: PipelineRecord) -> None:
        if rec.status in (PipelineStatus.completed, PipelineStatus.failed, PipelineStatus.cancelled,
                          PipelineStatus.awaiting_review):
            self._enqueue(rec.task_id, {"event": f"pipeline.{rec.status.value}", "pipeline_id": rec.id,
                                        "status": rec.status.value, "failed_step": rec.failed_step,
                                        "error_message": rec.error_message, "reason": rec.reason})

    def _enqueue(self, task_id: str, body: dict[str, object]) -> None:
        task = self.store.get_task(task_id)
        url = task.config.webhook_url if task else None
        if task is None or not url:
            return
        try:
            _scheme, host, port = split_url(url)
            destination = f"{host}:{port}"
        except WebhookRefused:
            destination = "invalid"  # refused at its first attempt, recorded as such
        try:
            self.deliveries.enqueue(task_id, url, destination, {
                "task_id": task_id, "task_name": task.name, "task_status": task.status.value, **body})
        except Exception:  # the task may have been deleted meanwhile
            log.debug("could not enqueue a webhook delivery", exc_info=True)
        self._wake.set()

    # ---- dispatch ----
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._dispatch()
            except Exception:  # the database away for a moment: try again shortly
                log.exception("webhook dispatch failed")
                wait = IDLE_POLL_S
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()

    def _dispatch(self) -> float:
        """Start attempts for due deliveries to idle destinations; how long to wait before looking again."""
        with self._lock:
            busy = set(self._busy)
        free = self.workers - len(busy)
        started = 0
        for due in self.deliveries.due(max(free, 0), busy) if free > 0 else []:
            d = None if due.destination in busy else self.deliveries.claim(due, self.hold_s)
            if d is None:
                continue
            busy.add(d.destination)
            with self._lock:
                self._busy.add(d.destination)
            self._pool.submit(self._attempt, d)
            started += 1
        if started:
            return 0.0  # more may be due for other destinations
        nxt = self.deliveries.next_due_at()
        if nxt is None:
            return IDLE_POLL_S
        # Due but its destination busy: the attempt's end wakes the loop.
        return min(max((nxt - utcnow()).total_seconds(), 0.05), IDLE_POLL_S)

    def _attempt(self, d: Delivery) -> None:
        try:
            self._try(d)
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", d.id)
        finally:
            with self._lock:
                self._busy.discard(d.destination)
            self._wake.set()

    def _try(self, d: Delivery) -> None:
        try:
            target = self.policy.check(d.url)  # again: DNS may now say something else
        except Unresolvable:
            return self._again(d, None)
        except WebhookRefused:
            return self._finish(d, "refused", None)
        secret = self.deliveries.secret(d.task_id) or self.deliveries.new_secret(d.task_id)
        body = orjson.dumps(d.body)
        headers = {"Content-Type": "application/json", "User-Agent": "gsv-training-service",
                   "X-GSV-Event": d.event, "X-GSV-Delivery": d.id,
                   HEADER: sign(secret, body, int(time.time()))}
        code = webhook_sender.post(target, body, headers, self.timeout_s)
        if code is not None and 200 <= code < 300:
            return self._finish(d, "delivered", code)
        if code is not None and code < 500 and code not in RETRY_CODES:
            return self._finish(d, "rejected", code)  # a redirect or a 4xx: trying again will not help
        return self._again(d, code)

    def _again(self, d: Delivery, code: int | None) -> None:
        delay = min(self.backoff_s * 2 ** (d.attempts - 1), MAX_BACKOFF_S)
        when = utcnow() + timedelta(seconds=delay)
        if when > d.created_at + timedelta(seconds=self.max_retry_s) or self._stop.is_set():
            if not self._stop.is_set():
                return self._finish(d, "no_answer" if code is None else "rejected", code)
            when = utcnow()  # shutting down: the next process takes it from here
        self.deliveries.retry_at(d.id, when, code)

    def _finish(self, d: Delivery, outcome: str, code: int | None) -> None:
        self.deliveries.finish(d, outcome, code)
        if outcome != "delivered":
            log.warning("webhook %s for task %s not delivered: %s after %d attempt(s), HTTP %s",
                        d.event, d.task_id, outcome, d.attempts, code)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
