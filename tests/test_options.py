"""GET /api/v1/options against a live server: per model version the training settings with the
web UI's defaults and ranges inside what the service accepts (a task made of them is accepted),
the batch size from the GPU memory nvidia-smi reports, languages, ASR and denoise methods with and
without an engine, and the client's `options` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from gsv_service.engine import VERSIONS
from gsv_service.task_config import LANGUAGES, TaskConfig, webui_batch_sizes
from tests.conftest import ROOT, LiveServer, server_env
from tests.engine_support import DOUBLE

CLIENT = ROOT / "client_example.py"
INSTALL = "./start_service.sh --engine-only"
# upstream webui.py @ 48b1a0169a28 for v1..v2ProPlus: (default, slider min, slider max)
WEBUI = {("sovits", "epochs"): (8, 1, 25), ("sovits", "save_every_epoch"): (4, 1, 25),
         ("sovits", "text_low_lr_rate"): (0.4, 0.2, 0.6), ("gpt", "epochs"): (15, 2, 50),
         ("gpt", "save_every_epoch"): (5, 1, 50)}


def start(tmp_path: Path, **env: str) -> LiveServer:
    return LiveServer(server_env(tmp_path, None, **env), tmp_path).start()


@pytest.fixture
def server(tmp_path):
    srv = start(tmp_path)
    yield srv
    srv.stop()


def get_options(srv: LiveServer) -> dict:
    r = httpx.get(srv.url + "/api/v1/options", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def numbers(v: dict):
    for part in ("sovits", "gpt"):
        for name, opt in v[part].items():
            if opt and "field" in opt and "minimum" in opt:
                yield part, name, opt


def by_method(opts: dict, key: str) -> dict:
    return {m["method"]: m for m in opts[key]}


def test_every_version_with_web_ui_defaults_inside_the_limits(server):
    opts = get_options(server)
    assert [v["version"] for v in opts["versions"]] == list(VERSIONS)
    assert opts["default_version"] == TaskConfig().model_version == "v2ProPlus"
    assert [v["version"] for v in opts["versions"] if v["default"]] == ["v2ProPlus"]
    schema = TaskConfig.model_json_schema()["properties"]
    ram_default = max(1, int(psutil.virtual_memory().total / 1024 ** 3 / 4))
    for v in opts["versions"]:
        assert v["pretrained_installed"] is None  # no engine to look in
        assert v["sovits"]["lora_rank"] is None   # v3/v4 only
        for part, name, o in numbers(v):
            prop = schema[o["field"]]                       # a real TaskConfig field, its real limits
            assert o["maximum"] == prop["maximum"] and o["task_default"] == prop["default"]
            low_ok = o["default"] > o["minimum"] if o["exclusive_minimum"] else o["default"] >= o["minimum"]
            assert low_ok and o["default"] <= o["maximum"], (v["version"], name, o)
            assert o["webui_minimum"] <= o["default"] <= o["webui_maximum"], (v["version"], name, o)
            assert o["minimum"] <= o["webui_minimum"] and o["webui_maximum"] <= o["maximum"]
            if (part, name) in WEBUI:
                assert (o["default"], o["webui_minimum"], o["webui_maximum"]) == WEBUI[part, name]
        assert v["sovits"]["text_low_lr_rate"]["step"] == 0.05
        # no GPU (GSV_GPUS empty): the web UI's CPU rule, RAM // 4
        assert v["sovits"]["batch_size"]["default"] == min(ram_default, 256)
        assert v["gpt"]["batch_size"]["default"] == min(ram_default, 40)
        assert v["sovits"]["batch_size"]["webui_maximum"] == min(3 * v["sovits"]["batch_size"]["default"], 256)
        assert v["gpt"]["batch_size"]["webui_maximum"] == 40
    assert opts["device"]["device"] == "cpu" and opts["device"]["gpus"] == []
    assert "no GPU" in opts["device"]["batch_size_basis"]

    # a task made of a version's defaults is accepted as it stands
    for v in opts["versions"]:
        config = {o["field"]: o["default"] for _, _, o in numbers(v)} | {"model_version": v["version"]}
        r = httpx.post(server.url + "/api/v1/task/create", json={"task_name": "defaults", "config": config})
        assert r.status_code == 200, r.text
        assert r.json()["config"]["epochs_s2"] == 8 and r.json()["config"]["model_version"] == v["version"]


def test_languages_and_methods_without_an_engine(server):
    opts = get_options(server)
    langs = {lang["code"]: lang for lang in opts["languages"]}
    assert list(langs) == list(LANGUAGES)
    assert langs["ko"]["versions"] == ["v2", "v2Pro", "v2ProPlus"]  # v1 has no Korean, no Cantonese
    assert langs["all_zh"]["name"] == "Chinese" and langs["zh"]["name"] == "Chinese-English mix"
    assert "funasr/paraformer" in langs["yue"]["asr"] and "funasr/paraformer" not in langs["en"]["asr"]
    assert "faster_whisper/large-v3" in langs["en"]["asr"] and "faster_whisper/large-v3" not in langs["zh"]["asr"]
    v1 = next(v for v in opts["versions"] if v["version"] == "v1")
    assert set(v1["languages"]) == {"zh", "en", "ja", "auto", "all_zh", "all_ja"}

    assert opts["engine"] == {"configured": False, "root": None, "install_command": INSTALL}
    asr = by_method(opts, "asr_methods")
    assert list(asr) == ["auto", "provided", "funasr", "faster_whisper"]
    assert asr["provided"]["available"] and not asr["provided"]["needs_engine"]
    for m in ("funasr", "faster_whisper"):
        assert asr[m]["needs_engine"] and not asr[m]["available"] and INSTALL in asr[m]["why_not"]
        assert asr[m]["models"] and not any(x["installed"] for x in asr[m]["models"])
    assert [x["name"] for x in asr["funasr"]["models"] if x["default"]] == ["fun-asr-nano"]
    den = by_method(opts, "denoise_methods")
    assert den["spectral"]["available"] and den["none"]["available"] and "now: spectral" in den["auto"]["description"]
    assert not den["frcrn"]["available"] and INSTALL in den["frcrn"]["why_not"]


def test_client_prints_the_options(server):
    out = subprocess.run([sys.executable, str(CLIENT), "--url", server.url, "options"], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"engine: none; install it with {INSTALL}" in text
    for v in VERSIONS:
        assert f"\n  {v}" in text
    assert "epochs_s2 8 (web UI 1-25)" in text and "epochs_s1 15 (web UI 2-50)" in text
    assert "text_low_lr_rate 0.4 (web UI 0.2-0.6)" in text and "the service accepts: batch_size 1-256" in text
    assert "faster_whisper  NOT AVAILABLE" in text and "model_size large-v3 (default)" in text
    assert "spectral        available" in text
    raw = subprocess.run([sys.executable, str(CLIENT), "options", "--json", "--url", server.url],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert raw.returncode == 0 and json.loads(raw.stdout) == get_options(server)


NVIDIA_SMI = """#!/bin/sh
case "$*" in
  *memory.total*) printf '0, NVIDIA GeForce RTX 4090, 24564\\n1, NVIDIA GeForce RTX 3060, 12288\\n2, NVIDIA GT 1030, 2048\\n' ;;
  *) printf '0\\n1\\n2\\n' ;;
esac
"""


def test_batch_size_from_gpu_memory_as_the_web_ui_computes_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(NVIDIA_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = server_env(tmp_path, None, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    del env["GSV_GPUS"]  # the GPUs nvidia-smi lists
    srv = LiveServer(env, tmp_path).start()
    try:
        opts = get_options(srv)
    finally:
        srv.stop()
    dev = opts["device"]
    assert dev["device"] == "cuda"
    assert [(g["id"], g["memory_gib"]) for g in dev["gpus"]] == [("0", 24.4), ("1", 12.4), ("2", 2.4)]
    assert "12.4 GiB" in dev["batch_size_basis"]  # the smallest GPU the web UI trains on (2.4 < 4 GiB)
    for v in opts["versions"]:
        assert v["sovits"]["batch_size"]["default"] == 6 and v["sovits"]["batch_size"]["webui_maximum"] == 18
        assert v["gpt"]["batch_size"]["default"] == 6


def test_web_ui_batch_rules():
    assert webui_batch_sizes("v2ProPlus", [80.4], 64) == (40, 120, 40)   # GPT's slider stops at 40
    assert webui_batch_sizes("v4", [24.4], 64) == (3, 9, 12)              # v3/v4 SoVITS: // 8
    assert webui_batch_sizes("v2", [1000.0], 64) == (256, 256, 40)        # within TaskConfig's limit
    assert webui_batch_sizes("v2", None, 3.0) == (1, 3, 1)                # at least 1
    assert webui_batch_sizes("v2", [], 31.9) == (7, 21, 7)


def test_engine_asr_listed_as_available_when_the_models_are_present(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(DOUBLE, checkout, ignore=shutil.ignore_patterns("__pycache__"))
    ms_cache, hf_home = tmp_path / "modelscope", tmp_path / "hf"
    env = server_env(tmp_path, None, GSV_ROOT=str(checkout), GSV_PYTHON=sys.executable,
                     MODELSCOPE_CACHE=str(ms_cache), HF_HOME=str(hf_home))
    env.pop("HF_HUB_CACHE", None)
    srv = LiveServer(env, tmp_path).start()
    try:
        opts = get_options(srv)
        assert opts["engine"]["configured"] and opts["engine"]["root"] == str(checkout)
        assert all(v["pretrained_installed"] for v in opts["versions"])
        asr = by_method(opts, "asr_methods")
        assert not asr["funasr"]["available"] and "funasr_asr.py" in asr["funasr"]["why_not"]

        asr_dir = checkout / "tools" / "asr"
        asr_dir.mkdir(parents=True)
        for script in ("funasr_asr.py", "fasterwhisper_asr.py"):
            (asr_dir / script).write_text("# the engine's ASR script\n")
        whisper = asr_dir / "models" / "faster-whisper-large-v3"
        whisper.mkdir(parents=True)
        (whisper / "model.bin").write_bytes(b"\0" * 1024)
        sensevoice = ms_cache / "models" / "iic" / "SenseVoiceSmall"
        sensevoice.mkdir(parents=True)
        (sensevoice / "model.pt").write_bytes(b"\0" * 1024)
        nano = hf_home / "hub" / "models--FunAudioLLM--Fun-ASR-Nano-2512" / "snapshots" / "abc123"
        nano.mkdir(parents=True)
        (nano / "model.pt").write_bytes(b"\0" * 1024)

        asr = by_method(get_options(srv), "asr_methods")
        assert asr["funasr"]["available"] and asr["faster_whisper"]["available"]
        models = {x["name"]: x for m in ("funasr", "faster_whisper") for x in asr[m]["models"]}
        assert models["large-v3"]["installed"] and models["large-v3"]["path"] == str(whisper)
        assert models["large"]["installed"]  # 'large' is large-v3, as the ASR step runs it
        assert not models["medium"]["installed"] and models["medium"]["path"] is None
        assert models["sensevoice"]["installed"] and models["sensevoice"]["path"] == str(sensevoice)
        assert models["fun-asr-nano"]["installed"] and models["fun-asr-nano"]["path"] == str(nano)
        assert not models["paraformer"]["installed"]

        frcrn = by_method(get_options(srv), "denoise_methods")["frcrn"]
        assert not frcrn["available"] and "cmd-denoise.py" in frcrn["why_not"]
    finally:
        srv.stop()
