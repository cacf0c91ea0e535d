"""Issue 10, item 2: no server paths from users, full-match validation of every free-text field
that reaches a file, a .list line, an env var or a config, names within 255 bytes, and gpu_id /
parts_per_gpu within what the service has. Each attack of the issue is a test here."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.engine_support import (DOUBLE, arrange_inputs, completed, create_task, double_settings, run_step,
                                  service, task_dir, zh_lines)
from tests.test_files import raw_upload

pytestmark = pytest.mark.timeout(120)
PRE = DOUBLE / "GPT_SoVITS" / "pretrained_models"


def post_step(c, tid: str, step: str, **params):
    return c.post(f"/api/v1/task/{tid}/step/{step}", json={"params": params})


def new_task(c, **config) -> str:
    r = c.post("/api/v1/task/create", json={"task_name": "t", "config": {"exp_name": "spk", **config}})
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


# ---------- model params: names inside the pretrained folder only ----------

def _without(detail: str) -> str:
    return re.sub(r"no model named .* in the pretrained folder", "no model named <value> in the pretrained folder",
                  detail)


def test_model_params_refuse_server_paths_with_the_same_422_as_a_missing_name(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        other = new_task(c)
        raw_upload(c, other, b"evil.wav", b"\x80\x04pickle")   # another task's upload
        upload = task_dir(s, other) / "input_audio" / "evil.wav"
        assert upload.is_file()
        tid = new_task(c)
        attacks = ["/etc/passwd", "/etc/shadow", "~/.ssh/id_rsa", "../../../../etc/passwd",
                   "gsv-v2final-pretrained/../../../../../etc/passwd", str(upload),
                   f"../../../../{upload}", "no-such-model.pth", "v2Pro", ""]
        details = set()
        for step, field in (("train_sovits", "pretrained_s2G"), ("train_sovits", "pretrained_s2D"),
                            ("train_gpt", "pretrained_s1"), ("extract_semantic_features", "pretrained_s2G")):
            for value in attacks:
                r = post_step(c, tid, step, **{field: value})
                assert r.status_code == 422, (step, field, value, r.text)
                detail = r.json()["detail"]
                assert detail.startswith(f"params of {step}.{field}: no model named ")
                assert "GET /api/v1/options lists them" in detail
                details.add(_without(detail))
            r = c.post(f"/api/v1/task/{tid}/run", json={"steps_params": {step: {field: "/etc/passwd"}}})
            assert r.status_code == 422 and field in r.json()["detail"], r.text
        # whether a file exists elsewhere or not at all, the answer is the same
        assert len(details) == 4, details
        assert c.get(f"/api/v1/task/{tid}/runs").json() == []


def test_model_params_accept_names_in_the_folder_and_options_list_them(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        names = c.get("/api/v1/options").json()["pretrained_models"]
        assert {"s2G488k.pth", "v2Pro/s2Gv2Pro.pth", "gsv-v2final-pretrained/s2D2333k.pth",
                "s1v3.ckpt"} <= set(names)
        assert not any(n.startswith("/") or ".." in n for n in names)
        tid = new_task(c, model_version="v2")
        # accepted at submit: the step gets as far as its own inputs (409 names the step to run)
        for step, params in (("train_sovits", {"pretrained_s2G": "v2Pro/s2Gv2Pro.pth",
                                               "pretrained_s2D": "s2D488k.pth"}),
                             ("train_gpt", {"pretrained_s1": "s1v3.ckpt"}),
                             ("train_sovits", {"pretrained_s2G": str(PRE / "s2G488k.pth")})):
            r = post_step(c, tid, step, **params)
            assert r.status_code == 409 and r.json()["run_first"], r.text


def test_a_named_model_reaches_the_engine_resolved_inside_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DOUBLE_ENV_LOG", str(tmp_path / "env.jsonl"))
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c, model_version="v2")["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(3))
        completed(run_step(c, tid, "extract_audio_features"))
        completed(run_step(c, tid, "extract_semantic_features", pretrained_s2G="v2Pro/s2Gv2Pro.pth"))
    rows = [json.loads(ln) for ln in (tmp_path / "env.jsonl").read_text().splitlines()]
    sem = [r["env"] for r in rows if r["stage"] == "semantic"]
    assert sem and {e["pretrained_s2G"] for e in sem} == {str((PRE / "v2Pro" / "s2Gv2Pro.pth").resolve())}


def test_resolve_stays_inside_the_folder(tmp_path):
    from gsv_service import model_names
    from gsv_service.model_names import ModelNameRejected

    root = tmp_path / "pre"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "g.pth").write_bytes(b"g")
    outside = tmp_path / "secret.pth"
    outside.write_bytes(b"s")
    (root / "link.pth").symlink_to(outside)          # a link out of the folder
    (root / "inner.pth").symlink_to(root / "sub" / "g.pth")
    assert model_names.resolve(root, "sub/g.pth", "f") == (root / "sub" / "g.pth").resolve()
    assert model_names.resolve(root, str(root / "sub" / "g.pth"), "f") == (root / "sub" / "g.pth").resolve()
    assert model_names.resolve(root, "inner.pth", "f") == (root / "sub" / "g.pth").resolve()
    for bad in ("link.pth", str(outside), "../secret.pth", "sub/../../secret.pth", "sub", ".", "",
                "sub/g.pth\x00", "missing.pth", "/etc/passwd"):
        with pytest.raises(ModelNameRejected):
            model_names.resolve(root, bad, "f")
    assert model_names.available(root) == ["inner.pth", "sub/g.pth"]


def test_a_recorded_param_naming_a_server_path_fails_the_step_not_the_engine(tmp_path):
    """Params recorded before this check (a pipeline resumed after an upgrade) meet it again
    when the step runs."""
    from gsv_service.engine import load_engine
    from gsv_service.steps.base import StepFailed
    from gsv_service.steps.training import SovitsParams, _base_model

    engine = load_engine(double_settings(tmp_path))
    with pytest.raises(StepFailed, match="no model named '/etc/passwd'"):
        _base_model(engine, SovitsParams(pretrained_s2G="/etc/passwd"), "pretrained_s2G", "s2G", "v2")
    assert _base_model(engine, SovitsParams(), "pretrained_s2G", "s2G", "v2") == \
        (PRE / "gsv-v2final-pretrained" / "s2G2333k.pth").resolve()


# ---------- free text: full-match patterns ----------

@pytest.mark.parametrize("config", [
    {"speaker_name": "s|EN|x\n/etc/passwd|s"}, {"speaker_name": "spk\n"}, {"speaker_name": "a|b"},
    {"speaker_name": " lead"}, {"speaker_name": "trail "}, {"speaker_name": "x" * 65},
    {"exp_name": "nl\n"}, {"exp_name": "a/b"}, {"exp_name": ".."}, {"gpu_id": "0-\n1"},
    {"webhook_url": "http://example.com/hook\n"}, {"webhook_url": "http://example.com/a b"},
])
def test_free_text_config_fields_are_refused_with_422(client, config):
    r = client.post("/api/v1/task/create", json={"task_name": "t", "config": {"exp_name": "spk", **config}})
    assert r.status_code == 422, r.text
    assert list(config)[0] in r.json()["detail"]
    assert client.get("/api/v1/tasks").json() == []


@pytest.mark.parametrize("name", ["spk", "Alice Smith", "张三", "José-1.b", "x" * 64])
def test_plain_speaker_names_are_accepted(client, name):
    r = client.post("/api/v1/task/create", json={"task_name": "t", "config": {"speaker_name": name}})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["speaker_name"] == name


@pytest.mark.parametrize("name", ["line\nbreak", "tab\there", "nul\x00", "sep\u2028x"])
def test_task_names_with_control_characters_are_422(client, name):
    r = client.post("/api/v1/task/create", json={"task_name": name, "config": {}})
    assert r.status_code == 422 and "task_name" in r.json()["detail"], r.text


def test_transcript_text_cannot_break_the_list(tmp_path):
    s = double_settings(tmp_path)
    with service(s) as c:
        tid = create_task(c)["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(2))
        before = (task_dir(s, tid) / "transcripts" / "spk.list").read_text()
        for text in ("a\x00b", "bell\x07", "x|ZH|y", "two\nlines", "esc\x1b[2J"):
            r = c.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [
                {"slice": "utt_00.wav", "text": text}]})
            assert r.status_code == 422, (text, r.text)
        assert (task_dir(s, tid) / "transcripts" / "spk.list").read_text() == before
        # other line separators are whitespace: kept on one line
        r = c.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [
            {"slice": "utt_00.wav", "text": "one\u2028two\x85three\x0bfour"}]})
        assert r.status_code == 200, r.text
        lines = (task_dir(s, tid) / "transcripts" / "spk.list").read_text(encoding="utf-8").split("\n")
        assert len([ln for ln in lines if ln]) == 2 and lines[0].endswith("|one two three four")


# ---------- names: at most 255 bytes ----------

def test_an_upload_name_over_255_bytes_is_4xx_not_500(client, settings):
    tid = new_task(client)
    name = "名" * 100 + ".wav"            # 104 characters, 304 bytes
    r = raw_upload(client, tid, name.encode())
    assert r.status_code == 400, r.text
    assert "255 bytes" in r.json()["detail"]
    assert list((settings.task_root / tid / "input_audio").iterdir()) == []
    ok = "名" * 83 + ".wav"               # 253 bytes
    assert raw_upload(client, tid, ok.encode()).status_code == 200


# ---------- gpu_id and engine processes ----------

def test_gpu_id_0_0_0_0_is_refused_and_parts_are_capped_on_a_cpu_service(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    s = double_settings(tmp_path)            # GSV_GPUS="" : no GPU
    with service(s) as c:
        r = c.post("/api/v1/task/create", json={"task_name": "t", "config": {"gpu_id": "0-0-0-0"}})
        assert r.status_code == 422 and "more than once" in r.json()["detail"], r.text
        r = c.post("/api/v1/task/create", json={"task_name": "t", "config": {"gpu_id": "0-1-2-3"}})
        assert r.status_code == 422 and "at most 2" in r.json()["detail"], r.text
        tid = create_task(c, gpu_id="0-1")["task_id"]
        arrange_inputs(task_dir(s, tid), "spk", zh_lines(2))
        r = post_step(c, tid, "extract_text_features", parts_per_gpu=8)
        assert r.status_code == 422, r.text
        assert "16 engine processes" in r.json()["detail"] and "at most 1" in r.json()["detail"]
        r = c.post(f"/api/v1/task/{tid}/run", json={"steps_params": {"extract_text_features": {"parts_per_gpu": 2}}})
        assert r.status_code == 422 and "parts_per_gpu" in r.json()["detail"], r.text
        assert c.get(f"/api/v1/task/{tid}/runs").json() == []
        completed(run_step(c, tid, "extract_text_features"))     # 2 processes: within the cap


def test_gpu_ids_must_be_the_services_gpus(tmp_path):
    with service(double_settings(tmp_path, gpus="0,1")) as c:
        r = c.post("/api/v1/task/create", json={"task_name": "t", "config": {"gpu_id": "2"}})
        assert r.status_code == 422, r.text
        assert "GPU 2" in r.json()["detail"] and "0, 1" in r.json()["detail"]
        assert c.post("/api/v1/task/create", json={"task_name": "t", "config": {"gpu_id": "0-1"}}).status_code == 200


def test_gsv_max_step_procs_caps_processes(tmp_path):
    with service(double_settings(tmp_path, gpus="0,1", max_step_procs=2)) as c:
        tid = create_task(c, gpu_id="0-1")["task_id"]
        r = post_step(c, tid, "extract_audio_features", parts_per_gpu=2)
        assert r.status_code == 422 and "GSV_MAX_STEP_PROCS" in r.json()["detail"], r.text


def test_settings_read_the_new_limits_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GSV_MAX_STEP_PROCS", "3")
    monkeypatch.setenv("GSV_MAX_UPLOAD_FILES", "7")
    monkeypatch.setenv("GSV_MAX_JSON_BYTES", "4096")
    s = make_settings(tmp_path)
    assert (s.max_step_procs, s.max_upload_files, s.max_json_bytes) == (3, 7, 4096)
    assert Path(s.task_root).name == "api_tasks"
