"""The OpenAPI document tells the truth: every JSON answer has a schema and an example, every
request body an example, each example fits its schema, the error model and codes are documented
per route; live answers from a server (with the engine's contract double) fit the schema of their
route and status; /docs and /redoc work offline (only same-origin URLs, each answering 200)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
import jsonschema
import pytest

from gsv_service.app import create_app
from gsv_service.steps.registry import STEP_NAMES
from tests.audio_fixtures import have_tools
from tests.conftest import make_settings
from tests.live_flow import double_server, idle, pipeline_ended, reading, sliced_with_transcripts, trained

pytestmark = pytest.mark.timeout(300)
METHODS = ("get", "post", "put", "delete", "patch")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict:
    return create_app(make_settings(tmp_path_factory.mktemp("spec"))).openapi()


def operations(spec: dict):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in METHODS:
                yield path, method, op


def validator(spec: dict, schema: dict) -> jsonschema.Draft202012Validator:
    """A validator for a schema of the document: its $refs resolve against the document's components."""
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


def resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def check_fits(spec: dict, schema: dict, value: Any, where: str) -> None:
    errors = sorted(validator(spec, schema).iter_errors(value), key=lambda e: list(e.path))
    assert not errors, f"{where}: " + "; ".join(f"{list(e.path)}: {e.message[:200]}" for e in errors[:5])


# ---------- the document ----------

def test_every_json_answer_has_a_schema_and_an_example_that_fits(spec):
    checked = 0
    for path, method, op in operations(spec):
        ok = [c for c in op["responses"] if c.startswith("2")]
        assert ok, f"{method} {path}: no success answer documented"
        for code, answer in op["responses"].items():
            where = f"{method.upper()} {path} {code}"
            if code == "304":  # Not Modified has no body, by HTTP's definition
                continue
            assert answer.get("content"), f"{where}: no content documented"
            for media, doc in answer["content"].items():
                schema = doc.get("schema")
                assert schema, f"{where} {media}: no schema"
                if media != "application/json":
                    continue
                assert resolve(spec, schema).get("type") or "$ref" in schema or "anyOf" in schema, \
                    f"{where}: an untyped JSON answer ({schema})"
                assert "example" in doc or "examples" in doc, f"{where}: no example"
                examples = [doc["example"]] if "example" in doc else [e["value"] for e in doc["examples"].values()]
                for example in examples:
                    check_fits(spec, schema, example, f"{where} example")
                    checked += 1
    assert checked >= 60


def test_every_request_body_has_examples_that_fit(spec):
    bodies = 0
    for path, method, op in operations(spec):
        body = op.get("requestBody")
        if not body:
            continue
        for media, doc in body["content"].items():
            where = f"{method.upper()} {path} {media}"
            assert "example" in doc or "examples" in doc, f"{where}: no example"
            if media == "application/json":
                for ex in doc["examples"].values():
                    check_fits(spec, doc["schema"], ex["value"], f"{where} example {ex.get('summary')}")
            bodies += 1
    assert bodies >= 5  # create, step, run, transcripts PUT, upload


def test_errors_use_the_error_model_and_each_route_names_its_codes(spec):
    assert "HTTPValidationError" not in json.dumps(spec), "FastAPI's own 422 body is not what the service answers"
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"] and error.get("additionalProperties", True) is not False
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        for code, answer in op["responses"].items():
            if code.startswith("4"):
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, \
                    f"{where} {code}"
        if "{task_id}" in path:
            assert "404" in op["responses"], f"{where}: an unknown task answers 404"
        if op.get("requestBody", {}).get("content", {}).get("application/json") or \
                any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "422" in op["responses"], f"{where}: a bad body or query answers 422"
    codes = lambda p, m: set(spec["paths"][p][m]["responses"])  # noqa: E731
    assert {"404", "409", "422", "424"} <= codes("/api/v1/task/{task_id}/step/{step}", "post")
    assert {"404", "409", "422", "424"} <= codes("/api/v1/task/{task_id}/run", "post")
    assert {"400", "404", "409", "413", "415"} <= codes("/api/v1/task/{task_id}/files/upload", "post")
    assert {"404", "416"} <= codes("/api/v1/task/{task_id}/files/download/{path}", "get")
    assert {"404", "409", "422"} <= codes("/api/v1/task/{task_id}/transcripts", "put")


def test_step_is_an_enum_events_are_a_stream_and_the_websocket_is_described(spec):
    step = next(p for p in spec["paths"]["/api/v1/task/{task_id}/step/{step}"]["post"]["parameters"]
                if p["name"] == "step")
    assert step["schema"]["enum"] == list(STEP_NAMES)
    for path in ("/api/v1/task/{task_id}/events", "/api/v1/events"):
        content = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert list(content) == ["text/event-stream"], path
        assert content["text/event-stream"]["example"].startswith("id: ")
    events = next(t for t in spec["tags"] if t["name"] == "events")["description"]
    assert "/api/v1/task/{task_id}/ws" in events and "WebSocket" in events and "4404" in events
    task = spec["components"]["schemas"]["TaskOut"]["properties"]
    assert {"last_completed_step", "has_weights", "summary"} <= set(task)


# ---------- /docs and /redoc offline ----------

class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _urls_in(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    # the inline script names the OpenAPI document and the OAuth redirect as strings
    return parser.urls + re.findall(r"""(?:url|oauth2RedirectUrl|spec-url)['"]?\s*[:=]\s*['"]([^'"]+)['"]""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_from_the_service(client, page):
    r = client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "cdn." not in r.text and "fonts.googleapis" not in r.text and "unpkg" not in r.text
    urls = _urls_in(r.text)
    assert len(urls) >= 2, urls
    assert "/openapi.json" in urls
    for url in urls:
        full = urljoin(f"http://testserver{page}", url)
        assert urlparse(full).netloc == "testserver", f"{page} loads {url} from elsewhere"
        got = client.get(urlparse(full).path)
        assert got.status_code == 200, (url, got.status_code)
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts and all(len(client.get(u).content) > 500_000 for u in scripts)  # the real bundles


def test_swagger_ui_sends_the_schema_nowhere(client):
    assert '"validatorUrl": null' in client.get("/docs").text


# ---------- live answers ----------

class Checked:
    """An HTTP client whose every answer must be documented: its status among the route's
    responses, its content type among that answer's, its JSON valid against that schema."""

    def __init__(self, spec: dict, base: str):
        self.spec = spec
        self.http = httpx.Client(base_url=base, timeout=30)
        self.routes = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p.replace("{path}", "(?P<path>.+)")) + "$"), p)
                       for p in spec["paths"]]
        self.seen: set[tuple[str, str, int]] = set()

    def route(self, path: str) -> str:
        exact = [p for rx, p in self.routes if rx.match(path) and "{" not in p]
        found = exact or [p for rx, p in self.routes if rx.match(path)]
        assert found, f"{path}: not in the OpenAPI document"
        return found[0]

    def check(self, r: httpx.Response) -> httpx.Response:
        method, path = r.request.method.lower(), r.request.url.path
        template = self.route(path)
        answers = self.spec["paths"][template][method]["responses"]
        where = f"{method.upper()} {path} -> {r.status_code}"
        assert str(r.status_code) in answers, f"{where}: status not documented ({r.text[:200]})"
        content = answers[str(r.status_code)].get("content", {})
        media = r.headers.get("content-type", "").split(";")[0]
        assert media in content or "*/*" in content, f"{where}: {media} not documented ({list(content)})"
        if media == "application/json":
            check_fits(self.spec, content[media]["schema"], r.json(), where)
        self.seen.add((method, template, r.status_code))
        return r

    def __getattr__(self, method: str):
        call = getattr(self.http, method)
        return lambda *a, **kw: self.check(call(*a, **kw))


@pytest.fixture(scope="module")
def live(spec, tmp_path_factory):
    if not have_tools():
        pytest.skip("espeak-ng and ffmpeg are needed")
    tmp = tmp_path_factory.mktemp("live")
    with double_server(tmp) as srv:
        checked = Checked(spec, srv.url)
        yield checked, tmp
        checked.http.close()


def _walk_gets(spec: dict, c: Checked, values: dict[str, str]) -> int:
    """Every GET route, its path parameters filled in from `values`."""
    n = 0
    for path, method, op in operations(spec):
        if method != "get":
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        if "text/event-stream" in op["responses"]["200"]["content"]:
            with c.http.stream("GET", url, params={"latest": "true"}, timeout=10) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            continue
        c.get(url)
        n += 1
    return n


def test_live_answers_fit_the_document(live):
    c, tmp = live
    wav = reading(tmp / "audio")
    tid = sliced_with_transcripts(c.http, wav, tmp / "tx", "review")
    r = c.post(f"/api/v1/task/{tid}/run", json={"from_step": "asr_transcribe", "stop_after_asr_for_review": True,
                                                 "steps_params": {"asr_transcribe": {"method": "provided"}}})
    assert r.status_code == 202
    assert pipeline_ended(c.http, tid)["status"] == "awaiting_review"
    c.get(f"/api/v1/task/{tid}/transcripts")
    c.get(f"/api/v1/task/{tid}/pipeline")
    c.get(f"/api/v1/task/{tid}")
    lines = c.http.get(f"/api/v1/task/{tid}/transcripts").json()["lines"]
    assert c.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [{"slice": "nope.wav", "text": "x"}]}
                 ).status_code == 422  # no such slice
    assert c.post(f"/api/v1/task/{tid}/transcripts/approve").status_code == 202
    assert pipeline_ended(c.http, tid, timeout=180)["status"] == "completed"
    saved = c.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [{"slice": lines[0]["slice"],
                                                                     "text": "Other words."}]})
    assert saved.status_code == 200 and saved.json()["stale_steps"]
    assert c.post(f"/api/v1/task/{tid}/transcripts/approve").status_code == 409

    run_id = c.http.get(f"/api/v1/task/{tid}/runs").json()[0]["id"]
    values = {"task_id": tid, "run_id": run_id, "path": "output.wav", "step": "convert_audio"}
    assert _walk_gets(c.spec, c, values) >= 18
    assert c.get(f"/api/v1/task/{tid}/logs", params={"follow": "true"}).text  # text/plain
    assert c.get(f"/api/v1/task/{tid}/transcripts/template", params={"format": "list"}).text.count("|") >= 12
    assert c.get(f"/api/v1/task/{tid}/metrics/plot.png").content.startswith(b"\x89PNG")

    # errors: unknown task on every task route, bad queries, a busy task, inputs missing
    unknown = {**values, "task_id": "00000000-0000-4000-8000-000000000000"}
    for path, method, _op in operations(c.spec):
        if method == "get" and "{task_id}" in path:
            url = re.sub(r"\{(\w+)\}", lambda m: unknown[m.group(1)], path)
            if "events" in path:
                assert c.http.get(url).status_code == 404
                continue
            assert c.get(url).status_code == 404, url
    assert c.get("/api/v1/tasks", params={"limit": 0}).status_code == 422
    assert c.get(f"/api/v1/task/{tid}/files", params={"folder": "nope"}).status_code == 400
    assert c.get(f"/api/v1/task/{tid}/files/download/sliced/%2e%2e/%2e%2e/x").status_code == 400
    assert c.get(f"/api/v1/task/{tid}/files/download/sliced/{lines[0]['slice']}",
                 headers={"Range": "bytes=99999999-"}).status_code == 416
    assert c.get("/api/v1/events", params={"types": "nope"}).status_code == 400

    fresh = c.post("/api/v1/task/create", json={"task_name": "x", "config": {"exp_name": "x"}}).json()["task_id"]
    assert c.post("/api/v1/task/create", json={"task_name": ""}).status_code == 422
    assert c.post(f"/api/v1/task/{fresh}/step/slice_audio", json={}).status_code == 409
    assert c.post(f"/api/v1/task/{fresh}/step/no_such_step", json={}).status_code == 404
    assert c.post(f"/api/v1/task/{fresh}/step/convert_audio", json={"params": {"workers": 0}}).status_code == 422
    assert c.post(f"/api/v1/task/{fresh}/run", json={"from_step": "nope"}).status_code == 404  # names the steps
    assert c.post(f"/api/v1/task/{fresh}/run", json={"form_step": "slice_audio"}).status_code == 422  # a typo
    assert c.get(f"/api/v1/task/{fresh}/pipeline").status_code == 404
    assert c.get(f"/api/v1/task/{fresh}/transcripts").status_code == 404
    assert c.get(f"/api/v1/task/{fresh}/dataset").status_code == 404
    assert c.post(f"/api/v1/task/{fresh}/files/upload", files={"file": ("notes.pdf", b"%PDF")}).status_code == 415
    with open(wav, "rb") as f:
        assert c.post(f"/api/v1/task/{fresh}/files/upload", files={"file": ("reading.wav", f)}).status_code == 200
    started = c.post(f"/api/v1/task/{fresh}/step/convert_audio", json={"params": {}})
    assert started.status_code == 202
    busy = c.post(f"/api/v1/task/{fresh}/step/convert_audio", json={})
    assert busy.status_code in (202, 409)  # 409 while the first still runs
    c.post(f"/api/v1/task/{fresh}/cancel")
    idle(c.http, fresh)
    assert c.post(f"/api/v1/task/{fresh}/cancel").json()["cancelled"] is False
    assert c.delete(f"/api/v1/task/{fresh}").status_code == 200

    documented = {(m, p) for p, m, _ in operations(c.spec)}
    called = {(m, p) for m, p, _ in c.seen}
    streams = {("get", "/api/v1/task/{task_id}/events"), ("get", "/api/v1/events")}
    assert documented - called - streams == set(), "routes no answer was checked for"


def test_a_trained_task_says_so(live):
    c, tmp = live
    tid = trained(c.http, reading(tmp / "audio2"), tmp / "tx2", "trained")
    task = c.get(f"/api/v1/task/{tid}").json()
    assert task["status"] == "completed" and task["has_weights"] is True
    assert task["last_completed_step"] == "test_inference"
    assert "trained weights are ready" in task["summary"]
    steps = task["steps"]
    assert steps["convert_audio"]["message"] == "converted 1 of 1"
    assert steps["slice_audio"]["message"].startswith("cut 1 recording into 4 slices")
    assert steps["asr_transcribe"]["message"] == "transcribed 4 of 4 slices (provided)"
    assert steps["train_sovits"]["message"].startswith("trained 1 epoch; latest weights: spk_e1_s")
    assert steps["test_inference"]["message"].startswith("wrote output/output.wav")
