"""Feature steps 5-8 against the contract double: env contract, sharding, merging, verification,
failure reporting, clearing stale outputs."""

from __future__ import annotations

import json

import pytest

from tests.engine_support import (DOUBLE, DOUBLE_PYTHON, FEATURE_STEPS, arrange_inputs, completed,
                                  create_task, double_settings, run_step, service, task_dir, zh_lines)

pytestmark = pytest.mark.timeout(120)


def _env_log(path, stage):
    rows = [json.loads(ln) for ln in path.read_text().splitlines()]
    return sorted((r for r in rows if r["stage"] == stage), key=lambda r: int(r["env"]["i_part"]))


def test_two_gpu_ids_make_two_shards_merged_like_the_web_ui(tmp_path, monkeypatch):
    monkeypatch.setenv("DOUBLE_ENV_LOG", str(tmp_path / "env.jsonl"))
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c, gpu_id="0-1", model_version="v2ProPlus")["task_id"]
        root = task_dir(s, tid)
        arrange_inputs(root, "spk", zh_lines(5))
        runs = [completed(run_step(c, tid, step)) for step in FEATURE_STEPS]
    exp = root / "experiments" / "spk"
    # upstream's merge: part 0 (lines 0, 2, 4) then part 1 (lines 1, 3), part files removed
    names = [ln.split("\t")[0] for ln in (exp / "2-name2text.txt").read_text().splitlines()]
    assert names == ["utt_00.wav", "utt_02.wav", "utt_04.wav", "utt_01.wav", "utt_03.wav"]
    sem = (exp / "6-name2semantic.tsv").read_text().split("\n")
    assert sem[0] == "item_name\tsemantic_audio" and len([ln for ln in sem[1:] if ln]) == 5
    assert not list(exp.glob("*-[0-9].t*"))
    assert len(list((exp / "7-sv_cn").glob("*.pt"))) == 5 == len(list((exp / "5-wav32k").iterdir()))
    assert all(r["progress"] == 1.0 and r["result"]["items"] == 5 for r in runs)

    text = _env_log(tmp_path / "env.jsonl", "text")
    assert [e["env"]["i_part"] for e in text] == ["0", "1"] and {e["env"]["all_parts"] for e in text} == {"2"}
    env = text[0]["env"]
    assert env["inp_text"] == str(root / "transcripts" / "spk.list")
    assert env["inp_wav_dir"] == str(root / "sliced") and env["opt_dir"] == str(exp)
    assert env["is_half"] == "False" and env["_CUDA_VISIBLE_DEVICES"] == "" and env["version"] == "v2ProPlus"
    assert env["bert_pretrained_dir"].startswith(str(DOUBLE)) and env["exp_name"] == "spk"
    assert text[0]["cwd"] == str(DOUBLE)
    assert {str(DOUBLE), str(DOUBLE / "GPT_SoVITS"), str(DOUBLE / "tools")} <= set(text[0]["sys_path"])
    sem_env = _env_log(tmp_path / "env.jsonl", "semantic")[0]["env"]
    assert sem_env["pretrained_s2G"].endswith("pretrained_models/v2Pro/s2Gv2ProPlus.pth")
    assert sem_env["s2config_path"] == str(DOUBLE / "GPT_SoVITS" / "configs" / "s2v2ProPlus.json")
    assert _env_log(tmp_path / "env.jsonl", "sv")[0]["env"]["sv_path"].endswith(
        "sv/pretrained_eres2netv2w24s4ep4.ckpt")


def test_gpus_give_each_shard_its_device_and_half_precision(tmp_path, monkeypatch):
    monkeypatch.setenv("DOUBLE_ENV_LOG", str(tmp_path / "env.jsonl"))
    s = double_settings(tmp_path, gpus="0,1")
    with service(s) as c:
        tid = create_task(c, gpu_id="0-1")["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(6))
        completed(run_step(c, tid, "extract_text_features", parts_per_gpu=2))
    text = _env_log(tmp_path / "env.jsonl", "text")
    assert [e["env"]["_CUDA_VISIBLE_DEVICES"] for e in text] == ["0", "0", "1", "1"]
    assert {e["env"]["is_half"] for e in text} == {"True"} and {e["env"]["all_parts"] for e in text} == {"4"}


def test_speaker_vectors_are_not_needed_for_v2(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c, model_version="v2")["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(2))
        completed(run_step(c, tid, "extract_audio_features"))
        run = completed(run_step(c, tid, "extract_speaker_vectors"))
        assert run["result"]["skipped"] is True and "not needed" in run["message"]
        completed(run_step(c, tid, "extract_semantic_features"))  # v2 needs no speaker vectors


def test_dropped_item_fails_the_step_naming_it_and_why(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c)["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(3) + [("blank.wav", "ZH", "  ")])
        run = run_step(c, tid, "extract_text_features")
        assert run["status"] == "failed" and run["reason"] == "outputs_missing"
        msg = run["error_message"]
        assert "3 of 4 items" in msg and "blank.wav: empty text" in msg and "Traceback" in msg
        assert run["result"]["dropped"][0]["item"] == "blank.wav"
        ok = completed(run_step(c, tid, "extract_text_features", allow_dropped=True))
        assert ok["result"]["items"] == 3 and ok["result"]["dropped"][0]["item"] == "blank.wav"


def test_blank_english_text_is_dropped_though_the_engine_writes_it(tmp_path):
    """Upstream's English front-end writes a blank line with no phones instead of raising (seen on
    a real checkout); training cannot use it, so the service drops it and says why."""
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c, language="en")["task_id"]
        lines = [(n, "EN", t) for n, _, t in zh_lines(2)] + [("blank.wav", "EN", " ")]
        arrange_inputs(task_dir(s, tid), "spk", lines)
        run = run_step(c, tid, "extract_text_features")
        assert run["status"] == "failed" and "blank.wav: empty text" in run["error_message"], run
        ok = completed(run_step(c, tid, "extract_text_features", allow_dropped=True))
        assert ok["result"]["items"] == 2
        (merged,) = (task_dir(s, tid) / "experiments").glob("*/2-name2text.txt")
        assert "utt_00.wav" in merged.read_text() and "blank.wav" not in merged.read_text()


def test_every_item_crashing_with_exit_code_zero_is_a_failure(tmp_path, monkeypatch):
    s = double_settings(tmp_path)
    names = [n for n, _, _ in zh_lines(3)]
    monkeypatch.setenv("DOUBLE_FAIL_ITEMS", ",".join(names))
    with service(s) as c:
        tid = create_task(c)["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(3))
        run = run_step(c, tid, "extract_audio_features")
    assert run["status"] == "failed"
    msg = run["error_message"]
    assert "nothing for any of the 3 items" in msg and "injected failure for utt_00.wav" in msg
    assert "RuntimeError: double: injected failure" in msg  # the engine's traceback


def test_script_crash_reports_exit_code_and_traceback(tmp_path, monkeypatch):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c, gpu_id="0-1")["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(2))
        completed(run_step(c, tid, "extract_audio_features"))
        monkeypatch.setenv("DOUBLE_CRASH", "semantic")
        run = run_step(c, tid, "extract_semantic_features")
    assert run["status"] == "failed" and run["reason"] == "exit_code"
    assert "shard 1 exited with 1" in run["error_message"]
    assert "RuntimeError: double: injected crash of semantic" in run["error_message"]


def test_rerun_clears_outputs_upstream_would_silently_reuse(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c)["task_id"]
        root = task_dir(s, tid)
        arrange_inputs(root, "spk", zh_lines(2))
        completed(run_step(c, tid, "extract_text_features"))
        exp = root / "experiments" / "spk"
        (exp / "3-bert" / "ghost.wav.pt").write_text("stale")
        (exp / "2-name2text-0.txt").write_text("stale.wav\tx\t[1]\tx\n")  # upstream skips the shard
        lst = root / "transcripts" / "spk.list"
        lst.write_text(lst.read_text().replace("今天天气很好。", "明天见。"))
        completed(run_step(c, tid, "extract_text_features"))
    merged = (exp / "2-name2text.txt").read_text()
    assert "stale" not in merged and "明天见" in merged
    assert not (exp / "3-bert" / "ghost.wav.pt").exists() and not (exp / "2-name2text-0.txt").exists()


def test_missing_pretrained_model_is_named_before_anything_runs(tmp_path):
    """The preflight answers 424 with the doctor's fix; no run is recorded."""
    s = double_settings(tmp_path, bert_dir=tmp_path / "no-bert")
    with service(s) as c:
        tid = create_task(c)["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(1))
        r = c.post(f"/api/v1/task/{tid}/step/extract_text_features", json={"params": {}})
        runs = c.get(f"/api/v1/task/{tid}/runs").json()
    assert r.status_code == 424, r.text
    body = r.json()
    assert body["check"] == "pretrained_v2ProPlus" and "no-bert: missing" in body["detail"]
    assert "GSV_BERT_DIR" in body["fix"] and "make_tiny_models" in body["fix"]
    assert runs == []


def test_engine_interpreter_runs_the_scripts(tmp_path, monkeypatch):
    """GSV_PYTHON is what runs the engine: a wrapper that records its use proves it."""
    marker = tmp_path / "used"
    wrapper = tmp_path / "enginepy"
    wrapper.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\nexec {DOUBLE_PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    s = double_settings(tmp_path, engine_python=str(wrapper))
    with service(s) as c:
        tid = create_task(c, gpu_id="0-1")["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(2))
        completed(run_step(c, tid, "extract_text_features"))
    assert marker.read_text().count("1-get-text.py") == 2
