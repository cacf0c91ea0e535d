"""client_example.py against a live server (uvicorn on a loopback port) driving the engine's
contract double: the library with the original client's signatures, the command line through a
real flow, event-stream resume across a server restart, and Ctrl-C cancelling the task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from client_example import APIError, GPTSoVITSClient, _parse_sse
from tests.audio_fixtures import have_tools, long_speech
from tests.conftest import ROOT, LiveServer, server_env, wait_for
from tests.engine_support import DOUBLE_PYTHON, arrange_inputs, zh_lines

DOUBLE = ROOT / "tests" / "engine_double"
CLIENT = ROOT / "client_example.py"
CONFIG = {"exp_name": "spk", "language": "en", "epochs_s2": 1, "epochs_s1": 1, "batch_size": 1}

pytestmark = pytest.mark.skipif(not have_tools(), reason="espeak-ng and ffmpeg are needed")


def start_server(tmp_path: Path, db_url, **extra: str) -> LiveServer:
    env = server_env(tmp_path, db_url, GSV_ROOT=str(DOUBLE), GSV_PYTHON=DOUBLE_PYTHON, **extra)
    return LiveServer(env, tmp_path).start()


@pytest.fixture
def server(tmp_path, db_url):
    """On SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set."""
    srv = start_server(tmp_path, db_url)
    yield srv
    srv.stop()


@pytest.fixture
def sqlite_server(tmp_path):
    """The command-line tests test the client, not the store: SQLite only, to keep them quick."""
    srv = start_server(tmp_path, None)
    yield srv
    srv.stop()


@pytest.fixture
def slow_server(tmp_path):
    """Training takes 0.2 s per iteration (20 s per epoch): long enough to interrupt."""
    srv = start_server(tmp_path, None, DOUBLE_STEP_S="0.2", DOUBLE_PIDFILE=str(tmp_path / "pids"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """A folder with one ~19 s read-aloud recording (and espeak's hidden work files)."""
    folder = tmp_path_factory.mktemp("speech") / "audio"
    long_speech(folder / "reading.wav", n=4)
    return folder


def task_dir(tmp_path: Path, task_id: str) -> Path:
    return tmp_path / "api_tasks" / task_id


def write_transcripts(root: Path, out: Path) -> Path:
    """One .txt per slice (asr method 'provided'), named after the slices the server cut."""
    out.mkdir(parents=True, exist_ok=True)
    for wav in sorted((root / "sliced").glob("*.wav")):
        (out / f"{wav.stem}.txt").write_text("Some words read aloud for the test.\n", encoding="utf-8")
    return out


def cli(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLIENT), "--url", url, *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_original_methods_run_every_step(server, tmp_path, speech):
    c = GPTSoVITSClient(server.url, poll_interval=0.05, verbose=False)
    task = c.create_task("library", CONFIG)
    tid = task["task_id"]
    assert task["status"] == "created" and task["config"]["epochs_s2"] == 1
    assert c.get_task(tid)["task_name"] == "library"
    assert tid in [t["task_id"] for t in c.list_tasks()]

    with pytest.raises(APIError) as e:  # the API's detail, naming the step to run first
        c.execute_step(tid, "slice_audio")
    assert e.value.status_code == 409 and "convert_audio" in e.value.detail
    with pytest.raises(Exception, match="unknown step"):
        c.execute_step(tid, "no_such_step")
    with pytest.raises(FileNotFoundError):
        c.upload_file(tid, str(tmp_path / "missing.wav"))

    up = c.upload_file(tid, str(speech / "reading.wav"))
    root = task_dir(tmp_path, tid)
    assert up["filename"] == "reading.wav"
    assert (root / "input_audio" / "reading.wav").read_bytes() == (speech / "reading.wav").read_bytes()

    params = {"asr_transcribe": {"method": "provided"}, "test_inference": {"target_text": "Hello there."}}
    for step in ("convert_audio", "slice_audio", "asr_transcribe", "extract_text_features",
                 "extract_audio_features", "extract_speaker_vectors", "extract_semantic_features",
                 "train_sovits", "train_gpt", "test_inference"):
        if step == "asr_transcribe":
            for txt in sorted(write_transcripts(root, tmp_path / "tx").iterdir()):
                assert c.upload_file(tid, str(txt))["folder"] == "input_transcripts"
        started = c.execute_step(tid, step, params.get(step))
        assert started["step"] == step and started["run_id"]
        done = c.wait_for_step_completion(tid, timeout=60)
        assert done["status"] == "completed", (step, done["error_message"])
        assert done["steps"][step]["status"] == "completed"

    assert len(list((root / "sliced").glob("*.wav"))) >= 3
    assert "infer.py" in c.get_logs(tid) and "[service] completed" in c.get_logs(tid)
    saved = c.download_file(tid, "output.wav", str(tmp_path / "dl" / "voice.wav"))
    assert Path(saved).read_bytes() == (root / "output" / "output.wav").read_bytes()
    gpt = next((root / "weights" / "gpt").glob("*.ckpt"))
    assert Path(c.download_file(tid, gpt.name, str(tmp_path / "dl" / gpt.name))).read_bytes() == gpt.read_bytes()
    with pytest.raises(APIError) as e:
        c.download_file(tid, "nothing.wav", str(tmp_path / "dl" / "nothing.wav"))
    assert e.value.status_code == 404 and not (tmp_path / "dl" / "nothing.wav").exists()

    got = c.download_models(tid, str(tmp_path / "models"))
    assert sorted(Path(p).suffix for p in got) == [".ckpt", ".pth"]

    assert c.cancel_task(tid)["cancelled"] is False  # nothing runs
    assert "deleted" in c.delete_task(tid)["message"]
    assert not root.exists()
    with pytest.raises(APIError) as e:
        c.get_task(tid)
    assert e.value.status_code == 404


def test_cli_trains_from_a_folder_and_downloads(sqlite_server, tmp_path, speech):
    server = sqlite_server
    out = cli(server.url, "train", "--audio", str(speech), "--name", "cli", "--exp-name", "spk",
              "--language", "en", "--epochs-s2", "1", "--epochs-s1", "1", "--batch-size", "1",
              "--to-step", "slice_audio", "--no-progress")
    assert out.returncode == 0, out.stderr
    tid = out.stdout.split()[1]
    root = task_dir(tmp_path, tid)
    assert [p.name for p in (root / "input_audio").iterdir()] == ["reading.wav"]  # hidden files skipped
    assert "slice_audio: completed" in out.stderr and "pipeline: completed" in out.stderr

    out = cli(server.url, "upload", tid, str(write_transcripts(root, tmp_path / "tx")))
    assert out.returncode == 0 and "input_transcripts/" in out.stdout, out.stderr
    dl = tmp_path / "dl"
    out = cli(server.url, "run", tid, "--from-step", "asr_transcribe", "--param",
              "asr_transcribe.method=provided", "--text", "Hello from the client.", "--download", str(dl))
    assert out.returncode == 0, out.stderr
    assert "train_gpt: completed" in out.stderr and f"task {tid}: completed" in out.stdout
    pth, ckpt = next((root / "weights" / "sovits").glob("*.pth")), next((root / "weights" / "gpt").glob("*.ckpt"))
    assert (dl / pth.name).read_bytes() == pth.read_bytes() and (dl / ckpt.name).read_bytes() == ckpt.read_bytes()
    assert (dl / "output.wav").read_bytes() == (root / "output" / "output.wav").read_bytes()

    status = cli(server.url, "status", tid)
    assert status.returncode == 0 and "test_inference" in status.stdout and "completed" in status.stdout
    assert tid in cli(server.url, "list").stdout
    assert cli(server.url, "logs", tid, "--step", "train_gpt").stdout.strip()
    assert len(cli(server.url, "steps").stdout.splitlines()) == 11
    bad = cli(server.url, "run", tid, "--steps", "no_such_step")
    assert bad.returncode == 1 and "unknown step" in bad.stderr


def test_events_resume_after_a_server_restart(server, tmp_path, speech):
    c = GPTSoVITSClient(server.url, verbose=False)
    tid = c.create_task("events", CONFIG)["task_id"]
    c.upload_file(tid, str(speech / "reading.wav"))
    run = c.wait_for_run(tid, c.execute_step(tid, "convert_audio")["run_id"])
    assert run["status"] == "completed"
    seen = []
    for ev in c.events(tid):
        seen.append(ev)
        if ev["type"] == "state" and ev["status"] == "completed":
            break
    ids = [ev["id"] for ev in seen]
    assert ids == sorted(set(ids)) and {"state", "progress"} <= {ev["type"] for ev in seen}
    assert next(c.events(tid, last_event_id=ids[0]))["id"] == ids[1]

    got: list = []

    def follow() -> None:  # one event proves the stream is open; the next comes after a restart
        for ev in GPTSoVITSClient(server.url, verbose=False).events(tid, last_event_id=ids[-2]):
            got.append(ev)
            if len(got) == 2:
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    wait_for(lambda: got, what="the follower's first event")
    server.kill()   # the stream drops; the client reconnects with Last-Event-ID
    server.start()
    c.execute_step(tid, "slice_audio")
    thread.join(30)
    assert [ev["id"] for ev in got] == [ids[-1], ids[-1] + 1], got
    assert got[1]["step"] == "slice_audio" and got[1]["status"] == "queued"


def test_ctrl_c_cancels_the_task(slow_server, tmp_path):
    c = GPTSoVITSClient(slow_server.url, poll_interval=0.05, verbose=False)
    tid = c.create_task("interrupt", {**CONFIG, "language": "zh"})["task_id"]
    arrange_inputs(task_dir(tmp_path, tid), "spk", zh_lines(4))
    rec = c.run_pipeline(tid, from_step="extract_text_features", to_step="extract_semantic_features")
    assert rec["status"] == "completed", rec

    proc = subprocess.Popen([sys.executable, str(CLIENT), "--url", slow_server.url, "run", tid,
                             "--steps", "train_sovits", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wait_for(lambda: (tmp_path / "pids").exists() and c.get_task(tid)["progress"] > 0, timeout=30,
             what="training to run")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"cancelling task {tid}" in err and f"task {tid}: cancelled" in err
    task = c.get_task(tid)
    assert task["status"] == "cancelled" and task["steps"]["train_sovits"]["reason"] == "cancelled_by_user"
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert pids and not any(_alive(p) for p in pids)

    c.execute_step(tid, "train_sovits")  # the same through the library
    wait_for(lambda: c.get_task(tid)["status"] == "running", what="running")
    assert c.cancel_task(tid)["cancelled"] is True
    assert c.wait_for_step_completion(tid, timeout=30)["status"] == "cancelled"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sse_parsing_and_models_fallback(tmp_path):
    lines = [": ping", "id: 7", "event: progress", 'data: {"id": 7, "type": "progress",',
             'data: "progress": 0.5}', "", "id: 8", "event: log", 'data: {"lines": ["a"]}', ""]
    evs = list(_parse_sse(iter(lines)))
    assert evs == [{"id": 7, "type": "progress", "progress": 0.5}, {"id": 8, "type": "log", "lines": ["a"]}]

    def answer(req: httpx.Request) -> httpx.Response:  # a service without GET /models
        if req.url.path.endswith("/models"):
            return httpx.Response(404, json={"detail": "Not Found"})
        if req.url.path.endswith("/files"):
            return httpx.Response(200, json={"task_id": "t", "folders": {"weights": [
                {"name": "a_e1_s1.pth", "path": "weights/sovits/a_e1_s1.pth"}]}})
        return httpx.Response(200, content=b"weights")

    c = GPTSoVITSClient("http://service")
    c.http = httpx.Client(base_url=c.api_base, transport=httpx.MockTransport(answer))
    assert c.download_models("t", str(tmp_path)) == [str(tmp_path / "a_e1_s1.pth")]
    assert (tmp_path / "a_e1_s1.pth").read_bytes() == b"weights"
