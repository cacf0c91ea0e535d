"""Transcript edits survive asr_transcribe running again (issue 9, item 9): kept by slice name in
transcripts/edits.json and re-applied on top of the uploads or the engine's ASR; a 409 (or, inside a
pipeline, a failed run) naming the edited slices that no longer exist unless overwrite_edits; PUT
`edits` adding a line for a slice without one; GET /transcripts/template to fill in."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gsv_service.app import create_app
from tests.conftest import make_settings
from tests.engine_support import run_step, tone

NAMES = [f"rec.wav_{a:010d}_{a + 96000:010d}.wav" for a in (0, 200000, 400000, 600000)]
UPLOADED = {NAMES[0]: "Helo wrld, this is the frist line.", NAMES[1]: "The second line is right.",
            NAMES[2]: "A third line to drop."}  # NAMES[3]: no transcript uploaded
FIXED = "Hello world, this is the first line."
ADDED = "The fourth line, written by hand."


@pytest.fixture
def db_url():  # files and steps, not the store: SQLite only
    return None


def new_task(client, language: str = "en") -> tuple[str, Path]:
    r = client.post("/api/v1/task/create", json={"task_name": "edits", "config": {"exp_name": "spk",
                                                                                  "language": language}})
    assert r.status_code == 200, r.text
    tid = r.json()["task_id"]
    root = Path(client.app.state.service.task_root) / tid
    for i, name in enumerate(NAMES):
        tone(root / "sliced" / name, 3.0, 200 + 40 * i)
    return tid, root


def upload_texts(client, tid: str, texts: dict[str, str]) -> None:
    files = [("files", (f"{Path(n).stem}.txt", t.encode())) for n, t in texts.items()]
    r = client.post(f"/api/v1/task/{tid}/files/upload", files=files)
    assert r.status_code == 200, r.text


def completed(run: dict) -> dict:
    assert run["status"] == "completed", run["error_message"]
    return run["result"]


def texts(client, tid: str) -> dict[str, str]:
    body = client.get(f"/api/v1/task/{tid}/transcripts").json()
    return {ln["slice"]: ln["text"] for ln in body["lines"]}


def edit(client, tid: str, body: dict) -> dict:
    r = client.put(f"/api/v1/task/{tid}/transcripts", json=body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def transcribed(client):
    """A task whose transcript came from uploaded .txt files (method provided)."""
    tid, root = new_task(client)
    upload_texts(client, tid, UPLOADED)
    res = completed(run_step(client, tid, "asr_transcribe"))
    assert res["lines"] == 3 and res["missing"] == [NAMES[3]] and res["edits_reapplied"] == 0
    return tid, root


def test_a_rerun_keeps_a_typo_fix_an_added_line_and_a_drop(client, transcribed):
    tid, root = transcribed
    body = edit(client, tid, {"edits": [{"slice": NAMES[0], "text": FIXED}, {"slice": NAMES[3], "text": ADDED},
                                        {"slice": NAMES[2], "drop": True}]})
    assert body["edits_kept"] == 3 and "3 edited slice(s) kept" in body["message"]
    assert [ln["slice"] for ln in body["lines"]] == [NAMES[0], NAMES[1], NAMES[3]]
    kept = json.loads((root / "transcripts" / "edits.json").read_text(encoding="utf-8"))["edits"]
    assert kept == {NAMES[0]: {"text": FIXED, "language": "EN"}, NAMES[2]: {"drop": True},
                    NAMES[3]: {"text": ADDED, "language": "EN"}}

    res = completed(run_step(client, tid, "asr_transcribe"))  # the path that used to lose the edits
    assert res["edits_reapplied"] == 3 and res["lines"] == 3 and res["missing"] == []
    assert texts(client, tid) == {NAMES[0]: FIXED, NAMES[1]: UPLOADED[NAMES[1]], NAMES[3]: ADDED}
    # a new upload changes the lines nobody edited; the edited ones keep the person's text
    upload_texts(client, tid, {NAMES[1]: "The second line, uploaded again.", NAMES[0]: "Uploaded again."})
    completed(run_step(client, tid, "asr_transcribe"))
    assert texts(client, tid) == {NAMES[0]: FIXED, NAMES[1]: "The second line, uploaded again.",
                                  NAMES[3]: ADDED}


def test_replacing_the_whole_transcript_keeps_what_it_changed(client, transcribed):
    tid, root = transcribed
    edit(client, tid, {"lines": [{"slice": NAMES[1], "text": UPLOADED[NAMES[1]]},
                                 {"slice": NAMES[0], "text": FIXED}, {"slice": NAMES[3], "text": ADDED}]})
    kept = json.loads((root / "transcripts" / "edits.json").read_text(encoding="utf-8"))["edits"]
    assert sorted(kept) == [NAMES[0], NAMES[2], NAMES[3]]  # changed, left out, added: not the unchanged one
    res = completed(run_step(client, tid, "asr_transcribe"))
    assert res["edits_reapplied"] == 3
    assert texts(client, tid) == {NAMES[0]: FIXED, NAMES[1]: UPLOADED[NAMES[1]], NAMES[3]: ADDED}


def test_put_edits_adds_a_line_for_a_slice_without_one(client, transcribed):
    tid, _root = transcribed
    body = edit(client, tid, {"edits": [{"slice": NAMES[3], "text": "你好。", "language": "zh"}]})
    assert body["count"] == 4 and [ln["slice"] for ln in body["lines"]] == NAMES  # in slice order
    assert body["lines"][3]["language"] == "ZH" and body["lines"][3]["duration"] == pytest.approx(3.0, abs=0.01)
    for bad, expect in (({"slice": "nope.wav", "text": "x"}, "sliced/ has no slice of that name"),
                        ({"slice": "../sliced/" + NAMES[3], "text": "x"}, "has no slice of that name"),
                        ({"slice": NAMES[3] + "x", "language": "en"}, "has no slice of that name")):
        r = client.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [bad]})
        assert r.status_code == 422 and expect in r.json()["detail"], r.text
    edit(client, tid, {"edits": [{"slice": NAMES[3], "drop": True}]})
    r = client.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [{"slice": NAMES[3], "language": "en"}]})
    assert r.status_code == 422 and "give `text` to add one" in r.json()["detail"]


def test_edits_for_slices_that_are_gone_are_refused_until_overwrite_edits(client, transcribed):
    tid, root = transcribed
    edit(client, tid, {"edits": [{"slice": NAMES[0], "text": FIXED}, {"slice": NAMES[3], "text": ADDED},
                                 {"slice": NAMES[2], "drop": True}]})
    (root / "sliced" / NAMES[0]).rename(root / "sliced" / "rec.wav_0000000000_0000099200.wav")  # sliced anew
    (root / "sliced" / NAMES[2]).unlink()  # a dropped slice that is gone loses nothing
    runs = client.get(f"/api/v1/task/{tid}/runs").json()
    r = client.post(f"/api/v1/task/{tid}/step/asr_transcribe", json={"params": {}})
    assert r.status_code == 409, r.text
    body = r.json()
    assert NAMES[0] in body["detail"] and "overwrite_edits" in body["detail"] and "transcripts/edits.json" in body["detail"]
    assert body["vanished_edited_slices"] == [NAMES[0]] and body["edits"] == 3
    assert client.get(f"/api/v1/task/{tid}/runs").json() == runs  # nothing started

    # inside a pipeline (its slices may change on the way) the run itself refuses, changing nothing
    before = (root / "transcripts" / "spk.list").read_bytes()
    r = client.post(f"/api/v1/task/{tid}/run", json={"from_step": "asr_transcribe", "to_step": "asr_transcribe"})
    assert r.status_code == 202, r.text
    rec = wait_pipeline(client, tid)
    assert rec["status"] == "failed" and rec["failed_step"] == "asr_transcribe"
    assert NAMES[0] in rec["error_message"] and "overwrite_edits" in rec["error_message"]
    assert (root / "transcripts" / "spk.list").read_bytes() == before

    res = completed(run_step(client, tid, "asr_transcribe", overwrite_edits=True))
    assert res["edits_discarded"] == 3 and res["edits_reapplied"] == 0
    assert not (root / "transcripts" / "edits.json").exists()
    assert NAMES[3] not in texts(client, tid)  # afresh from the uploads: the added line is gone, as asked


def wait_pipeline(client, tid: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = client.get(f"/api/v1/task/{tid}/pipeline").json()
        if rec["status"] not in ("running", "queued"):
            return rec
        time.sleep(0.05)
    raise AssertionError("the pipeline did not end")


def test_template_lists_the_slices_to_fill_in_and_round_trips_as_an_upload(client):
    tid, root = new_task(client)
    r = client.get(f"/api/v1/task/{tid}/transcripts/template")
    assert r.status_code == 200, r.text
    tpl = r.json()
    assert tpl["source"] == "sliced" and tpl["count"] == 4 and tpl["language"] == "EN" and tpl["speaker"] == "spk"
    assert [(ln["slice"], ln["text"]) for ln in tpl["lines"]] == [(n, "") for n in NAMES]
    assert all(ln["duration"] == pytest.approx(3.0, abs=0.01) for ln in tpl["lines"])

    r = client.get(f"/api/v1/task/{tid}/transcripts/template", params={"format": "list"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert f'filename="{tid}.template.list"' in r.headers["content-disposition"]
    assert r.text.splitlines() == [f"{n}|spk|EN|" for n in NAMES]
    filled = "".join(f"{row}Line {i} read aloud.\n" for i, row in enumerate(r.text.splitlines()))
    up = client.post(f"/api/v1/task/{tid}/files/upload", files=[("files", ("filled.list", filled.encode()))])
    assert up.status_code == 200, up.text
    res = completed(run_step(client, tid, "asr_transcribe"))
    assert res["method"] == "provided" and res["lines"] == 4
    assert texts(client, tid) == {n: f"Line {i} read aloud." for i, n in enumerate(NAMES)}

    assert client.get(f"/api/v1/task/{tid}/transcripts/template", params={"format": "xml"}).status_code == 422


def test_template_before_slicing_and_put_before_a_transcript_say_what_to_do(client):
    tid = client.post("/api/v1/task/create", json={"task_name": "t"}).json()["task_id"]
    r = client.get(f"/api/v1/task/{tid}/transcripts/template")
    assert r.status_code == 404 and "slice_audio" in r.json()["detail"]
    assert r.json()["run_first"] == "convert_audio"
    r = client.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [{"slice": NAMES[0], "text": "x"}]})
    assert r.status_code == 404 and "transcripts/template?format=list" in r.json()["detail"]
    assert client.get("/api/v1/task/nope/transcripts/template").status_code == 404


def test_auto_language_template_leaves_the_language_column_empty(client):
    tid, _root = new_task(client, language="auto")
    r = client.get(f"/api/v1/task/{tid}/transcripts/template", params={"format": "list"})
    assert r.text.splitlines()[0] == f"{NAMES[0]}|spk||"
    assert client.get(f"/api/v1/task/{tid}/transcripts/template").json()["language"] is None


# ---------- the engine's ASR, through a stand-in checkout ----------

FUNASR = textwrap.dedent('''
    import os
    def execute_asr(input_folder, output_folder, model_size, language, backend="fun-asr-nano"):
        rows = [f"{os.path.join(input_folder, n)}|x|{language.upper()}|recognised {n[-14:-4]}"
                for n in sorted(os.listdir(input_folder))]
        os.makedirs(output_folder, exist_ok=True)
        path = os.path.abspath(f"{output_folder}/{os.path.basename(input_folder)}.list")
        open(path, "w", encoding="utf-8").write("\\n".join(rows))
        return path
''')


@pytest.fixture
def engine_client(tmp_path):
    root = tmp_path / "checkout"
    (root / "GPT_SoVITS").mkdir(parents=True)
    (root / "tools" / "asr").mkdir(parents=True)
    (root / "tools" / "__init__.py").write_text("")
    (root / "tools" / "asr" / "funasr_asr.py").write_text(FUNASR)
    settings = make_settings(tmp_path, None, engine_root=root, engine_python=sys.executable)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_engine_asr_rerun_reapplies_the_edits(engine_client):
    c = engine_client
    tid, _root = new_task(c)
    res = completed(run_step(c, tid, "asr_transcribe", method="funasr"))
    assert res["lines"] == 4 and res["edits_reapplied"] == 0
    edit(c, tid, {"edits": [{"slice": NAMES[1], "text": FIXED}, {"slice": NAMES[2], "drop": True}]})
    res = completed(run_step(c, tid, "asr_transcribe", method="funasr", backend="sensevoice"))
    assert res["edits_reapplied"] == 2 and res["lines"] == 3
    got = texts(c, tid)
    assert got[NAMES[1]] == FIXED and NAMES[2] not in got and got[NAMES[0]] == f"recognised {NAMES[0][-14:-4]}"
