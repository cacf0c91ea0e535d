"""Tasks over HTTP: create, read, list with paging, step preconditions, errors."""

from __future__ import annotations

import pytest

from gsv_service.steps.registry import STEP_NAMES

CFG = {"exp_name": "spk", "language": "zh", "batch_size": 4, "epochs_s2": 2, "epochs_s1": 2, "gpu_id": "0"}


def create(client, name="voice", **cfg):
    r = client.post("/api/v1/task/create", json={"task_name": name, "config": {**CFG, **cfg}})
    assert r.status_code == 200, r.text
    return r.json()


def test_create_returns_original_fields_and_defaults(client, settings):
    t = create(client)
    for key in ("task_id", "task_name", "status", "current_step", "progress", "error_message",
                "created_at", "config", "steps"):
        assert key in t
    assert t["status"] == "created" and t["progress"] == 0.0 and isinstance(t["progress"], float)
    assert t["config"]["model_version"] == "v2ProPlus"
    assert list(t["steps"]) == list(STEP_NAMES)
    assert all(s["status"] == "pending" for s in t["steps"].values())
    assert (settings.task_root / t["task_id"] / "input_audio").is_dir()
    assert client.get(f"/api/v1/task/{t['task_id']}").json()["task_id"] == t["task_id"]


def test_original_client_config_shape_is_accepted(client):
    r = client.post("/api/v1/task/create", json={"task_name": "语音克隆演示", "config": {
        "exp_name": "demo_speaker", "language": "zh", "batch_size": 8, "epochs_s2": 20, "epochs_s1": 8,
        "gpu_id": "0"}})
    assert r.status_code == 200 and r.json()["task_name"] == "语音克隆演示"


@pytest.mark.parametrize("cfg,needle", [
    ({"model_version": "v9"}, "model_version"),
    ({"gpu_id": "0;rm"}, "gpu_id"),
    ({"exp_name": "../etc"}, "exp_name"),
    ({"batch_size": 0}, "batch_size"),
    ({"unknown_field": 1}, "unknown_field"),
])
def test_bad_config_is_422_with_field_named(client, cfg, needle):
    r = client.post("/api/v1/task/create", json={"task_name": "x", "config": {**CFG, **cfg}})
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_list_is_oldest_first_with_paging_and_total(client):
    ids = [create(client, name=f"t{i}")["task_id"] for i in range(5)]
    r = client.get("/api/v1/tasks")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "5"
    assert [t["task_id"] for t in r.json()] == ids
    r = client.get("/api/v1/tasks", params={"limit": 2, "offset": 3})
    assert [t["task_id"] for t in r.json()] == ids[3:5] and r.headers["X-Total-Count"] == "5"
    r = client.get("/api/v1/tasks", params={"order": "desc", "limit": 2})
    assert [t["task_id"] for t in r.json()] == ids[::-1][:2] and r.headers["X-Total-Count"] == "5"
    assert client.get("/api/v1/tasks", params={"status": "running"}).json() == []
    assert len(client.get("/api/v1/tasks", params={"status": "created"}).json()) == 5
    assert client.get("/api/v1/tasks", params={"status": "bogus"}).status_code == 422
    assert client.get("/api/v1/tasks", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize("task_id", ["nope", "x" * 300, "%00abc", "a%E2%80%8Db", "..", "%2e%2e"])
def test_unknown_or_hostile_task_id_is_404_never_500(client, task_id):
    for method, path in (("GET", ""), ("POST", "/cancel"), ("DELETE", ""), ("GET", "/logs"),
                         ("GET", "/files"), ("POST", "/step/slice_audio")):
        r = client.request(method, f"/api/v1/task/{task_id}{path}")
        assert 400 <= r.status_code < 500, (method, path, r.status_code)
        assert "detail" in r.json()


def test_step_errors_unknown_step_bad_params_missing_inputs(client):
    tid = create(client)["task_id"]
    r = client.post(f"/api/v1/task/{tid}/step/make_coffee", json={"params": {}})
    assert r.status_code == 404 and "convert_audio" in r.json()["detail"]
    r = client.post(f"/api/v1/task/{tid}/step/slice_audio", json={"params": {"threshold": "loud"}})
    assert r.status_code == 422 and "threshold" in r.json()["detail"]
    r = client.post(f"/api/v1/task/{tid}/step/slice_audio", json={"params": {"min_lenght": 3}})
    assert r.status_code == 422 and "min_lenght" in r.json()["detail"]
    r = client.post(f"/api/v1/task/{tid}/step/convert_audio", json={"params": {}})
    assert r.status_code == 409 and "upload" in r.json()["detail"]
    r = client.post(f"/api/v1/task/{tid}/step/slice_audio", json={})
    assert r.status_code == 409 and r.json()["run_first"] == "convert_audio"
    assert "convert_audio" in r.json()["detail"]
    # nothing was recorded for refused requests
    assert client.get(f"/api/v1/task/{tid}/runs").json() == []
    assert client.get(f"/api/v1/task/{tid}").json()["status"] == "created"


@pytest.mark.parametrize("step", ["extract_text_features", "extract_audio_features", "extract_speaker_vectors",
                                  "extract_semantic_features", "train_sovits", "train_gpt", "test_inference"])
def test_engine_steps_without_engine_say_how_to_fix(client, step):
    tid = create(client)["task_id"]
    r = client.post(f"/api/v1/task/{tid}/step/{step}", json={"params": {}})
    assert r.status_code == 424
    assert "GSV_ROOT" in r.json()["detail"]


def test_cancel_without_running_step_is_harmless(client):
    tid = create(client)["task_id"]
    r = client.post(f"/api/v1/task/{tid}/cancel")
    assert r.status_code == 200 and r.json()["cancelled"] is False


def test_delete_removes_row_and_folder(client, settings):
    tid = create(client)["task_id"]
    assert (settings.task_root / tid).is_dir()
    assert client.delete(f"/api/v1/task/{tid}").status_code == 200
    assert not (settings.task_root / tid).exists()
    assert client.get(f"/api/v1/task/{tid}").status_code == 404
    assert client.delete(f"/api/v1/task/{tid}").status_code == 404


def test_steps_registry_documents_every_step(client):
    steps = client.get("/api/v1/steps").json()
    assert [s["name"] for s in steps] == list(STEP_NAMES)
    slice_ = steps[1]
    props = slice_["params_schema"]["properties"]
    assert props["threshold"]["default"] == -34.0 and props["min_length"]["default"] == 4000
    assert "description" in props["threshold"]
    assert slice_["inputs"][0]["produced_by"] == "convert_audio"
    assert sum(s["needs_engine"] for s in steps) == 7


def test_health_and_engine_status(client):
    h = client.get("/api/v1/health").json()
    assert h["status"] == "ok" and h["store"]["ok"] is True and h["engine"]["found"] is False
    e = client.get("/api/v1/engine").json()
    assert e["found"] is False and "GSV_ROOT" in e["hint"] and e["device"] == "cpu"
    assert e["model_versions"] == ["v1", "v2", "v2Pro", "v2ProPlus"]


def test_openapi_and_docs_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/v1/task/create", "/api/v1/tasks", "/api/v1/task/{task_id}/step/{step}",
              "/api/v1/task/{task_id}/files/upload", "/api/v1/task/{task_id}/logs"):
        assert p in paths
