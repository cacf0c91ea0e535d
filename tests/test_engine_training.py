"""Training steps 9-10 against the contract double: configs per version, progress, weights inside
the task, failure, resume, and cancel with no surviving process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest
import yaml

from gsv_service.engine import DevicePlan, load_engine
from gsv_service.engine_configs import TrainSettings, write_s1_config, write_s2_config
from tests.engine_support import (DOUBLE, FEATURE_STEPS, arrange_inputs, completed, create_task,
                                  double_settings, run_step, service, start_step, task_dir,
                                  tree_digest, wait_run, zh_lines)

pytestmark = pytest.mark.timeout(120)
PRE = DOUBLE / "GPT_SoVITS" / "pretrained_models"
CPU, GPU2 = DevicePlan((None,), False), DevicePlan(("0", "1"), True)


def _ts(version: str, **over) -> TrainSettings:
    base = dict(version=version, exp_name="spk", batch_size=8, epochs=3, save_every_epoch=2,
                if_save_latest=True, if_save_every_weights=True, pretrained_G=PRE / "g.pth",
                pretrained_D=PRE / "d.pth", text_low_lr_rate=0.3)
    return TrainSettings(**{**base, **over})


@pytest.mark.parametrize(("version", "template_gin"), [("v1", 512), ("v2", 512), ("v2Pro", 1024),
                                                       ("v2ProPlus", 1024)])
def test_s2_config_from_the_versions_template(tmp_path, version, template_gin):
    engine = load_engine(double_settings(tmp_path))
    out = tmp_path / "configs" / "s2.json"
    write_s2_config(engine, _ts(version), CPU, tmp_path / "exp", tmp_path / "w", out)
    data = json.loads(out.read_text())
    assert data["model"]["gin_channels"] == template_gin and data["model"]["version"] == version
    t = data["train"]
    assert (t["batch_size"], t["fp16_run"], t["epochs"], t["save_every_epoch"]) == (4, False, 3, 2)
    assert (t["text_low_lr_rate"], t["if_save_latest"], t["if_save_every_weights"]) == (0.3, True, True)
    assert t["pretrained_s2G"] == str(PRE / "g.pth") and t["pretrained_s2D"] == str(PRE / "d.pth")
    assert data["data"]["exp_dir"] == data["s2_ckpt_dir"] == str(tmp_path / "exp")
    assert data["save_weight_dir"] == str(tmp_path / "w") and data["name"] == "spk"
    assert data["version"] == version and t["gpu_numbers"] == "0"
    write_s2_config(engine, _ts(version), GPU2, tmp_path / "exp", tmp_path / "w", out)
    t = json.loads(out.read_text())["train"]
    assert (t["batch_size"], t["fp16_run"], t["gpu_numbers"]) == (8, True, "0-1")


@pytest.mark.parametrize(("version", "vocab"), [("v1", 512), ("v2", 732), ("v2ProPlus", 732)])
def test_s1_config_from_the_versions_template(tmp_path, version, vocab):
    engine = load_engine(double_settings(tmp_path))
    out = tmp_path / "s1.yaml"
    exp = tmp_path / "exp"
    write_s1_config(engine, _ts(version, if_dpo=True, batch_size=5), CPU, exp, tmp_path / "w", out)
    data = yaml.safe_load(out.read_text())
    assert data["model"]["phoneme_vocab_size"] == vocab
    t = data["train"]
    assert (t["batch_size"], t["precision"], t["epochs"], t["save_every_n_epoch"]) == (2, "32", 3, 2)
    assert (t["if_dpo"], t["if_save_latest"], t["half_weights_save_dir"], t["exp_name"]) == (
        True, True, str(tmp_path / "w"), "spk")
    assert data["pretrained_s1"] == str(PRE / "g.pth")
    assert data["train_semantic_path"] == str(exp / "6-name2semantic.tsv")
    assert data["train_phoneme_path"] == str(exp / "2-name2text.txt")
    assert data["output_dir"] == str(exp / f"logs_s1_{version}")


def _prepared(c, s, **config) -> tuple[str, Path]:
    tid = create_task(c, **{"batch_size": 4, "epochs_s2": 2, "epochs_s1": 2, "save_every_epoch_s2": 1,
                            "save_every_epoch_s1": 1, **config})["task_id"]
    root = task_dir(s, tid)
    arrange_inputs(root, "spk", zh_lines(5))
    for step in FEATURE_STEPS:
        completed(run_step(c, tid, step))
    return tid, root


def _watch(c, tid, run_id) -> list[dict]:
    seen = []
    while True:
        run = c.get(f"/api/v1/task/{tid}/runs/{run_id}").json()
        seen.append(run)
        if run["status"] in ("completed", "failed", "cancelled"):
            return seen
        time.sleep(0.1)


def test_training_reports_progress_and_keeps_weights_in_the_task(tmp_path, monkeypatch):
    monkeypatch.setenv("DOUBLE_STEP_S", "0.02")
    before = tree_digest(DOUBLE)
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, root = _prepared(c, s)
        s2 = _watch(c, tid, start_step(c, tid, "train_sovits")["run_id"])
        s1 = _watch(c, tid, start_step(c, tid, "train_gpt")["run_id"])
        models = c.get(f"/api/v1/task/{tid}/models").json()
        got = c.get(models["sovits"][-1]["download_url"])
    assert s2[-1]["status"] == s1[-1]["status"] == "completed", (s2[-1], s1[-1])
    mid = [r for r in s2 if r["metrics"] and 0 < r["progress"] < 1]
    assert mid, "no progress while SoVITS trained"
    m = mid[-1]["metrics"]
    assert m["epochs"] == 2 and m["total_steps"] == 2 * m["iterations_per_epoch"] == 100
    assert set(m["losses"]) >= {"loss_mel", "loss_kl", "loss_disc"}
    assert [r["progress"] for r in mid] == sorted(r["progress"] for r in mid)
    gpt_mid = [r["metrics"] for r in s1 if r["metrics"] and r["status"] == "running"]
    assert gpt_mid and "total_loss" in gpt_mid[-1]["losses"] and "top_3_acc" in gpt_mid[-1]
    assert [m["name"] for m in models["sovits"]] == ["spk_e1_s50.pth", "spk_e2_s100.pth"]
    assert [(m["name"], m["epoch"]) for m in models["gpt"]] == [("spk-e1.ckpt", 1), ("spk-e2.ckpt", 2)]
    assert models["latest"] == {"sovits": "spk_e2_s100.pth", "gpt": "spk-e2.ckpt"}
    assert models["sovits"][1]["step"] == 100 and models["sovits"][1]["size"] > 0
    assert got.status_code == 200 and json.loads(got.content)["info"] == "2epoch_100iteration"
    assert (root / "experiments/spk/logs_s2_v2ProPlus/G_233333333333.pth").is_file()
    assert (root / "configs/s2.json").is_file() and (root / "configs/s1.yaml").is_file()
    assert tree_digest(DOUBLE) == before  # nothing lands in the checkout


def test_failed_training_resumes_and_a_completed_one_starts_afresh(tmp_path, monkeypatch):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, root = _prepared(c, s, epochs_s2=3)
        monkeypatch.setenv("DOUBLE_FAIL_EPOCH", "2")
        run = run_step(c, tid, "train_sovits")
        assert run["status"] == "failed" and run["reason"] == "exit_code"
        assert "RuntimeError: double: injected failure at epoch 2" in run["error_message"]
        monkeypatch.delenv("DOUBLE_FAIL_EPOCH")
        again = completed(run_step(c, tid, "train_sovits"))
        assert again["result"]["resumed"] is True
        log = c.get(f"/api/v1/task/{tid}/logs", params={"run_id": again["id"]}).json()["logs"]
        assert "start training from epoch 2" in log
        assert [w["epoch"] for w in again["result"]["weights"]] == [1, 2, 3]
        fresh = completed(run_step(c, tid, "train_sovits", epochs=1))
        assert fresh["result"]["resumed"] is False
        assert [w["name"] for w in fresh["result"]["weights"]] == ["spk_e1_s50.pth"]


@pytest.mark.parametrize("step", ["train_sovits", "train_gpt"])
def test_cancel_during_training_leaves_no_process(tmp_path, monkeypatch, step):
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("DOUBLE_STEP_S", "0.5")
    monkeypatch.setenv("DOUBLE_PIDFILE", str(pidfile))
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, _ = _prepared(c, s)
        rid = start_step(c, tid, step)["run_id"]
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and len(pidfile.read_text().split()) == 2):
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.05)
        pids = [int(p) for p in pidfile.read_text().split()]
        assert all(psutil.pid_exists(p) for p in pids)
        assert c.post(f"/api/v1/task/{tid}/cancel").json()["cancelled"] is True
        run = wait_run(c, tid, rid, 30)
    assert run["status"] == "cancelled"
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []


def test_gpt_crash_is_reported_with_the_engine_traceback(tmp_path, monkeypatch):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, _ = _prepared(c, s)
        monkeypatch.setenv("DOUBLE_CRASH", "s1")
        run = run_step(c, tid, "train_gpt")
    assert run["status"] == "failed" and "RuntimeError: double: injected crash of s1" in run["error_message"]


def test_weights_switched_off_is_refused_with_a_reason(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, _ = _prepared(c, s)
        run = run_step(c, tid, "train_sovits", if_save_every_weights=False)
    assert run["status"] == "failed" and "if_save_every_weights is off" in run["error_message"]
