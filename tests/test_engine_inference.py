"""Test inference (step 11) and the trained-models API against the contract double."""

from __future__ import annotations

import io

import pytest
import soundfile as sf

from tests.engine_support import (FEATURE_STEPS, arrange_inputs, completed, create_task, double_settings,
                                  run_step, service, task_dir, tone, zh_lines)

pytestmark = pytest.mark.timeout(120)


def _trained(c, s) -> tuple[str, object]:
    tid = create_task(c, model_version="v2Pro", batch_size=2, epochs_s2=1, epochs_s1=1)["task_id"]
    root = task_dir(s, tid)
    arrange_inputs(root, "spk", zh_lines(4))
    tone(root / "sliced" / "utt_00.wav", 2.0)  # too short to be a reference (upstream: 3-10 s)
    for step in FEATURE_STEPS + ("train_sovits", "train_gpt"):
        completed(run_step(c, tid, step))
    return tid, root


def test_inference_writes_output_wav_downloadable_with_its_duration(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, root = _trained(c, s)
        run = completed(run_step(c, tid, "test_inference", target_text="你好世界，你好。"))
        got = c.get(f"/api/v1/task/{tid}/files/download/output.wav")
        named = completed(run_step(c, tid, "test_inference", output_name="second", ref_audio="utt_02.wav",
                                   target_language="all_zh", target_text="再来一次。"))
    r = run["result"]
    assert r["output"] == "output/output.wav" and r["ref_audio"] == "utt_01.wav"  # first 3-10 s slice
    assert r["ref_text"] == zh_lines(4)[1][2] and r["ref_language"] == "zh"
    assert r["gpt_model"] == "spk-e1.ckpt" and r["sovits_model"] == "spk_e1_s100.pth"
    assert got.status_code == 200
    audio, sr = sf.read(io.BytesIO(got.content))
    assert sr == r["sample_rate"] == 32000 and r["duration"] == pytest.approx(len(audio) / sr, abs=1e-3)
    assert named["result"]["output"] == "output/second.wav" and (root / "output" / "second.wav").is_file()
    assert named["result"]["ref_audio"] == "utt_02.wav"


def test_inference_names_what_is_wrong(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid, _ = _trained(c, s)
        bad_ref = run_step(c, tid, "test_inference", ref_audio="nope.wav")
        bad_gpt = run_step(c, tid, "test_inference", gpt_model="other.ckpt")
        short = run_step(c, tid, "test_inference", ref_audio="utt_00.wav")
        v1_lang = run_step(c, tid, "test_inference", target_language="yue", target_text="你好")
    assert bad_ref["status"] == "failed" and "'nope.wav' is not in sliced/" in bad_ref["error_message"]
    assert bad_gpt["status"] == "failed" and "spk-e1.ckpt" in bad_gpt["error_message"]
    assert short["status"] == "failed" and "OSError" in short["error_message"]  # the engine's 3-10 s rule
    assert v1_lang["status"] == "completed"  # v2Pro knows Cantonese


def test_models_api_lists_nothing_before_training_and_404_for_unknown_task(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c)["task_id"]
        empty = c.get(f"/api/v1/task/{tid}/models").json()
        missing = c.get("/api/v1/task/nope/models")
    assert empty == {"task_id": tid, "sovits": [], "gpt": [], "latest": {"sovits": None, "gpt": None}}
    assert missing.status_code == 404 and "detail" in missing.json()
