"""Restart persistence against a real uvicorn process: tasks survive a crash (SIGKILL)."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer, server_env


def test_tasks_and_files_survive_a_crash(tmp_path, db_url):
    env = server_env(tmp_path, db_url)
    srv = LiveServer(env, tmp_path).start()
    try:
        api = srv.url + "/api/v1"
        ids = []
        for i in range(3):
            r = httpx.post(api + "/task/create", json={"task_name": f"t{i}", "config": {"exp_name": f"e{i}"}})
            ids.append(r.json()["task_id"])
        r = httpx.post(f"{api}/task/{ids[1]}/files/upload", files={"file": ("v.wav", b"RIFFdata", "audio/wav")})
        assert r.status_code == 200
        before = httpx.get(api + "/tasks").json()
    finally:
        srv.kill()
    srv2 = LiveServer(env, tmp_path).start()
    try:
        after = httpx.get(srv2.url + "/api/v1/tasks").json()
        assert [t["task_id"] for t in after] == ids
        assert after == before
        got = httpx.get(f"{srv2.url}/api/v1/task/{ids[1]}/files/download/v.wav")
        assert got.content == b"RIFFdata"
    finally:
        srv2.stop()
