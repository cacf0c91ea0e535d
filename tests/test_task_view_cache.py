"""GET task answers from a per-process view cache, always the store's truth, with ETag / 304."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from gsv_service.db import make_engine
from gsv_service.models import Task, table_of


def _set_name(db_url: str, task_id: str, name: str) -> None:
    """A write by another process (another worker, or a Ray worker): its own connection."""
    db = make_engine(db_url)
    try:
        with db.begin() as c:
            c.execute(update(table_of(Task)).where(table_of(Task).c.id == task_id).values(name=name))
    finally:
        db.dispose()


def _url(live_server, tmp_path, db_url: str | None) -> str:
    return db_url or f"sqlite:///{(tmp_path / 'service.db').resolve()}"


def test_an_unchanged_task_answers_304_to_its_etag(live_server):
    base = live_server.url
    tid = httpx.post(f"{base}/api/v1/task/create", json={"task_name": "poll"}).json()["task_id"]
    with httpx.Client(base_url=base) as c:
        first = c.get(f"/api/v1/task/{tid}")
        again = c.get(f"/api/v1/task/{tid}")
        assert first.status_code == again.status_code == 200
        etag = first.headers["etag"]
        assert etag == again.headers["etag"] and first.content == again.content
        unchanged = c.get(f"/api/v1/task/{tid}", headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["etag"] == etag
        stale = c.get(f"/api/v1/task/{tid}", headers={"If-None-Match": '"not-this-one"'})
        assert stale.status_code == 200 and stale.json()["task_id"] == tid


def test_a_write_by_another_process_shows_in_the_next_answer(live_server, tmp_path, db_url):
    """The cache must never answer with what the store no longer holds: a commit on another
    connection (SQLite: data_version moves) makes the next poll read the store again."""
    base = live_server.url
    tid = httpx.post(f"{base}/api/v1/task/create", json={"task_name": "before"}).json()["task_id"]
    with httpx.Client(base_url=base) as c:
        first = c.get(f"/api/v1/task/{tid}")
        assert first.json()["task_name"] == "before"
        for i in range(3):  # every write, not only the first
            _set_name(_url(live_server, tmp_path, db_url), tid, f"after {i}")
            now = c.get(f"/api/v1/task/{tid}", headers={"If-None-Match": first.headers["etag"]})
            assert now.status_code == 200 and now.json()["task_name"] == f"after {i}"
            assert now.headers["etag"] != first.headers["etag"]


def test_a_deleted_task_is_404_at_once(live_server):
    base = live_server.url
    tid = httpx.post(f"{base}/api/v1/task/create", json={"task_name": "gone"}).json()["task_id"]
    with httpx.Client(base_url=base) as c:
        assert c.get(f"/api/v1/task/{tid}").status_code == 200
        assert c.delete(f"/api/v1/task/{tid}").status_code == 200
        assert c.get(f"/api/v1/task/{tid}").status_code == 404
