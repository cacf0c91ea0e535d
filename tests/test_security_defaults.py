"""Safe defaults with no key configured (real server on loopback): a Host header naming another
site is refused (DNS rebinding), another site's page cannot change anything through a visitor's
browser, CORS is off unless configured, and the server refuses to listen beyond loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import ROOT, LiveServer, free_port, server_env
from tests.test_auth_keys import create_key

CONFIG = {"exp_name": "spk", "language": "zh"}
EVIL = "http://evil.example"
WAV = ("a.wav", b"RIFF....WAVE", "audio/wav")


@pytest.fixture(scope="module")
def open_server(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("open")
    srv = LiveServer(server_env(tmp), tmp).start()
    yield srv
    srv.stop()


def new_task(api: str) -> str:
    r = httpx.post(f"{api}/task/create", json={"task_name": "t", "config": CONFIG})
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def test_a_host_header_naming_another_site_is_refused(open_server):
    api = open_server.url + "/api/v1"
    r = httpx.get(f"{api}/tasks", headers={"Host": "evil.example"})
    assert r.status_code == 400 and "GSV_TRUSTED_HOSTS" in r.json()["detail"]
    r = httpx.post(f"{api}/task/create", json={"task_name": "t", "config": CONFIG},
                   headers={"Host": f"evil.example:{open_server.port}"})
    assert r.status_code == 400
    for host in ("127.0.0.1", "localhost", f"localhost:{open_server.port}", f"[::1]:{open_server.port}"):
        assert httpx.get(f"{api}/tasks", headers={"Host": host}).status_code == 200, host
    sock = socket.create_connection(("127.0.0.1", open_server.port))  # the name resolves here: rebinding
    with pytest.raises(InvalidStatus):
        connect(f"ws://evil.example:{open_server.port}/api/v1/task/{new_task(api)}/ws", sock=sock,
                open_timeout=10)


def test_another_site_cannot_change_anything(open_server):
    api = open_server.url + "/api/v1"
    tid = new_task(api)
    # what a cross-site <form> or fetch without preflight sends: multipart, text/plain, urlencoded
    r = httpx.post(f"{api}/task/{tid}/files/upload", files={"file": WAV}, headers={"Origin": EVIL})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    r = httpx.post(f"{api}/task/{tid}/cancel", content=b"x", headers={"Origin": EVIL, "Content-Type": "text/plain"})
    assert r.status_code in (403, 415)
    r = httpx.post(f"{api}/task/{tid}/step/convert_audio", content=b"a=1",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    r = httpx.post(f"{api}/task/{tid}/cancel", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = httpx.delete(f"{api}/task/{tid}", headers={"Origin": "null"})
    assert r.status_code == 403
    with pytest.raises(InvalidStatus):  # a WebSocket is not covered by CORS: its Origin is checked
        connect(f"ws://127.0.0.1:{open_server.port}/api/v1/task/{tid}/ws", origin=EVIL, open_timeout=10)
    assert httpx.get(f"{api}/task/{tid}").json()["status"] == "created"
    assert httpx.get(f"{api}/task/{tid}/files").json().get("input_audio", []) == []


def test_this_sites_page_and_plain_clients_still_work(open_server):
    api = open_server.url + "/api/v1"
    tid = new_task(api)
    same = {"Origin": open_server.url}
    assert httpx.post(f"{api}/task/{tid}/files/upload", files={"file": WAV}, headers=same).status_code == 200
    # the original client (lesliegaga/GPT-SoVITS) posts cancel and deletes with no body and no key
    assert httpx.post(f"{api}/task/{tid}/cancel").status_code == 200
    assert httpx.delete(f"{api}/task/{tid}").status_code == 200
    with connect(f"ws://127.0.0.1:{open_server.port}/api/v1/task/{new_task(api)}/ws", open_timeout=10,
                 origin=open_server.url):
        pass


def test_cors_is_off_by_default_and_on_for_configured_origins(open_server, tmp_path):
    api = open_server.url + "/api/v1"
    pre = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization,content-type"}
    r = httpx.options(f"{api}/task/create", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in httpx.get(f"{api}/tasks", headers={"Origin": EVIL}).headers
    srv = LiveServer(server_env(tmp_path, GSV_CORS_ORIGINS="http://app.example"), tmp_path).start()
    try:
        r = httpx.options(f"{srv.url}/api/v1/task/create", headers=pre)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://app.example"
        r = httpx.options(f"{srv.url}/api/v1/task/create", headers={**pre, "Origin": EVIL})
        assert "access-control-allow-origin" not in r.headers
        r = httpx.get(f"{srv.url}/api/v1/tasks", headers={"Origin": "http://app.example"})
        assert r.headers["access-control-allow-origin"] == "http://app.example"
        assert "x-total-count" in r.headers["access-control-expose-headers"].lower()
    finally:
        srv.stop()


def _serve(tmp_path, host: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "training_service.py"), "--host", host, "--port",
                             str(free_port()), "--log-level", "warning", *extra], cwd=tmp_path,
                            env=server_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _started(proc: subprocess.Popen, seconds: float = 20) -> bool:
    """True when the server is still running after `seconds` (then stopped), False when it exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    running = proc.poll() is None
    if running:
        proc.terminate()
        proc.wait(30)
    return running


def test_listening_beyond_loopback_without_a_key_is_refused(tmp_path):
    proc = _serve(tmp_path, "0.0.0.0")
    assert not _started(proc), "the server started open on 0.0.0.0"
    err = proc.stderr.read()
    assert proc.returncode == 2
    assert "python -m gsv_service keys create" in err and "--insecure" in err and "0.0.0.0" in err
    assert _started(_serve(tmp_path, "0.0.0.0", "--insecure"), 8)
    create_key(server_env(tmp_path), tmp_path, "admin", "admin")
    assert _started(_serve(tmp_path, "0.0.0.0"), 8)


def test_start_service_checks_the_bind_address_before_starting(tmp_path):
    """start_service.sh runs this check first (with --daemon the server's own refusal goes unseen)."""
    check = [sys.executable, "-m", "gsv_service.auth.bind"]
    env = server_env(tmp_path)
    r = subprocess.run([*check, "0.0.0.0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "keys create" in r.stderr
    for args in (["127.0.0.1"], ["::1"], ["localhost"], ["0.0.0.0", "--insecure"]):
        assert subprocess.run([*check, *args], cwd=tmp_path, env=env, timeout=60).returncode == 0, args
    script = (ROOT / "start_service.sh").read_text()
    assert script.index("gsv_service.auth.bind") < script.index('CMD=("$VENV/bin/python" training_service.py')


def test_the_default_bind_address_is_loopback():
    import training_service

    assert training_service.parse_args([]).host == "127.0.0.1"
    assert "HOST=127.0.0.1 " in (ROOT / "start_service.sh").read_text()
