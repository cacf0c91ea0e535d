"""Webhook delivery: POST the task's outcome to its config's webhook_url.

Deliveries run on their own thread with retries and exponential backoff, so a slow or dead
receiver never holds up a step or the API. Each outcome is recorded as a `webhook` event.
"""

from __future__ import annotations

import logging
import queue
import threading

import httpx

from gsv_service.events import emit
from gsv_service.records import PipelineRecord, RunRecord

log = logging.getLogger("gsv_service.webhooks")
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)


class Webhooks:
    def __init__(self, store, backoff_s: tuple[float, ...] = BACKOFF_S, timeout_s: float = 10.0):
        self.store = store
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    # ---- hooks ----
    def run_finished(self, run: RunRecord | None) -> None:
        """A manual step run ended: the task's status is now that run's."""
        if run and not run.pipeline_id and run.status in ("completed", "failed"):
            self._enqueue(run.task_id, {"event": f"step.{run.status.value}", "step": run.step,
                                        "run_id": run.id, "status": run.status.value,
                                        "error_message": run.error_message, "reason": run.reason})

    def pipeline_finished(self, rec: PipelineRecord) -> None:
        if rec.status in ("completed", "failed", "cancelled", "awaiting_review"):
            self._enqueue(rec.task_id, {"event": f"pipeline.{rec.status.value}", "pipeline_id": rec.id,
                                        "status": rec.status.value, "failed_step": rec.failed_step,
                                        "error_message": rec.error_message, "reason": rec.reason})

    def _enqueue(self, task_id: str, body: dict) -> None:
        task = self.store.get_task(task_id)
        url = task and task.config.webhook_url
        if task and url:
            self._q.put((url, task_id, {"task_id": task_id, "task_name": task.name,
                                        "task_status": task.status.value, **body}))

    # ---- delivery ----
    def _loop(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                try:
                    url, task_id, body = self._q.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._deliver(client, url, task_id, body)

    def _deliver(self, client: httpx.Client, url: str, task_id: str, body: dict) -> None:
        error = None
        for attempt, pause in enumerate((0.0, *self.backoff_s), start=1):
            if pause and self._stop.wait(pause):
                break
            try:
                r = client.post(url, json=body, headers={"User-Agent": "gsv-training-service"})
                if r.status_code < 300:
                    self._record(task_id, {"url": url, "delivered": True, "attempts": attempt,
                                           "status_code": r.status_code, "event": body["event"]})
                    return
                error = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
        log.warning("webhook to %s for task %s failed: %s", url, task_id, error)
        self._record(task_id, {"url": url, "delivered": False, "attempts": attempt, "error": error,
                               "event": body["event"]})

    def _record(self, task_id: str, data: dict) -> None:
        try:
            with self.store.db.begin() as c:
                emit(c, task_id, None, "webhook", data)
        except Exception:  # the task may have been deleted meanwhile
            log.debug("could not record webhook outcome", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
