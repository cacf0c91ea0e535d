"""Logs and the client (issue 9, item 10): the logs endpoint and `client_example.py logs` show the
log without the service's `@@gsv` progress lines; `tail` counts lines, `tail_bytes` bytes; the
client's `download` with nothing to download says so and exits non-zero; the library's waiting
polls start at 0.2 s and back off to poll_interval."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

import client_example
from client_example import GPTSoVITSClient
from gsv_service.log_view import tail_text
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)
CLIENT = ROOT / "client_example.py"
SR = 32000


@pytest.fixture
def db_url():  # logs and the client, not the store: SQLite only
    return None


def recording(path: Path, pieces: int = 2) -> Path:
    """Tones of 2.5 s with a second of silence between them: `pieces` slices."""
    t = np.arange(int(2.5 * SR)) / SR
    parts = [np.zeros(SR // 2)]
    for i in range(pieces):
        parts += [0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t), np.zeros(SR)]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.concatenate(parts), SR, subtype="PCM_16")
    return path


def sliced_task(api: str, tmp_path: Path) -> tuple[str, dict]:
    """A task whose slice_audio ran in three shards (each prints progress lines into the log)."""
    tid = httpx.post(f"{api}/task/create", json={"task_name": "logs", "config": {"exp_name": "spk"}}).json()["task_id"]
    for i in range(3):
        recording(tmp_path / "api_tasks" / tid / "converted_wav" / f"rec{i}.wav")
    run = httpx.post(f"{api}/task/{tid}/step/slice_audio", json={"params": {"workers": 3}}).json()
    deadline = time.monotonic() + 60
    while (got := httpx.get(f"{api}/task/{tid}/runs/{run['run_id']}").json())["status"] not in (
            "completed", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert got["status"] == "completed", got["error_message"]
    return tid, got


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLIENT), "--url", url, *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_logs_leave_out_protocol_lines_and_tail_counts_lines(live_server, tmp_path):
    api = live_server.url + "/api/v1"
    tid, run = sliced_task(api, tmp_path)
    raw = next((tmp_path / "api_tasks" / tid / "logs").glob("slice_audio-*.log")).read_text(encoding="utf-8")
    assert raw.count("\n@@gsv {") >= 6  # progress and result of each shard
    readable = [ln for ln in raw.splitlines() if not ln.startswith("@@gsv ")]
    assert len(readable) == 4 and readable[-1] == "[service] completed"

    full = httpx.get(f"{api}/task/{tid}/logs").json()
    assert full["logs"] == "".join(ln + "\n" for ln in readable) and full["truncated"] is False
    assert full["run_id"] == run["id"] and full["status"] == "completed"
    two = httpx.get(f"{api}/task/{tid}/logs", params={"tail": 2}).json()
    assert two["logs"].splitlines() == readable[-2:] and two["truncated"] is True
    assert "(shard 3/3)" in two["logs"]
    many = httpx.get(f"{api}/task/{tid}/logs", params={"tail": 1000}).json()
    assert many == full
    few_bytes = httpx.get(f"{api}/task/{tid}/logs", params={"tail_bytes": 30}).json()
    assert few_bytes["logs"] == "[service] completed\n" and few_bytes["truncated"] is True
    both = httpx.get(f"{api}/task/{tid}/logs", params={"tail": 3, "tail_bytes": 400}).json()
    assert len(both["logs"].encode()) <= 400 and 0 < len(both["logs"].splitlines()) <= 3
    assert "@@gsv" not in "".join(r["logs"] for r in (two, few_bytes, both))
    with httpx.stream("GET", f"{api}/task/{tid}/logs", params={"follow": "true", "tail": 2}, timeout=30) as r:
        assert r.status_code == 200 and "".join(r.iter_text()).splitlines() == readable[-2:]
    for bad in ({"tail": 0}, {"tail_bytes": 0}, {"tail": "many"}):
        r = httpx.get(f"{api}/task/{tid}/logs", params=bad)
        assert r.status_code == 422 and "tail" in str(r.json()["detail"])

    out = cli(live_server.url, "logs", tid)
    assert out.returncode == 0 and out.stdout == full["logs"], out.stderr
    out = cli(live_server.url, "logs", tid, "--step", "slice_audio", "--tail", "1")
    assert out.returncode == 0 and out.stdout == "[service] completed\n", out.stderr


def test_following_a_running_step_streams_no_protocol_lines(live_server, tmp_path):
    api = live_server.url + "/api/v1"
    tid = httpx.post(f"{api}/task/create", json={"task_name": "f", "config": {"exp_name": "spk"}}).json()["task_id"]
    for i in range(6):
        recording(tmp_path / "api_tasks" / tid / "converted_wav" / f"rec{i}.wav", pieces=3)
    httpx.post(f"{api}/task/{tid}/step/slice_audio", json={"params": {"workers": 1}})
    with httpx.stream("GET", f"{api}/task/{tid}/logs", params={"follow": "true"}, timeout=60) as r:
        followed = "".join(r.iter_text())
    assert followed.endswith("[service] completed\n") and "@@gsv" not in followed
    raw = next((tmp_path / "api_tasks" / tid / "logs").glob("slice_audio-*.log")).read_text(encoding="utf-8")
    assert "@@gsv" in raw


def test_tail_text_reads_lines_back_across_chunks(tmp_path, monkeypatch):
    import gsv_service.log_view as lv
    monkeypatch.setattr(lv, "_CHUNK", 5)  # many small reads: the line joins between chunks
    log = tmp_path / "run.log"
    log.write_bytes(b"first\n@@gsv {}\nsecond line\nbar 1\r@@gsv {}\rbar 2\n@@gsv {}\nstill writ")
    assert tail_text(log, 2) == ("bar 1\rbar 2\nstill writ", True)
    assert tail_text(log, 10) == ("first\nsecond line\nbar 1\rbar 2\nstill writ", False)
    assert tail_text(log, None, 40) == ("still writ", True)  # a line cut by the byte limit is left out
    assert tail_text(log, None, 45) == ("bar 1\rbar 2\nstill writ", True)
    assert tail_text(log, 1, end=len(b"first\n@@gsv {}\n")) == ("first\n", False)
    assert tail_text(tmp_path / "missing.log", 5) == ("", False)


def test_cli_download_with_nothing_to_download_says_so_and_fails(live_server, tmp_path):
    api = live_server.url + "/api/v1"
    tid = httpx.post(f"{api}/task/create", json={"task_name": "empty"}).json()["task_id"]
    out = cli(live_server.url, "download", tid, "--dir", str(tmp_path / "dl"))
    assert out.returncode == 1 and out.stdout == ""
    assert f"nothing to download: task {tid} has no trained weights and no output.wav yet" in out.stderr
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").iterdir())
    out = cli(live_server.url, "download", "no-such-task", "--dir", str(tmp_path / "dl"))
    assert out.returncode == 1 and "not found" in out.stderr


def test_waiting_for_a_short_step_takes_well_under_the_poll_interval(live_server, tmp_path):
    """A 0.3 s step used to take 5 s to be seen finished (the first poll came after poll_interval)."""
    api = live_server.url + "/api/v1"
    tid = httpx.post(f"{api}/task/create", json={"task_name": "w", "config": {"exp_name": "spk"}}).json()["task_id"]
    recording(tmp_path / "api_tasks" / tid / "converted_wav" / "rec.wav")
    with GPTSoVITSClient(live_server.url, verbose=False) as c:  # poll_interval 5.0, the default
        assert c.poll_interval == 5.0
        c.execute_step(tid, "slice_audio")
        t0 = time.monotonic()
        assert c.wait_for_step_completion(tid, timeout=30)["status"] == "completed"
        assert time.monotonic() - t0 < 2.5


def _mock_client(answer) -> GPTSoVITSClient:
    c = GPTSoVITSClient("http://service", verbose=False)
    c.http = httpx.Client(base_url=c.api_base, transport=httpx.MockTransport(answer))
    return c


def test_polls_start_at_a_fifth_of_a_second_and_back_off_to_poll_interval(monkeypatch):
    answers = iter(["queued"] + ["running"] * 12 + ["completed"])

    def answer(req: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(200, json={"task_id": "t", "status": status, "progress": 50.0,
                                         "current_step": None if status == "queued" else "train_sovits"})

    sleeps: list[float] = []
    monkeypatch.setattr(client_example.time, "sleep", sleeps.append)
    assert _mock_client(answer).wait_for_step_completion("t")["status"] == "completed"
    # queued: 0.2; running starts over at 0.2 and grows by half each time, up to 5 s
    assert sleeps[:5] == pytest.approx([0.2, 0.2, 0.3, 0.45, 0.675])
    assert max(sleeps) == 5.0 and sleeps[-1] == 5.0 and len(sleeps) == 13


def test_waiting_without_an_event_stream_polls_the_same_way(monkeypatch):
    states = iter(["running"] * 4 + ["completed"] * 2)

    def answer(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/events"):  # a service without the event stream
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, json={"run_id": "r", "status": next(states)})

    sleeps: list[float] = []
    monkeypatch.setattr(client_example.time, "sleep", sleeps.append)
    assert _mock_client(answer).wait_for_run("t", "r")["status"] == "completed"
    assert sleeps == pytest.approx([0.2, 0.3, 0.45, 0.675])
