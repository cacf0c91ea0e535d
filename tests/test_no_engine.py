"""The path without an engine, tried as a new user would, against a live server with none
configured: what GET /engine says, the 424s that name the furthest step a task can reach and the
install command (and change nothing), ASR by the engine refused at submit, and the client's
`train` that explains instead of creating a task it would abandon, and whose advice works."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.audio_fixtures import have_tools, long_speech
from tests.conftest import ROOT, LiveServer, server_env, wait_for

CLIENT = ROOT / "client_example.py"
INSTALL = "./start_service.sh --engine-only"
CONFIG = {"exp_name": "spk", "language": "en"}


@pytest.fixture
def server(tmp_path):
    srv = LiveServer(server_env(tmp_path, None), tmp_path).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    if not have_tools():
        pytest.skip("espeak-ng and ffmpeg are needed")
    folder = tmp_path_factory.mktemp("speech") / "recordings"
    long_speech(folder / "reading.wav", n=3)
    return folder


def api(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url + "/api/v1", timeout=30)


def create(c: httpx.Client, **config) -> str:
    r = c.post("/task/create", json={"task_name": "no engine", "config": {**CONFIG, **config}})
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def unchanged(c: httpx.Client, tid: str) -> None:
    """Nothing was recorded: no run, no pipeline, the task as created."""
    task = c.get(f"/task/{tid}").json()
    assert task["status"] == "created" and task["active_run_id"] is None and task["active_pipeline_id"] is None
    assert all(s["status"] == "pending" for s in task["steps"].values())
    assert c.get(f"/task/{tid}/runs").json() == []
    assert c.get(f"/task/{tid}/pipeline").status_code == 404


def cli(*args: str, python: str = sys.executable, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([python, str(CLIENT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_engine_says_none_with_the_install_command(server):
    e = api(server).get("/engine").json()
    assert e["found"] is False and e["root"] is None
    assert e["install_command"] == INSTALL and INSTALL in e["hint"] and "provided" in e["hint"]


def test_pipeline_to_an_engine_step_names_the_furthest_reachable_step(server):
    c = api(server)
    tid = create(c)
    r = c.post(f"/task/{tid}/run", json={"to_step": "train_gpt"})
    assert r.status_code == 424, r.text
    body = r.json()
    # no transcripts uploaded: ASR would be funasr, so slicing is as far as it goes now
    assert body["to_step"] == "slice_audio" and body["install_command"] == INSTALL
    assert body["step"] == "asr_transcribe"
    assert body["steps"] == ["asr_transcribe", "extract_text_features", "extract_audio_features",
                             "extract_speaker_vectors", "extract_semantic_features", "train_sovits", "train_gpt"]
    assert '{"to_step": "slice_audio"}' in body["detail"] and INSTALL in body["detail"]
    assert "method 'provided'" in body["detail"]
    unchanged(c, tid)

    # with transcripts uploaded, ASR needs no engine: the text features are the first that do
    r = c.post(f"/task/{tid}/files/upload", files={"file": ("reading_0.txt", b"Hello there.\n")})
    assert r.status_code == 200 and r.json()["folder"] == "input_transcripts"
    body = c.post(f"/task/{tid}/run", json={"to_step": "train_gpt"}).json()
    assert body["to_step"] == "asr_transcribe" and body["step"] == "extract_text_features"
    assert body["steps"][0] == "extract_text_features" and "asr_transcribe" not in body["steps"]
    # an explicit engine method in steps_params counts, and so does a from_step past the reachable ones
    body = c.post(f"/task/{tid}/run", json={"steps_params": {"asr_transcribe": {"method": "faster_whisper"}}}).json()
    assert body["to_step"] == "slice_audio" and body["steps"][0] == "asr_transcribe"
    assert "method 'faster_whisper'" in body["detail"]
    r = c.post(f"/task/{tid}/run", json={"from_step": "test_inference"})
    assert r.status_code == 424 and r.json()["to_step"] == "asr_transcribe" and r.json()["steps"] == ["test_inference"]
    unchanged(c, tid)

    # FRCRN asked for: stopped before denoising, and transcripts would not help
    body = c.post(f"/task/{tid}/run", json={"steps_params": {"denoise_audio": {"method": "frcrn"}}}).json()
    assert body["to_step"] == "slice_audio" and body["step"] == "denoise_audio"
    assert "with method 'frcrn'" in body["detail"] and "up to 'asr_transcribe'" not in body["detail"]
    unchanged(c, tid)
    # a task that denoises reaches denoise_audio
    tid2 = create(c, denoise=True)
    assert c.post(f"/task/{tid2}/run", json={}).json()["to_step"] == "denoise_audio"
    unchanged(c, tid2)
    # still 422 before 424: a typo is named first
    r = c.post(f"/task/{tid2}/run", json={"steps_params": {"train_gpt": {"epoch": 2}}})
    assert r.status_code == 422 and "epoch" in r.json()["detail"]


@pytest.mark.parametrize("params,why", [({"method": "funasr"}, "method 'funasr'"),
                                        ({"method": "faster_whisper"}, "method 'faster_whisper'"),
                                        ({}, "method 'auto' (funasr, as no transcripts were uploaded)")])
def test_asr_by_the_engine_is_refused_at_submit(server, params, why):
    c = api(server)
    tid = create(c)
    r = c.post(f"/task/{tid}/step/asr_transcribe", json={"params": params})
    assert r.status_code == 424, r.text
    body = r.json()
    assert body["step"] == "asr_transcribe" and body["needs_engine_for"] == why
    assert body["install_command"] == INSTALL and "method 'provided'" in body["detail"]
    unchanged(c, tid)
    # 'provided' needs no engine: what it lacks is the slices (409), not the engine
    r = c.post(f"/task/{tid}/step/asr_transcribe", json={"params": {"method": "provided"}})
    assert r.status_code == 409 and r.json()["run_first"] == "slice_audio"


def test_frcrn_is_refused_at_submit_and_spectral_is_offered(server):
    c = api(server)
    tid = create(c)
    r = c.post(f"/task/{tid}/step/denoise_audio", json={"params": {"method": "frcrn"}})
    assert r.status_code == 424 and "method 'spectral'" in r.json()["detail"]
    unchanged(c, tid)


def test_client_train_explains_and_creates_nothing_and_its_advice_works(server, speech, tmp_path):
    c = api(server)
    before = c.get("/tasks").json()
    # --url after the command, as README users may type it
    out = cli("train", "--url", server.url, "--audio", str(speech), "--name", "my voice", "--exp-name",
              "alice", "--language", "en", "--download", str(tmp_path / "trained"))
    assert out.returncode == 2, out.stderr
    assert c.get("/tasks").json() == before  # no task created and abandoned
    advice = out.stderr
    assert "has no GPT-SoVITS engine" in advice and "No task was created." in advice
    assert "train_gpt" in advice and "asr_transcribe (method 'auto'" in advice
    assert INSTALL in advice and "--param asr_transcribe.method=provided" in advice
    command = next(line.strip() for line in advice.splitlines() if " train " in line and "--to-step" in line)
    argv = shlex.split(command)
    assert argv[:2] == ["python3", str(CLIENT)] and argv[2:4] == ["--url", server.url]
    assert argv[-2:] == ["--to-step", "slice_audio"] and "--download" not in argv
    assert argv[argv.index("--name") + 1] == "my voice"

    # the printed command, run as printed (with this interpreter for python3): the audio steps run
    done = subprocess.run([sys.executable, *argv[1:], "--no-progress"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    tid = re.search(r"task (\S+) created", done.stdout)[1]
    task = c.get(f"/task/{tid}").json()
    assert task["status"] == "completed" and task["steps"]["slice_audio"]["status"] == "completed"
    assert task["config"]["exp_name"] == "alice" and task["task_name"] == "my voice"
    assert task["steps"]["asr_transcribe"]["status"] == "pending"


def test_client_train_with_transcripts_reaches_asr_and_says_so(server, speech, tmp_path):
    c = api(server)
    folder = tmp_path / "with_transcripts"
    folder.mkdir()
    (folder / "reading.wav").write_bytes((speech / "reading.wav").read_bytes())
    (folder / "reading.list").write_text("reading.wav_0000000000_0000100000.wav|spk|EN|Hello.\n")
    out = cli("--url", server.url, "train", "--audio", str(folder), "--language", "en")
    assert out.returncode == 2 and c.get("/tasks").json() == []
    assert "asr_transcribe (method" not in out.stderr  # the transcripts make ASR engine-free
    command = next(line for line in out.stderr.splitlines() if " train " in line)
    assert command.strip().endswith("--to-step asr_transcribe --param asr_transcribe.method=provided")
    assert "upload TASK_ID" not in out.stderr


def test_client_train_within_reach_runs_and_url_goes_either_side(server, speech):
    c = api(server)
    out = cli("train", "--audio", str(speech), "--to-step", "convert_audio", "--no-progress", "--url", server.url)
    assert out.returncode == 0, out.stderr
    assert len(c.get("/tasks").json()) == 1
    for args in (("--url", server.url, "list"), ("list", "--url", server.url)):
        listed = cli(*args)
        assert listed.returncode == 0 and "completed" in listed.stdout, listed.stderr
    # run on a task past its reach: the server's 424, with the step to stop at, in the client's words
    tid = c.get("/tasks").json()[0]["task_id"]
    out = cli("run", tid, "--url", server.url, "--no-progress")
    assert out.returncode == 1 and "(424)" in out.stderr and '{"to_step": "slice_audio"}' in out.stderr


def test_the_client_finds_its_venv_whatever_python_starts_it(server):
    """README: ./client_example.py (shebang) or python3 client_example.py, even by an interpreter
    without httpx: the script restarts itself with the service's .venv."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if not venv_python.is_file():
        pytest.skip("no .venv (run_tests.sh makes it)")
    base = Path(sys.base_prefix) / "bin" / "python3"
    bare = subprocess.run([str(base), "-S", "-c", "import httpx"], capture_output=True)
    assert bare.returncode != 0  # -S: no site-packages, so no httpx there
    out = subprocess.run([str(base), "-S", str(CLIENT), "--url", server.url, "list"], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0 and out.stdout == "", out.stderr
    assert os.access(CLIENT, os.X_OK) and CLIENT.read_text().startswith("#!/usr/bin/env python3\n")
    out = subprocess.run([str(CLIENT), "--url", server.url, "options"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0 and "engine: none" in out.stdout, out.stderr


def test_readme_downloads_fail_on_errors():
    """An error answer must not be saved as output.wav: every curl that writes a file uses -f."""
    for doc in ("README.md", "API_USAGE_GUIDE.md"):
        lines = [ln for ln in (ROOT / doc).read_text().splitlines() if ln.lstrip().startswith("curl ")]
        saving = [ln for ln in lines if re.search(r"\s-[a-zA-Z]*[oO]", ln)]
        assert saving, doc
        for ln in saving:
            assert re.search(r"\s-[a-zA-Z]*f", ln), f"{doc}: {ln}"
    readme = (ROOT / "README.md").read_text()
    assert "./client_example.py --url http://localhost:8000 train" in readme
