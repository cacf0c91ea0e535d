"""Per-key limits over real HTTP: tasks per key (GSV_MAX_TASKS_PER_KEY) and open event/log streams
per key (GSV_MAX_STREAMS_PER_KEY), each answered 429 with what to do."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import LiveServer, server_env, wait_for
from tests.test_auth_http import CONFIG, bearer
from tests.test_auth_keys import create_key


def test_tasks_and_streams_per_key_are_limited(tmp_path):
    env = server_env(tmp_path, GSV_MAX_TASKS_PER_KEY="2", GSV_MAX_STREAMS_PER_KEY="2")
    a = bearer(create_key(env, tmp_path, "a", "run"))
    b = bearer(create_key(env, tmp_path, "b", "run"))
    srv = LiveServer(env, tmp_path).start()
    api = srv.url + "/api/v1"

    def create(headers: dict) -> httpx.Response:
        return httpx.post(f"{api}/task/create", json={"task_name": "t", "config": CONFIG}, headers=headers)

    try:
        first, second = create(a).json()["task_id"], create(a).json()["task_id"]
        r = create(a)
        assert r.status_code == 429 and "GSV_MAX_TASKS_PER_KEY=2" in r.json()["detail"]
        assert "DELETE /api/v1/task/" in r.json()["detail"]
        assert create(b).status_code == 200  # another key's quota is its own
        assert httpx.delete(f"{api}/task/{first}", headers=a).status_code == 200
        assert create(a).status_code == 200  # a deleted task frees its place

        with ExitStack() as open_streams:
            for path in (f"/task/{second}/events", "/events"):
                r = open_streams.enter_context(httpx.stream("GET", api + path, headers=a, timeout=10))
                assert r.status_code == 200
            with httpx.stream("GET", f"{api}/task/{second}/logs?follow=true", headers=a, timeout=10) as r:
                assert r.status_code == 429 and "GSV_MAX_STREAMS_PER_KEY" in r.read().decode()
            try:
                connect(f"ws://127.0.0.1:{srv.port}/api/v1/task/{second}/ws", additional_headers=a,
                        open_timeout=10).close()
                raise AssertionError("a third stream was accepted")
            except InvalidStatus as e:
                assert e.response.status_code == 429
            with httpx.stream("GET", f"{api}/events", headers=b, timeout=10) as r:
                assert r.status_code == 200  # b's streams are counted apart
        # closed streams free their places (the server notices the disconnect within its poll)
        wait_for(lambda: _stream_opens(f"{api}/events", a), 15, what="a closed stream to be released")
    finally:
        srv.stop()


def _stream_opens(url: str, headers: dict) -> bool:
    with httpx.stream("GET", url, headers=headers, timeout=10) as r:
        return r.status_code == 200
