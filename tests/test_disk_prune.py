"""Disk (issue 10, item 5): resume checkpoints pruned after a completed training run (the trained
weights never), `keep_resume_checkpoints` per task, and the disk use and budget in GET /task/{id}
and /health. Training runs against the engine's contract double, which writes upstream's files:
logs_s2_{version}/G_{step}.pth + D_{step}.pth and logs_s1_{version}/ckpt/epoch=E-step=S.ckpt when
if_save_latest is off (one file per save, as upstream's s2_train.py and s1_train.py do)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from gsv_service import checkpoints as ck
from gsv_service.disk import DiskUsage, folder_bytes
from gsv_service.workspace import Workspace
from tests.conftest import make_settings
from tests.engine_support import (FEATURE_STEPS, arrange_inputs, completed, create_task, double_settings,
                                  ensure_tiny_models, real_engine_env, run_step, service, task_dir, zh_lines)

pytestmark = pytest.mark.timeout(180)
S2 = "experiments/spk/logs_s2_v2ProPlus"
S1 = "experiments/spk/logs_s1_v2ProPlus/ckpt"


def _prepared(c, s, **config) -> tuple[str, Path]:
    """A task with its features, set to write a resume checkpoint at each of 3 epochs."""
    tid = create_task(c, **{"batch_size": 4, "epochs_s2": 3, "epochs_s1": 3, "save_every_epoch_s2": 1,
                            "save_every_epoch_s1": 1, "if_save_latest": False, **config})["task_id"]
    root = task_dir(s, tid)
    arrange_inputs(root, "spk", zh_lines(5))
    for step in FEATURE_STEPS:
        completed(run_step(c, tid, step))
    return tid, root


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _weights(root: Path) -> dict[str, str]:
    """Every trained weight file (what GET /models lists and users download) with its hash."""
    return {p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted((root / "weights").rglob("*")) if p.is_file()}


def _sizes(folder: Path, names: list[str]) -> int:
    return sum((folder / n).stat().st_size for n in names)


def test_completed_training_keeps_only_the_latest_resume_checkpoints(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, root = _prepared(c, s)
        s2 = completed(run_step(c, tid, "train_sovits"))
        s1 = completed(run_step(c, tid, "train_gpt"))
        models = c.get(f"/api/v1/task/{tid}/models").json()
        downloads = [c.get(m["download_url"]).status_code for m in models["sovits"] + models["gpt"]]
        task = c.get(f"/api/v1/task/{tid}").json()
    # upstream's save every epoch: 3 G_/D_ pairs (steps 50, 100, 150) and 3 ckpts; the latest stay
    assert _names(root / S2) == ["D_150.pth", "G_150.pth"]
    assert _names(root / S1) == ["epoch=2-step=150.ckpt"]
    assert s2["result"]["pruned"]["removed_files"] == 4 and s1["result"]["pruned"]["removed_files"] == 2
    assert s2["result"]["pruned"]["kept"] == [f"{S2}/D_150.pth", f"{S2}/G_150.pth"]
    assert s2["result"]["pruned"]["freed_bytes"] > 0 and "freed" in s2["message"]
    assert "of older resume checkpoints" in task["steps"]["train_gpt"]["message"]
    # every weight of every epoch is still there and downloadable
    assert [m["name"] for m in models["sovits"]] == ["spk_e1_s50.pth", "spk_e2_s100.pth", "spk_e3_s150.pth"]
    assert [m["name"] for m in models["gpt"]] == ["spk-e1.ckpt", "spk-e2.ckpt", "spk-e3.ckpt"]
    assert downloads == [200] * 6
    logs = [p.read_text() for p in (root / "logs").glob("train_sovits-*.log")]
    assert any("pruned 4 resume checkpoint file(s)" in text for text in logs)


def test_pruning_frees_exactly_the_removed_files_and_never_touches_weights(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, root = _prepared(c, s, keep_resume_checkpoints=2, epochs_s1=1)
        completed(run_step(c, tid, "train_gpt"))
        gpt_weights = _weights(root)
        s2 = completed(run_step(c, tid, "train_sovits"))
    assert _names(root / S2) == ["D_100.pth", "D_150.pth", "G_100.pth", "G_150.pth"]
    after = _weights(root)
    assert {k: v for k, v in after.items() if k in gpt_weights} == gpt_weights
    assert sorted(set(after) - set(gpt_weights)) == [f"weights/sovits/spk_e{e}_s{50 * e}.pth" for e in (1, 2, 3)]
    # freed = the sizes of G_50 and D_50 (the double's checkpoints of one tag have equal sizes)
    assert s2["result"]["pruned"]["removed_files"] == 2
    assert s2["result"]["pruned"]["freed_bytes"] == _sizes(root / S2, ["G_100.pth", "D_100.pth"])


def test_only_resume_checkpoint_files_are_ever_removed(tmp_path):
    ws = Workspace(root=tmp_path / "task", exp_name="spk")
    state, weights = ck.s2_state_dir(ws, "v2"), ws.root / "weights" / "sovits"
    state.mkdir(parents=True)
    weights.mkdir(parents=True)
    for name in ("G_10.pth", "D_10.pth", "G_20.pth", "D_20.pth", "G_5.pth.tmp", "notes.txt", "G_x.pth"):
        (state / name).write_text(name)
    (weights / "G_1.pth").write_text("a weight a user downloads")
    os.symlink(weights / "G_1.pth", state / "G_1.pth")  # a link to a weight: never followed, never removed
    (state / "G_3.pth").mkdir()  # a folder with a checkpoint's name
    pruned = ck.prune_sovits(ws, "v2", keep=1)
    assert _names(state) == ["D_20.pth", "G_1.pth", "G_20.pth", "G_3.pth", "G_5.pth.tmp", "G_x.pth",
                             "notes.txt"]
    assert (weights / "G_1.pth").read_text() == "a weight a user downloads"
    assert pruned.removed == [f"experiments/spk/logs_s2_v2/{n}" for n in ("D_10.pth", "G_10.pth")]
    assert pruned.freed_bytes == len("G_10.pth") + len("D_10.pth")
    # upstream resumes from the biggest number in the name, so 233333333333 (if_save_latest) is newest
    for name in ("G_233333333333.pth", "D_233333333333.pth"):
        (state / name).write_text("latest")
    ck.prune_sovits(ws, "v2", keep=1)
    assert [n for n in _names(state) if n.endswith(".pth") and n[2:-4].isdigit()] == [
        "D_233333333333.pth", "G_1.pth", "G_233333333333.pth", "G_3.pth"]
    assert ck.prune_gpt(ws, "v2", keep=1).removed == []  # no GPT state: nothing to do


@pytest.mark.parametrize("keep", [0, 2])
def test_keep_resume_checkpoints_is_respected(tmp_path, keep):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, root = _prepared(c, s, keep_resume_checkpoints=keep)
        completed(run_step(c, tid, "train_sovits"))
        completed(run_step(c, tid, "train_gpt"))
        cfg = c.get(f"/api/v1/task/{tid}").json()["config"]
    assert cfg["keep_resume_checkpoints"] == keep
    s2_pairs = [["D_150.pth", "G_150.pth"], ["D_100.pth", "D_150.pth", "G_100.pth", "G_150.pth"]]
    assert _names(root / S2) == ([] if keep == 0 else s2_pairs[1])
    assert _names(root / S1) == ([] if keep == 0 else ["epoch=1-step=100.ckpt", "epoch=2-step=150.ckpt"])
    assert len(list((root / "weights" / "sovits").glob("*.pth"))) == 3


def test_the_kept_checkpoint_still_resumes(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, root = _prepared(c, s)
        completed(run_step(c, tid, "train_sovits"))
        more = completed(run_step(c, tid, "train_sovits", epochs=4, resume=True))
        log = c.get(f"/api/v1/task/{tid}/logs", params={"run_id": more["id"]}).json()["logs"]
    assert more["result"]["resumed"] is True and "start training from epoch 4" in log
    assert _names(root / S2) == ["D_200.pth", "G_200.pth"]


def test_a_failed_run_keeps_every_checkpoint_to_resume_from(tmp_path, monkeypatch):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, root = _prepared(c, s)
        monkeypatch.setenv("DOUBLE_FAIL_EPOCH", "3")
        run = run_step(c, tid, "train_sovits")
    assert run["status"] == "failed"
    assert _names(root / S2) == ["D_100.pth", "D_50.pth", "G_100.pth", "G_50.pth"]


@pytest.mark.parametrize("bad", [-1, 1001, "two"])
def test_keep_resume_checkpoints_out_of_range_is_refused(tmp_path, bad):
    s = double_settings(tmp_path)
    with service(s) as c:
        r = c.post("/api/v1/task/create", json={"task_name": "x", "config": {"keep_resume_checkpoints": bad}})
    assert r.status_code == 422 and "keep_resume_checkpoints" in r.json()["detail"]


# ---------- disk use and budget ----------

def _upload(c, tid: str, name: str, data: bytes) -> None:
    r = c.post(f"/api/v1/task/{tid}/files/upload", files={"file": (name, data, "audio/wav")})
    assert r.status_code == 200, r.text


def test_task_and_health_report_disk_use_and_budget(tmp_path):
    s = double_settings(tmp_path, disk_usage_ttl_s=0, max_task_mb=5, max_total_mb=50)
    with service(s) as c:
        tid = create_task(c)["task_id"]
        empty = c.get(f"/api/v1/task/{tid}").json()["disk"]
        _upload(c, tid, "a.wav", b"x" * 100_000)
        one = c.get(f"/api/v1/task/{tid}").json()["disk"]
        other = create_task(c)["task_id"]
        _upload(c, other, "b.wav", b"y" * 30_000)
        health = c.get("/api/v1/health").json()["disk"]
        listed = c.get("/api/v1/tasks").json()
    root = task_dir(s, tid)
    assert one["used_bytes"] - empty["used_bytes"] == 100_000
    assert one == {"used_bytes": folder_bytes(root), "budget_bytes": 5 * 1024 * 1024}
    assert health["used_bytes"] == folder_bytes(Path(s.task_root)) >= 130_000
    assert health["budget_bytes"] == 50 * 1024 * 1024 and health["free_bytes"] > 0
    assert all(t.get("disk") is None for t in listed)  # lists are not measured


def test_no_budget_configured_reports_null(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c)["task_id"]
        disk = c.get(f"/api/v1/task/{tid}").json()["disk"]
        health = c.get("/api/v1/health").json()["disk"]
    assert disk["budget_bytes"] is None and health["budget_bytes"] is None
    assert isinstance(disk["used_bytes"], int) and isinstance(health["used_bytes"], int)


def test_polling_reuses_the_measure_until_a_run_ends(tmp_path):
    s = double_settings(tmp_path, disk_usage_ttl_s=3600)
    with service(s) as c:
        tid = create_task(c)["task_id"]
        first = c.get(f"/api/v1/task/{tid}").json()["disk"]["used_bytes"]
        (task_dir(s, tid) / "input_audio").mkdir(parents=True, exist_ok=True)
        (task_dir(s, tid) / "input_audio" / "c.wav").write_bytes(b"z" * 5000)
        polled = {c.get(f"/api/v1/task/{tid}").json()["disk"]["used_bytes"] for _ in range(50)}
        run_step(c, tid, "convert_audio")  # a run ends: its task is measured afresh
        after = c.get(f"/api/v1/task/{tid}").json()["disk"]["used_bytes"]
    assert polled == {first}
    assert after >= first + 5000


def test_a_folder_is_walked_once_per_ttl_however_many_ask(tmp_path, monkeypatch):
    calls = []
    gate = threading.Event()

    def slow_walk(folder: Path) -> int:
        calls.append(folder)
        gate.wait(5)
        return 7

    monkeypatch.setattr("gsv_service.disk.folder_bytes", slow_walk)
    now = [0.0]
    du = DiskUsage(tmp_path, ttl_s=10, clock=lambda: now[0])
    (tmp_path / "t1").mkdir()
    first = threading.Thread(target=du.task_bytes, args=("t1",))
    first.start()
    time.sleep(0.1)
    gate.set()
    first.join()
    assert du.task_bytes("t1") == 7 and len(calls) == 1
    now[0] = 20.0  # stale: one thread walks, the others answer with the previous measure
    gate.clear()
    walker = threading.Thread(target=du.task_bytes, args=("t1",))
    walker.start()
    time.sleep(0.1)
    assert [du.task_bytes("t1") for _ in range(20)] == [7] * 20 and len(calls) == 2
    gate.set()
    walker.join()
    assert du.cached("t1") == 7


def test_folder_bytes_counts_files_not_links(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"1" * 300)
    (tmp_path / "g").write_bytes(b"2" * 12)
    big = tmp_path.parent / f"{tmp_path.name}-outside"
    big.write_bytes(b"3" * 10_000)
    os.symlink(big, tmp_path / "link")
    assert folder_bytes(tmp_path) == 312 and folder_bytes(tmp_path / "missing") == 0


# ---------- the real engine (GSV_ROOT names a checkout; skipped otherwise) ----------

@pytest.mark.real_engine
@pytest.mark.timeout(7200)
@pytest.mark.skipif(real_engine_env() is None, reason="GSV_ROOT does not name a GPT-SoVITS checkout")
def test_real_engine_checkpoints_are_pruned_and_weights_kept(tmp_path, tmp_path_factory):
    """Upstream's own s2_train.py and s1_train.py, tiny models: the same files pruned as with the double."""
    from tests import audio_fixtures as af
    from tests.test_real_engine import LANGUAGE, STEP_TIMEOUT, VERSIONS, _spoken, _write_list

    if not af.have_tools():
        pytest.skip("needs espeak-ng and ffmpeg")
    engine_root, python = real_engine_env()
    version = VERSIONS[0]
    tiny = ensure_tiny_models(engine_root, python, Path(os.environ.get("GSV_TEST_TINY_DIR")
                                                        or tmp_path_factory.mktemp("tiny-models")), [version])
    s = make_settings(tmp_path, None, engine_root=engine_root, engine_python=python, pretrained_dir=tiny)
    with service(s) as c:
        tid = create_task(c, language=LANGUAGE, model_version=version, batch_size=2, epochs_s2=2, epochs_s1=2,
                          save_every_epoch_s2=1, save_every_epoch_s1=1, if_save_latest=False)["task_id"]
        root = task_dir(s, tid)
        _write_list(root, _spoken(root, tmp_path, 4))
        for step in FEATURE_STEPS:
            completed(run_step(c, tid, step, STEP_TIMEOUT))
        s2 = completed(run_step(c, tid, "train_sovits", STEP_TIMEOUT))
        s1 = completed(run_step(c, tid, "train_gpt", STEP_TIMEOUT))
        models = c.get(f"/api/v1/task/{tid}/models").json()
    state = _names(root / f"experiments/spk/logs_s2_{version}")
    assert [n[0] for n in state if n.endswith(".pth")] == ["D", "G"], state  # one pair: the newest
    assert s2["result"]["pruned"]["removed_files"] == 2 and s2["result"]["pruned"]["freed_bytes"] > 0
    assert len(_names(root / f"experiments/spk/logs_s1_{version}/ckpt")) == 1
    assert s1["result"]["pruned"]["removed_files"] == 1
    assert len(models["sovits"]) == 2 and len(models["gpt"]) == 2
