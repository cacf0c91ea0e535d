"""Webhooks as an attacker would use them (issue 10): refused destinations, the service calling
itself, redirects, network errors as a port scanner, one slow receiver holding up the others, and
deliveries lost on restart. Real HTTP receivers on loopback, real database rows."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import create_engine, select

from tests.conftest import LiveServer, free_port, make_settings, server_env, wait_for

pytestmark = pytest.mark.timeout(180)


# ---------- receivers ----------

class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST (time, headers, raw body) and answers
    with `status` after `delay` seconds (a `location` makes it a redirect)."""

    def __init__(self, status: int = 200, delay: float = 0.0, location: str | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.status, self.delay, self.location = status, delay, location
        self.hits: list[tuple[float, dict, bytes]] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer._lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                time.sleep(outer.delay)
                with outer._lock:
                    outer.in_flight -= 1
                    outer.hits.append((time.monotonic(), dict(self.headers), body))
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receivers(*specs: dict):
    made = [Receiver(**s) for s in specs]
    try:
        yield made
    finally:
        for r in made:
            r.close()


# ---------- the delivery machinery in this process, on a real store ----------

@contextmanager
def webhooks_env(tmp_path, db_url, allow: str = "127.0.0.1", **over):
    """A migrated store and a started Webhooks; receivers in this process are not 'the service'."""
    from gsv_service.db import make_engine, migrate
    from gsv_service.steps.registry import STEP_NAMES
    from gsv_service.store import Store
    from gsv_service.webhook_targets import OwnPorts, TargetPolicy
    from gsv_service.webhooks import Webhooks

    settings = make_settings(tmp_path, db_url, **over)
    store = Store(make_engine(settings.db_url), STEP_NAMES)
    migrate(store.db)
    hooks = Webhooks(store, settings, policy=TargetPolicy(allow, OwnPorts(fixed=set())))
    hooks.start()
    try:
        yield store, hooks
    finally:
        hooks.stop()
        store.db.dispose()


def finish_run(store, hooks, url: str, step: str = "convert_audio") -> str:
    """A task with this webhook_url whose manual step run just completed."""
    from gsv_service.models import utcnow
    from gsv_service.records import RunRecord
    from gsv_service.states import RunStatus

    task = store.create_task("t", {"exp_name": "x", "webhook_url": url})
    hooks.run_finished(RunRecord(
        id="run1", task_id=task.id, step=step, status=RunStatus.completed, params={}, progress=1.0,
        message=None, metrics=None, result=None, error_message=None, reason=None, log_path=None,
        owner=None, pgids=None, cancel_requested=False, pipeline_id=None, resources=None, seq=1,
        created_at=utcnow(), started_at=None, finished_at=None))
    return task.id


def webhook_events(engine, task_id: str) -> list[dict]:
    from gsv_service.models import Event
    e = Event.__table__
    with engine.connect() as c:
        return [r.data for r in c.execute(select(e.c.data).where(e.c.task_id == task_id, e.c.type == "webhook"))]


# ---------- refused destinations ----------

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://10.0.0.1/hook",                      # RFC 1918
    "http://192.168.1.10:8080/hook",
    "http://[::1]:9000/hook",                    # IPv6 loopback
    "http://[fd00::1]/hook",                     # unique local
    "http://[::ffff:169.254.169.254]/",          # metadata behind an IPv4-mapped address
    "http://0.0.0.0:8000/hook",
    "http://2130706433:8000/hook",               # 127.0.0.1 as a number
    "http://localhost:8000/hook",                # a name that resolves to loopback
    "http://224.0.0.1/hook",                     # multicast
]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_destinations_are_refused_at_creation(client, url):
    before = int(client.get("/api/v1/tasks").headers["X-Total-Count"])
    r = client.post("/api/v1/task/create", json={"task_name": "x", "config": {"webhook_url": url}})
    assert r.status_code == 422, r.text
    assert "webhook_url" in r.json()["detail"] and "GSV_WEBHOOK_ALLOW" in r.json()["detail"]
    assert int(client.get("/api/v1/tasks").headers["X-Total-Count"]) == before  # nothing created


def test_the_service_calling_itself_is_refused_even_with_loopback_allowed(tmp_path):
    """http://127.0.0.1:<service port>/api/v1/task/create: the attack that made the service call
    itself. Refused without an allow-list (loopback), and with 127.0.0.1 allowed (its own port)."""
    for allow in ("", "127.0.0.1,localhost"):
        srv = LiveServer(server_env(tmp_path, GSV_WEBHOOK_ALLOW=allow), tmp_path).start()
        try:
            for host in ("127.0.0.1", "localhost"):
                url = f"http://{host}:{srv.port}/api/v1/task/create"
                r = httpx.post(srv.url + "/api/v1/task/create",
                               json={"task_name": "x", "config": {"webhook_url": url}})
                assert r.status_code == 422, (allow, url, r.text)
                assert "webhook_url" in r.json()["detail"]
            assert httpx.get(srv.url + "/api/v1/tasks").headers["X-Total-Count"] == "0"
            if allow:  # another port on loopback is fine when allowed
                ok = httpx.post(srv.url + "/api/v1/task/create", json={"task_name": "x", "config": {
                    "webhook_url": f"http://127.0.0.1:{free_port()}/hook"}})
                assert ok.status_code == 200 and ok.json()["webhook_secret"].startswith("whsec_")
        finally:
            srv.stop()


def test_delivery_connects_to_the_address_it_checked(tmp_path, db_url, monkeypatch):
    """The name is resolved once, by the check; the POST goes to that address with the name in
    the Host header (a name the system's DNS does not know: a second lookup would fail)."""
    from gsv_service import webhook_targets
    real = webhook_targets._getaddrinfo
    lookups: list[str] = []

    def fake_dns(host, port, *args, **kwargs):
        lookups.append(host)
        return real("127.0.0.1", port, *args, **kwargs) if host == "hook.invalid" else real(host, port, *args, **kwargs)

    monkeypatch.setattr(webhook_targets, "_getaddrinfo", fake_dns)
    with receivers({}) as (rx,), webhooks_env(tmp_path, db_url, allow="127.0.0.0/8") as (store, hooks):
        finish_run(store, hooks, f"http://hook.invalid:{rx.port}/hook")
        wait_for(lambda: rx.hits, 15, what="the delivery")
        assert rx.hits[0][1]["Host"] == f"hook.invalid:{rx.port}"
        assert lookups == ["hook.invalid"]


def test_a_redirect_is_not_followed(tmp_path, db_url):
    """The receiver answers 302 to a refused address (127.0.0.2; only 127.0.0.1 is allowed): the
    service does not go there, does not retry, and records 'not delivered, HTTP 302'."""
    with receivers({"host": "127.0.0.2"}) as (inner,), \
            receivers({"status": 302, "location": inner.url}) as (outer,), \
            webhooks_env(tmp_path, db_url, allow="127.0.0.1") as (store, hooks):
        tid = finish_run(store, hooks, outer.url)
        events = wait_for(lambda: webhook_events(store.db, tid), 15, what="the outcome")
        time.sleep(0.5)
        assert len(outer.hits) == 1 and inner.hits == []
        assert events[0]["delivered"] is False and events[0]["status_code"] == 302
        assert events[0]["attempts"] == 1


# ---------- signatures ----------

def test_each_body_is_signed_with_the_task_secret(tmp_path):
    """The secret comes once, in the create answer; the receiver verifies the body with it."""
    wav = tmp_path / "tone.wav"
    sf.write(wav, 0.3 * np.sin(np.linspace(0, 2 * np.pi * 440, 32000)).astype("float32"), 32000)
    with receivers({}) as (rx,):
        srv = LiveServer(server_env(tmp_path, GSV_WEBHOOK_ALLOW="127.0.0.1"), tmp_path).start()
        try:
            api = srv.url + "/api/v1"
            made = httpx.post(api + "/task/create", json={"task_name": "s", "config": {
                "exp_name": "s", "webhook_url": rx.url}}).json()
            secret, tid = made["webhook_secret"], made["task_id"]
            assert "webhook_secret" not in httpx.get(f"{api}/task/{tid}").json()  # shown once
            with open(wav, "rb") as f:
                assert httpx.post(f"{api}/task/{tid}/files/upload", files={"file": ("t.wav", f)}).status_code == 200
            assert httpx.post(f"{api}/task/{tid}/step/convert_audio", json={}).status_code == 202
            wait_for(lambda: rx.hits, 60, what="the delivery")
        finally:
            srv.stop()
    from gsv_service.webhook_signing import verify
    _, headers, body = rx.hits[0]
    assert json.loads(body)["event"] == "step.completed" and json.loads(body)["task_id"] == tid
    assert verify(secret, body, headers["X-GSV-Signature"])
    assert headers["X-GSV-Delivery"] and headers["X-GSV-Event"] == "step.completed"
    assert not verify(secret, body + b" ", headers["X-GSV-Signature"])  # altered body
    assert not verify("whsec_other", body, headers["X-GSV-Signature"])  # another task's secret
    assert not verify(secret, body, headers["X-GSV-Signature"], now=time.time() + 3600)  # replayed later


# ---------- delivery ----------

def test_a_slow_receiver_does_not_delay_the_others(tmp_path, db_url):
    """Two deliveries to a receiver that takes 5 s, then one to a fast receiver: the fast one
    arrives at once; the slow receiver gets its two one after the other, never both at once."""
    with receivers({"delay": 5.0}, {}) as (slow, fast), \
            webhooks_env(tmp_path, db_url, webhook_timeout_s=10.0) as (store, hooks):
        t0 = time.monotonic()
        finish_run(store, hooks, slow.url)
        finish_run(store, hooks, slow.url)
        time.sleep(0.3)  # the slow one is in flight
        finish_run(store, hooks, fast.url)
        wait_for(lambda: fast.hits, 10, what="the fast delivery")
        assert fast.hits[0][0] - t0 < 2.0
        wait_for(lambda: len(slow.hits) == 2, 20, what="both slow deliveries")
        assert slow.max_in_flight == 1  # one request in flight per destination


def test_the_outcome_never_tells_which_network_error(tmp_path, db_url):
    """A closed port and a port that accepts but never answers are recorded alike: not
    delivered, how many attempts, no status code. No 'Connection refused', no 'ReadTimeout'."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # accepts connections (the kernel does), never answers
    closed = f"http://127.0.0.1:{free_port()}/hook"
    try:
        with webhooks_env(tmp_path, db_url, webhook_max_retry_s=4.0, webhook_timeout_s=1.0) as (store, hooks):
            a = finish_run(store, hooks, closed)
            b = finish_run(store, hooks, f"http://127.0.0.1:{hole.getsockname()[1]}/hook")
            outcomes = [wait_for(lambda t=t: webhook_events(store.db, t), 30, what="outcome")[0]
                        for t in (a, b)]
    finally:
        hole.close()
    for o in outcomes:
        assert o["delivered"] is False and o["status_code"] is None and o["attempts"] >= 2
        assert o["outcome"] == "no_answer" and "error" not in o
        text = json.dumps(o).lower()
        for leak in ("refused", "timeout", "errno", "connect", "reset"):
            assert leak not in text
    assert {k for k in outcomes[0]} == {k for k in outcomes[1]}


def test_a_pending_delivery_survives_a_restart(tmp_path, db_url):
    """The receiver answers 500 to the first attempt; the service is killed (no clean stop) while
    the delivery waits for its retry; the restarted service delivers it."""
    env = server_env(tmp_path, db_url, GSV_WEBHOOK_ALLOW="127.0.0.1", GSV_WEBHOOK_MAX_RETRY_S="300",
                     GSV_WEBHOOK_TIMEOUT_S="1")
    wav = tmp_path / "tone.wav"
    sf.write(wav, 0.3 * np.sin(np.linspace(0, 2 * np.pi * 440, 32000)).astype("float32"), 32000)
    srv = LiveServer(env, tmp_path).start()
    with receivers({"status": 500}) as (rx,):
        try:
            api = srv.url + "/api/v1"
            tid = httpx.post(api + "/task/create", json={"task_name": "r", "config": {
                "exp_name": "r", "webhook_url": rx.url}}).json()["task_id"]
            with open(wav, "rb") as f:
                httpx.post(f"{api}/task/{tid}/files/upload", files={"file": ("t.wav", f)})
            httpx.post(f"{api}/task/{tid}/step/convert_audio", json={})
            wait_for(lambda: rx.hits, 60, what="the first attempt")
            time.sleep(0.3)  # its 500 recorded; the retry is due a second after it
            srv.kill()
            rx.status = 200
            before = len(rx.hits)  # 1; 2 if a loaded machine let the retry in before the kill
            srv.start()
            wait_for(lambda: len(rx.hits) > before, 60, what="the delivery after the restart")
        finally:
            srv.stop()
    first, last = rx.hits[0], rx.hits[-1]
    assert first[2] == last[2] and json.loads(last[2])["event"] == "step.completed"
    assert first[1]["X-GSV-Delivery"] == last[1]["X-GSV-Delivery"]  # one delivery, retried
    from gsv_service.models import WebhookDelivery
    db = create_engine(db_url or f"sqlite:///{tmp_path / 'service.db'}")
    d = WebhookDelivery.__table__
    with db.connect() as c:
        row = c.execute(select(d).where(d.c.task_id == tid)).mappings().one()
    db.dispose()
    assert (row["status"], row["last_status_code"]) == ("delivered", 200)
    assert row["attempts"] >= len(rx.hits) >= 2  # an attempt cut short by the kill counts too
