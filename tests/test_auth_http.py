"""API keys over real HTTP (uvicorn on a loopback port, keys made by the command line): every kind
of endpoint refuses a caller without a key, each key sees only its own tasks, scopes hold, the page
signs in with a cookie, and a revoked key stops working."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import LiveServer, database_urls, reset_postgres, server_env, wait_for
from tests.test_auth_keys import create_key, keys_cli

CONFIG = {"exp_name": "spk", "language": "zh"}


@dataclass
class Keyed:
    srv: LiveServer
    keys: dict[str, str]
    env: dict[str, str]
    before_keys: str  # a task created while the service had no key

    @property
    def api(self) -> str:
        return self.srv.url + "/api/v1"

    def ws(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.srv.port}/api/v1{path}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_task(api: str, headers: dict[str, str], name: str = "voice") -> str:
    r = httpx.post(f"{api}/task/create", json={"task_name": name, "config": CONFIG}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


@pytest.fixture(scope="module", params=database_urls())
def keyed(request, tmp_path_factory) -> Iterator[Keyed]:
    """One server: a task made while open, then keys created (from the command line, while it runs)."""
    if request.param:
        reset_postgres(request.param)
    tmp = tmp_path_factory.mktemp("keyed")
    env = server_env(tmp, request.param)
    srv = LiveServer(env, tmp).start()
    try:
        before = new_task(srv.url + "/api/v1", {}, "made while open")
        keys = {name: create_key(env, tmp, name, scope)
                for name, scope in (("alice", "run"), ("bob", "run"), ("root", "admin"), ("viewer", "read"))}
        wait_for(lambda: httpx.get(srv.url + "/api/v1/tasks").status_code == 401, 10, what="keys to count")
        yield Keyed(srv, keys, env, before)
    finally:
        srv.stop()


def test_every_kind_of_endpoint_needs_a_key(keyed):
    api, key = keyed.api, keyed.keys["alice"]
    tid = new_task(api, bearer(key))
    for method, path in (("GET", "/tasks"), ("GET", f"/task/{tid}"), ("GET", f"/task/{tid}/files"),
                         ("POST", f"/task/{tid}/cancel"), ("DELETE", f"/task/{tid}"), ("GET", "/engine"),
                         ("GET", "/steps"), ("GET", f"/task/{tid}/files/download/x.wav")):
        r = httpx.request(method, api + path)
        assert r.status_code == 401, (method, path, r.text)
        assert "Authorization: Bearer" in r.json()["detail"] and "keys create" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(f"{api}/task/create", json={"task_name": "x", "config": CONFIG})
    assert r.status_code == 401
    wrong = httpx.get(f"{api}/tasks", headers=bearer("gsv_" + "x" * 43))
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.json()["detail"]
    assert httpx.get(f"{api}/task/{tid}", headers=bearer(key)).status_code == 200
    assert httpx.get(f"{api}/task/{tid}", headers={"X-API-Key": key}).status_code == 200
    assert httpx.get(f"{api}/tasks", headers={"X-API-Key": key}).status_code == 200


def test_streams_refuse_a_caller_without_a_key(keyed):
    api, key = keyed.api, keyed.keys["alice"]
    tid = new_task(api, bearer(key))
    for path in (f"/task/{tid}/events", "/events", f"/task/{tid}/logs?follow=true"):
        with httpx.stream("GET", api + path, timeout=10) as r:
            assert r.status_code == 401, path
    with httpx.stream("GET", f"{api}/task/{tid}/events", headers=bearer(key), timeout=10) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    with pytest.raises(InvalidStatus) as e:
        connect(keyed.ws(f"/task/{tid}/ws"), open_timeout=10)
    assert e.value.response.status_code == 401
    assert b"API key" in e.value.response.body
    with connect(keyed.ws(f"/task/{tid}/ws"), additional_headers=bearer(key), open_timeout=10) as ws:
        assert ws.protocol.state.name == "OPEN"


def test_a_task_belongs_to_the_key_that_made_it(keyed):
    api, k = keyed.api, keyed.keys
    tid = new_task(api, bearer(k["alice"]), "alice's")
    other = bearer(k["bob"])
    for method, path in (("GET", f"/task/{tid}"), ("GET", f"/task/{tid}/files"), ("GET", f"/task/{tid}/runs"),
                         ("POST", f"/task/{tid}/cancel"), ("DELETE", f"/task/{tid}"),
                         ("GET", f"/task/{tid}/files/download/x.wav"), ("GET", f"/task/{tid}/logs")):
        r = httpx.request(method, api + path, headers=other)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["detail"] == f"task {tid!r} not found; list tasks with GET /api/v1/tasks"
    r = httpx.post(f"{api}/task/{tid}/files/upload", headers=other, files={"file": ("a.wav", b"x", "audio/wav")})
    assert r.status_code == 404
    with httpx.stream("GET", f"{api}/task/{tid}/events", headers=other, timeout=10) as r:
        assert r.status_code == 404
    with pytest.raises(InvalidStatus):
        connect(keyed.ws(f"/task/{tid}/ws"), additional_headers=other, open_timeout=10)

    def ids(key: str) -> set[str]:
        r = httpx.get(f"{api}/tasks?limit=1000", headers=bearer(key))
        assert r.status_code == 200
        assert int(r.headers["x-total-count"]) == len(r.json())
        return {t["task_id"] for t in r.json()}

    assert tid in ids(k["alice"]) and tid not in ids(k["bob"])
    assert tid in ids(k["root"])  # admin sees every task, the ones made while open too
    assert keyed.before_keys in ids(k["root"]) and keyed.before_keys not in ids(k["alice"])
    assert httpx.get(f"{api}/task/{keyed.before_keys}", headers=bearer(k["alice"])).status_code == 404
    assert httpx.get(f"{api}/task/{tid}", headers=bearer(k["root"])).status_code == 200
    assert httpx.get(f"{api}/task/{tid}", headers=bearer(k["alice"])).status_code == 200
    assert httpx.delete(f"{api}/task/{tid}", headers=bearer(k["bob"])).status_code == 404
    assert httpx.get(f"{api}/task/{tid}", headers=bearer(k["alice"])).status_code == 200  # still there


def test_a_read_key_only_reads(keyed):
    api, viewer = keyed.api, bearer(keyed.keys["viewer"])
    assert httpx.get(f"{api}/tasks", headers=viewer).status_code == 200
    r = httpx.post(f"{api}/task/create", json={"task_name": "x", "config": CONFIG}, headers=viewer)
    assert r.status_code == 403 and "scope read" in r.json()["detail"] and "run or admin" in r.json()["detail"]
    tid = new_task(api, bearer(keyed.keys["root"]))
    assert httpx.get(f"{api}/task/{tid}", headers=viewer).status_code == 404  # not its task
    assert httpx.delete(f"{api}/task/{tid}", headers=viewer).status_code == 403


def test_health_stays_open_and_shows_nothing_private(keyed):
    anon = httpx.get(keyed.api + "/health")
    assert anon.status_code == 200 and anon.json()["status"] == "ok"
    body = anon.text
    assert "service.db" not in body and "sqlite:///" not in body
    mine = httpx.get(keyed.api + "/health", headers=bearer(keyed.keys["viewer"])).json()
    assert mine["store"]["url"].startswith("sqlite:///") or mine["store"]["backend"] == "postgresql"


def test_the_page_signs_in_with_a_cookie(keyed):
    api, key = keyed.api, keyed.keys["alice"]
    assert httpx.get(keyed.srv.url + "/").status_code == 200  # the page loads, then asks for a key
    bad = httpx.post(f"{api}/session", json={"key": "nope"})
    assert bad.status_code == 401 and "unknown or revoked" in bad.json()["detail"]
    r = httpx.post(f"{api}/session", json={"key": key})
    assert r.status_code == 200 and "alice" in r.json()["message"]
    cookie = r.headers["set-cookie"].lower()
    assert "gsv_key=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    with httpx.Client(base_url=api, cookies={"gsv_key": key}) as page:
        tid = page.post("/task/create", json={"task_name": "from the page", "config": CONFIG}).json()["task_id"]
        assert page.get(f"/task/{tid}").status_code == 200  # GET: <audio src>, download links
        # a change made with the cookie alone must say JSON, even without a body
        no_type = page.post(f"/task/{tid}/cancel")
        assert no_type.status_code == 415 and "Content-Type: application/json" in no_type.json()["detail"]
        assert page.post(f"/task/{tid}/cancel", headers={"Content-Type": "application/json"}).status_code == 200
        evil = page.post(f"/task/{tid}/cancel", headers={"Content-Type": "application/json",
                                                         "Origin": "http://evil.example"})
        assert evil.status_code == 403 and "cross-site" in evil.json()["detail"]
    assert tid in {t["task_id"] for t in httpx.get(f"{api}/tasks", headers=bearer(key)).json()}
    out = httpx.delete(f"{api}/session", cookies={"gsv_key": key}, headers={"Content-Type": "application/json"})
    assert out.status_code == 200 and "max-age=0" in out.headers["set-cookie"].lower()


def test_a_revoked_key_stops_working(keyed):
    key = create_key(keyed.env, keyed.srv.cwd, "temp", "run")
    assert wait_for(lambda: httpx.get(keyed.api + "/tasks", headers=bearer(key)).status_code == 200, 10)
    assert keys_cli(keyed.env, keyed.srv.cwd, "revoke", "temp").returncode == 0
    t0 = time.monotonic()
    wait_for(lambda: httpx.get(keyed.api + "/tasks", headers=bearer(key)).status_code == 401, 10,
             what="the revoked key to be refused")
    assert time.monotonic() - t0 < 5


def test_the_client_sends_the_key_from_gsv_api_key(keyed):
    import subprocess
    import sys

    from tests.conftest import ROOT

    tid = new_task(keyed.api, bearer(keyed.keys["bob"]), "bob's listed")
    run = [sys.executable, str(ROOT / "client_example.py"), "--url", keyed.srv.url, "list"]
    env = {k: v for k, v in keyed.env.items() if k != "GSV_API_KEY"}
    without = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert without.returncode != 0 and "API key" in without.stderr
    listed = subprocess.run(run, env={**env, "GSV_API_KEY": keyed.keys["bob"]}, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert tid in listed.stdout or "bob's listed" in listed.stdout


def _task_ids_streamed(url: str, headers: dict, seconds: float = 3.0) -> set[str]:
    """Task ids of the events a stream sends within `seconds` (from the start of the log)."""
    import json

    found: set[str] = set()
    try:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=seconds)) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data:"):
                    found.add(json.loads(line[5:])["task_id"])
    except httpx.ReadTimeout:
        pass
    return found


def test_the_service_wide_stream_carries_only_the_keys_own_tasks(keyed, tmp_path):
    from tests.test_logs_client import recording

    api, k = keyed.api, keyed.keys
    tid = new_task(api, bearer(k["alice"]), "alice streams")
    with recording(tmp_path / "tone.wav").open("rb") as f:
        r = httpx.post(f"{api}/task/{tid}/files/upload", files={"file": ("tone.wav", f)}, headers=bearer(k["alice"]))
    assert r.status_code == 200, r.text
    assert httpx.post(f"{api}/task/{tid}/step/convert_audio", json={}, headers=bearer(k["alice"])).status_code == 202
    wait_for(lambda: httpx.get(f"{api}/task/{tid}", headers=bearer(k["alice"])).json()["status"]
             in ("completed", "failed"), 60, what="convert_audio to end")
    assert tid in _task_ids_streamed(f"{api}/events?after=0", bearer(k["alice"]))
    assert tid in _task_ids_streamed(f"{api}/events?after=0", bearer(k["root"]))
    assert tid not in _task_ids_streamed(f"{api}/events?after=0", bearer(k["bob"]))
