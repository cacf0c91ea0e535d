"""Live events over real HTTP: SSE with Last-Event-ID resume, the WebSocket, and webhooks."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from tests.audio_fixtures import have_tools, long_speech
from tests.conftest import LiveServer, free_port, server_env

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    if not have_tools():
        pytest.skip("espeak-ng and ffmpeg are needed")
    return long_speech(tmp_path_factory.mktemp("rec") / "reading.wav", n=3)


def read_sse(url: str, headers: dict | None = None, stop_after: int | None = None,
             until_status: str | None = None, timeout: float = 30, until=None) -> list[dict]:
    """Parse an SSE stream into events: {'id', 'event', 'data'}."""
    events, cur = [], {}
    with httpx.stream("GET", url, headers=headers or {}, timeout=timeout) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if "data" in cur:
                    cur["data"] = json.loads(cur["data"])
                    events.append(cur)
                    if stop_after and len(events) >= stop_after:
                        return events
                    if until_status and cur["event"] == "state" and cur["data"]["status"] == until_status:
                        return events
                    if until and until(cur):
                        return events
                cur = {}
                continue
            key, _, value = line.partition(":")
            cur[key] = value[1:] if value.startswith(" ") else value
    return events


def new_task(api: str, recording, **cfg) -> str:
    tid = httpx.post(api + "/task/create", json={"task_name": "ev", "config": {"exp_name": "e", **cfg}}).json()["task_id"]
    with open(recording.path, "rb") as f:
        assert httpx.post(f"{api}/task/{tid}/files/upload", files={"file": ("r.wav", f)}).status_code == 200
    return tid


def test_sse_stream_and_resume_with_last_event_id(tmp_path, recording):
    srv = LiveServer(server_env(tmp_path), tmp_path).start()
    try:
        api = srv.url + "/api/v1"
        tid = new_task(api, recording)
        assert httpx.post(f"{api}/task/{tid}/step/convert_audio", json={}).status_code == 202
        first = read_sse(f"{api}/task/{tid}/events", stop_after=2)
        assert [e["event"] for e in first][:1] == ["state"]
        rest = read_sse(f"{api}/task/{tid}/events", headers={"Last-Event-ID": first[-1]["id"]},
                        until_status="completed")
        whole = read_sse(f"{api}/task/{tid}/events", until_status="completed")
        got = [int(e["id"]) for e in first + rest]
        assert got == [int(e["id"]) for e in whole]  # nothing missed, nothing twice
        assert got == sorted(set(got))
        kinds = {e["event"] for e in whole}
        assert {"state", "progress", "log"} <= kinds
        statuses = [e["data"]["status"] for e in whole if e["event"] == "state"]
        assert statuses == ["queued", "running", "completed"]
        prog = [e["data"]["progress"] for e in whole if e["event"] == "progress"]
        assert prog and all(0.0 <= p <= 1.0 for p in prog)
        logs = [ln for e in whole if e["event"] == "log" for ln in e["data"]["lines"]]
        assert any(ln.startswith("[service] $ ") for ln in logs)  # the command line, then its output
        assert any('"event": "result"' in ln for ln in logs)
        # ?after= works as well, for clients that cannot set headers
        tail = read_sse(f"{api}/task/{tid}/events?after={whole[-2]['id']}", stop_after=1)
        assert tail[0]["id"] == whole[-1]["id"]
        assert httpx.get(f"{api}/task/nope/events").status_code == 404
        # one run's events only
        run_id = whole[0]["data"]["run_id"]
        httpx.post(f"{api}/task/{tid}/step/slice_audio", json={})
        mine = read_sse(f"{api}/task/{tid}/events?run_id={run_id}", until_status="completed")
        assert mine and {e["data"]["run_id"] for e in mine} == {run_id}
    finally:
        srv.stop()


def test_service_wide_stream_carries_every_task_filtered_by_type(tmp_path, recording):
    """GET /events: one stream for all tasks (the page's live task list), each event with its
    task_id, filtered by type, resumable with Last-Event-ID like a task's stream."""
    srv = LiveServer(server_env(tmp_path), tmp_path).start()
    try:
        api = srv.url + "/api/v1"
        a, b = new_task(api, recording), new_task(api, recording)
        for tid in (a, b):
            assert httpx.post(f"{api}/task/{tid}/step/convert_audio", json={}).status_code == 202
        done: set = set()

        def both_done(ev) -> bool:
            if ev["data"]["status"] == "completed":
                done.add(ev["data"]["task_id"])
            return done == {a, b}

        states = read_sse(f"{api}/events?types=state", until=both_done)
        assert {e["event"] for e in states} == {"state"}
        assert {e["data"]["task_id"] for e in states} == {a, b}
        ids = [int(e["id"]) for e in states]
        assert ids == sorted(set(ids))
        per_task = read_sse(f"{api}/task/{a}/events", until_status="completed")
        assert [e["id"] for e in per_task if e["event"] == "state"] == \
            [e["id"] for e in states if e["data"]["task_id"] == a]
        resumed = read_sse(f"{api}/events?types=state", headers={"Last-Event-ID": states[-2]["id"]}, stop_after=1)
        assert resumed[0]["id"] == states[-1]["id"]
        mixed = read_sse(f"{api}/events?types=state,progress", stop_after=6)
        assert {e["event"] for e in mixed} <= {"state", "progress"} and "progress" in {e["event"] for e in mixed}
        r = httpx.get(f"{api}/events?types=state,gossip")
        assert r.status_code == 400 and "gossip" in r.json()["detail"]
    finally:
        srv.stop()


def test_websocket_carries_the_same_events(tmp_path, recording):
    from websockets.sync.client import connect
    srv = LiveServer(server_env(tmp_path), tmp_path).start()
    try:
        api = srv.url + "/api/v1"
        tid = new_task(api, recording)
        httpx.post(f"{api}/task/{tid}/step/convert_audio", json={})
        sse = read_sse(f"{api}/task/{tid}/events", until_status="completed")
        ws_events = []
        with connect(f"ws://127.0.0.1:{srv.port}/api/v1/task/{tid}/ws") as ws:
            while len(ws_events) < len(sse):
                ws_events.append(json.loads(ws.recv(timeout=10)))
        assert [e["id"] for e in ws_events] == [int(e["id"]) for e in sse]
        assert [e["type"] for e in ws_events] == [e["event"] for e in sse]
    finally:
        srv.stop()


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 1

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((time.monotonic(), body))
        code = 500 if len(type(self).received) <= type(self).fail_first else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_is_retried_and_delivered(tmp_path, recording):
    port = free_port()
    hook = HTTPServer(("127.0.0.1", port), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    # loopback is refused unless allow-listed (the receiver runs here)
    srv = LiveServer(server_env(tmp_path, GSV_WEBHOOK_ALLOW="127.0.0.1"), tmp_path).start()
    try:
        api = srv.url + "/api/v1"
        tid = new_task(api, recording, webhook_url=f"http://127.0.0.1:{port}/hook")
        t0 = time.monotonic()
        httpx.post(f"{api}/task/{tid}/step/convert_audio", json={})
        deadline = time.monotonic() + 30
        while len(_Hook.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_Hook.received) == 2  # a 500, then a retry that succeeded
        (t1, first), (t2, second) = _Hook.received
        assert first == second and second["event"] == "step.completed"
        assert second["task_id"] == tid and second["step"] == "convert_audio"
        assert t2 - t1 >= 0.9  # backoff before the retry
        assert t1 - t0 < 30
        events = read_sse(f"{api}/task/{tid}/events", until=lambda e: e["event"] == "webhook")
        outcome = events[-1]["data"]  # the delivery is recorded as an event
        assert outcome["delivered"] is True and outcome["attempts"] == 2 and outcome["status_code"] == 200
        assert httpx.post(api + "/task/create", json={"task_name": "x", "config": {
            "webhook_url": "ftp://nope"}}).status_code == 422
    finally:
        srv.stop()
        hook.shutdown()
