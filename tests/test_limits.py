"""Issue 10, item 4 (limits other than per key): request body size for JSON, files per upload,
bytes per task and in total, task creation under concurrency, and upload vs delete of one task.
Each attack of the issue is a test here, against a live server where only one shows it."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from gsv_service.app import create_app
from tests.conftest import LiveServer, make_settings, server_env, wait_for

pytestmark = pytest.mark.timeout(300)
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    """One server with the default limits for this module (its task folders: live.cwd / api_tasks)."""
    tmp = tmp_path_factory.mktemp("live")
    srv = LiveServer(server_env(tmp), tmp).start()
    yield srv
    srv.stop()


def _create(c, name: str = "t") -> str:
    r = c.post("/api/v1/task/create", json={"task_name": name, "config": {"exp_name": "spk"}})
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def _files_body(n: int, size: int = 8) -> bytes:
    parts = [b'--B0\r\nContent-Disposition: form-data; name="files"; filename="f%05d.wav"\r\n'
             b"Content-Type: audio/wav\r\n\r\n" % i + b"x" * size + b"\r\n" for i in range(n)]
    return b"".join(parts) + b"--B0--\r\n"


def _upload_raw(c, tid: str, body: bytes) -> httpx.Response:
    return c.post(f"/api/v1/task/{tid}/files/upload", content=body,
                  headers={"content-type": "multipart/form-data; boundary=B0"})


def _upload(c, tid: str, name: str, size: int) -> httpx.Response:
    return c.post(f"/api/v1/task/{tid}/files/upload", files={"file": (name, b"\0" * size, "audio/wav")})


def _leftovers(task_root: Path) -> list[Path]:
    return list(task_root.rglob(".upload-*"))


# ---------- JSON bodies: 413 while they arrive ----------

def _raw_request(port: int, head: bytes, chunks: Iterator[bytes], wait: float = 10.0) -> tuple[int, bytes, int]:
    """Send head, then chunks from another thread until the server answers or closes; returns
    (status, response bytes, body bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sent, stop = [0], threading.Event()

    def pump() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    sock.sendall(head)
    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    sock.settimeout(wait)
    got = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += data
            if b"\r\n\r\n" in got and got.rstrip().endswith(b"}"):
                break
    except (TimeoutError, ConnectionResetError):
        pass
    stop.set()
    sock.close()
    pumper.join(10)
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else 0
    return status, got, sent[0]


def _zeros(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    block = b"0" * chunk
    for _ in range(total // chunk):
        yield block


def _chunked(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    block = b"%x\r\n" % chunk + b"0" * chunk + b"\r\n"
    for _ in range(total // chunk):
        yield block


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_200_mb_json_body_is_413_quickly_without_memory_growth(live, framing):
    proc = psutil.Process(live.proc.pid)
    rss_before = proc.memory_info().rss
    size = 200 * MIB
    length = f"content-length: {size}" if framing == "content-length" else "transfer-encoding: chunked"
    head = (f"POST /api/v1/task/create HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"{length}\r\n\r\n").encode()
    t0 = time.monotonic()
    status, raw, sent = _raw_request(live.port, head, _zeros(size) if framing == "content-length"
                                     else _chunked(size))
    elapsed = time.monotonic() - t0
    assert status == 413, raw[:500]
    assert b"GSV_MAX_JSON_BYTES" in raw
    assert elapsed < 5, elapsed
    assert proc.memory_info().rss - rss_before < 64 * MIB
    assert sent < 100 * MIB            # cut off long before the end
    with httpx.Client(base_url=live.url, timeout=30) as c:  # the server goes on serving
        assert c.get("/api/v1/tasks").status_code == 200


def test_json_bodies_up_to_the_limit_pass_and_over_it_are_413(live):
    with httpx.Client(base_url=live.url, timeout=30) as c:
        r = c.post("/api/v1/task/create", content=b'{"task_name": "' + b"n" * (MIB - 100) + b'"}',
                   headers={"content-type": "application/json"})
        assert r.status_code == 422 and "task_name" in r.json()["detail"]   # read, then validated
        r = c.post("/api/v1/task/create", content=b'{"task_name": "' + b"n" * (MIB + 10) + b'"}',
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and "GSV_MAX_JSON_BYTES" in r.json()["detail"]
        tid = _create(c)                                      # uploads are not JSON: their own limit
        r = _upload(c, tid, "big.wav", 3 * MIB)
        assert r.status_code == 200 and r.json()["size"] == 3 * MIB


# ---------- files per upload ----------

def test_25000_parts_in_one_upload_are_413_not_500(live):
    with httpx.Client(base_url=live.url, timeout=60) as c:
        tid = _create(c)
        r = _upload_raw(c, tid, _files_body(25_000))
        assert r.status_code == 413, r.text
        assert "more than 1000 files" in r.json()["detail"] and "GSV_MAX_UPLOAD_FILES" in r.json()["detail"]
        assert list((live.cwd / "api_tasks" / tid / "input_audio").iterdir()) == []
        r = _upload_raw(c, tid, _files_body(1000))
        assert r.status_code == 200 and len(r.json()["files"]) == 1000
    assert _leftovers(live.cwd / "api_tasks" / tid) == []


def test_gsv_max_upload_files_sets_the_number(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, max_upload_files=100))) as c:
        tid = _create(c)
        r = _upload_raw(c, tid, _files_body(101))
        assert r.status_code == 413 and "more than 100 files" in r.json()["detail"], r.text
        assert _upload_raw(c, tid, _files_body(100)).status_code == 200


def test_many_files_in_one_upload_hold_one_file_open_at_a_time(tmp_path):
    """Every part used to keep its file open until the request ended: with the process's limit of
    open files below the number of parts, that was a 500 (too many open files)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with TestClient(create_app(make_settings(tmp_path)), raise_server_exceptions=False) as c:
        tid = _create(c)
        body = _files_body(600)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, psutil.Process().num_fds() + 200), hard))
        try:
            r = _upload_raw(c, tid, body)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert r.status_code == 200, r.text
        assert len(list((tmp_path / "api_tasks" / tid / "input_audio").iterdir())) == 600


# ---------- bytes per task and in total ----------

def test_twenty_uploads_of_5_mb_stop_at_the_task_budget(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, max_task_mb=20))) as c:
        tid = _create(c)
        codes = [_upload(c, tid, f"take{i:02d}.wav", 5_000_000).status_code for i in range(20)]
        assert codes == [200] * 4 + [413] * 16, codes
        r = _upload(c, tid, "more.wav", 5_000_000)
        assert "GSV_MAX_TASK_MB" in r.json()["detail"] and "new task" in r.json()["detail"]
        assert _upload(c, tid, "small.wav", 100_000).status_code == 200   # what is left still fits
        used = sum(p.stat().st_size for p in (tmp_path / "api_tasks" / tid).rglob("*") if p.is_file())
        assert used <= 20 * MIB
        assert _leftovers(tmp_path / "api_tasks") == []


def test_the_total_budget_covers_all_tasks(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, max_total_mb=8))) as c:
        a, b = _create(c, "a"), _create(c, "b")
        assert _upload(c, a, "a.wav", 5 * MIB).status_code == 200
        r = _upload(c, b, "b.wav", 5 * MIB)
        assert r.status_code == 413 and "GSV_MAX_TOTAL_MB" in r.json()["detail"], r.text
        assert not (tmp_path / "api_tasks" / b / "input_audio" / "b.wav").exists()
        assert _upload(c, b, "b.wav", 2 * MIB).status_code == 200


# ---------- task creation under concurrency ----------

def test_400_task_creations_16_at_a_time_all_succeed_with_distinct_seq(tmp_path, db_url):
    srv = LiveServer(server_env(tmp_path, db_url), tmp_path).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=60,
                          limits=httpx.Limits(max_connections=16, max_keepalive_connections=16)) as c:
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(lambda i: c.post("/api/v1/task/create", json={
                    "task_name": f"t{i}", "config": {"exp_name": "spk"}}), range(400)))
            assert [r.status_code for r in answers if r.status_code != 200] == []
            ids = {r.json()["task_id"] for r in answers}
            assert len(ids) == 400
            listed = c.get("/api/v1/tasks", params={"limit": 1000})
            assert listed.headers["x-total-count"] == "400"
    finally:
        srv.stop()
    from sqlalchemy import create_engine, text
    eng = create_engine(db_url or f"sqlite:///{tmp_path / 'service.db'}")
    with eng.connect() as conn:
        n, distinct = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT seq) FROM tasks")).one()
    eng.dispose()
    assert n == distinct == 400


# ---------- upload and delete of one task ----------

HEAD = (b'--B0\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n")


def _racing_body(when: str, go: threading.Event) -> Iterator[bytes]:
    """A multipart body that stops (until `go`) before its first file, or in the middle of it."""
    if when == "before_the_first_file":
        yield b"--"
        go.wait(30)
        yield b"B0\r\n" + HEAD[6:] + b"\0" * 1000 + b"\r\n"
    else:
        yield HEAD + b"\0" * (3 * MIB)   # over 1 MiB: flushed to a temp file in the task folder
        go.wait(30)
        yield b"\0" * 1000 + b"\r\n"
        if when == "mid_file_then_another_file":
            yield b'--B0\r\nContent-Disposition: form-data; name="files"; filename="b.wav"\r\n\r\nbb\r\n'
    yield b"--B0--\r\n"


def _upload_racing_delete(srv: LiveServer, when: str) -> None:
    go, answer = threading.Event(), {}
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        tid = _create(c)
        root = srv.cwd / "api_tasks" / tid

        def send() -> None:
            answer["r"] = c.post(f"/api/v1/task/{tid}/files/upload", content=_racing_body(when, go),
                                 headers={"content-type": "multipart/form-data; boundary=B0"})
        sender = threading.Thread(target=send)
        sender.start()
        if when == "before_the_first_file":
            time.sleep(1.0)                   # the handler has found the task and waits for parts
        else:
            wait_for(lambda: list(root.glob("input_audio/.upload-*")), what="the upload's temp file")
        assert c.delete(f"/api/v1/task/{tid}").status_code == 200
        assert not root.exists()
        go.set()
        sender.join(60)
        r = answer["r"]
        assert r.status_code == 404, r.text
        assert "deleted" in r.json()["detail"]
        assert not root.exists()
        assert c.get(f"/api/v1/task/{tid}").status_code == 404
        assert tid not in {t["task_id"] for t in c.get("/api/v1/tasks", params={"limit": 1000}).json()}


@pytest.mark.parametrize("when", ["before_the_first_file", "mid_file", "mid_file_then_another_file"])
def test_an_upload_that_ends_after_its_task_was_deleted_is_404_and_leaves_no_folder(live, when):
    _upload_racing_delete(live, when)


def test_upload_and_delete_exclude_each_other_on_every_database(tmp_path, db_url):
    srv = LiveServer(server_env(tmp_path, db_url), tmp_path).start()
    try:
        _upload_racing_delete(srv, "mid_file_then_another_file")
    finally:
        srv.stop()


def test_an_upload_that_ends_before_the_delete_goes_with_the_task(live):
    with httpx.Client(base_url=live.url, timeout=60) as c:
        tid = _create(c)
        assert _upload(c, tid, "a.wav", 1000).status_code == 200
        assert (live.cwd / "api_tasks" / tid / "input_audio" / "a.wav").is_file()
        assert c.delete(f"/api/v1/task/{tid}").status_code == 200
        assert not (live.cwd / "api_tasks" / tid).exists()


def test_a_delete_waits_while_an_upload_holds_the_task_row(tmp_path, db_url):
    from gsv_service.task_guard import task_row_held
    from tests.conftest import runner_env

    with runner_env(tmp_path, db_url) as (_settings, store, _runner):
        tid = store.create_task("t", {"exp_name": "x"}).id
        deleted = threading.Event()
        deleter = threading.Thread(target=lambda: (store.delete_task(tid), deleted.set()))
        with task_row_held(store.db, tid) as alive:
            assert alive
            deleter.start()
            assert not deleted.wait(1.0)      # the files are being moved into place: the delete waits
        deleter.join(30)
        assert deleted.is_set() and store.get_task(tid) is None
        with task_row_held(store.db, tid) as alive:
            assert not alive
