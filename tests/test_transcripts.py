"""Transcript lists: parsing and writing as upstream reads them, mapping uploaded transcripts,
and the review endpoints (GET/PUT /api/v1/task/{task_id}/transcripts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsv_service.states import RunStatus
from gsv_service.transcripts import (Line, TranscriptError, check_text, guess_language, list_language,
                                     load_provided, map_provided, parse_list, read_list, write_list)
from tests.audio_fixtures import SENTENCES_EN, have_tools, slice_files, utterance

NAMES = [f"rec.wav_{a:010d}_{a + 128000:010d}.wav" for a in (0, 150000, 300000, 450000)]


# ---------- the .list format ----------

def test_parse_list_keeps_good_lines_and_names_bad_ones():
    content = ("\ufeffC:\\data\\a.wav|spk|ZH|你好。\n\n/x/b.wav|spk|en|Hello.\n"
               "/x/c.wav|spk|EN\n/x/d.wav|spk|EN|a|b\n|spk|EN|no path\n")
    lines, problems = parse_list(content, "up.list")
    assert [(ln.name, ln.lang, ln.text) for ln in lines] == [("a.wav", "ZH", "你好。"), ("b.wav", "en", "Hello.")]
    assert [p.split(":")[0] for p in problems] == ["up.list line 4", "up.list line 5", "up.list line 6"]


def test_write_then_read_round_trips_in_upstreams_layout(tmp_path):
    rows = [Line("/t/sliced/a.wav", "spk", "ZH", "你好。"), Line("/t/sliced/b.wav", "spk", "EN", "Hi.")]
    write_list(tmp_path / "x.list", rows)
    raw = (tmp_path / "x.list").read_text(encoding="utf-8")
    assert raw == "/t/sliced/a.wav|spk|ZH|你好。\n/t/sliced/b.wav|spk|EN|Hi.\n"
    assert raw.strip("\n").split("\n")[1].split("|") == ["/t/sliced/b.wav", "spk", "EN", "Hi."]
    assert read_list(tmp_path / "x.list")[0] == rows


@pytest.mark.parametrize("code,want", [("zh", "ZH"), ("all_zh", "ZH"), ("JP", "JA"), ("ja", "JA"),
                                       ("all_ko", "KO"), ("Yue", "YUE"), ("en", "EN"), ("auto", None),
                                       ("de", None)])
def test_language_codes_map_to_what_the_feature_stage_accepts(code, want):
    assert list_language(code) == want


def test_language_guessed_from_the_script():
    assert [guess_language(t) for t in ("你好", "こんにちは", "안녕하세요", "Hello", "123")] == \
        ["ZH", "JA", "KO", "EN", None]
    assert guess_language("你好", cantonese=True) == "YUE"


@pytest.mark.parametrize("text", ["a|b", "two\nlines", "   "])
def test_text_that_would_break_the_format_is_refused(text):
    with pytest.raises(TranscriptError):
        check_text(text, "line 1")


def test_provided_list_and_text_files_map_by_name_stem_and_time(tmp_path):
    sliced = tmp_path / "sliced"
    slices = [p for p in (sliced / n for n in NAMES) if not p.parent.mkdir(exist_ok=True)]
    for p in slices:
        p.write_bytes(b"")
    up = tmp_path / "input_transcripts"
    up.mkdir()
    moved = f"rec.wav_{150320:010d}_{277760:010d}.wav"  # cut points 10 ms / 20 ms away
    (up / "a.list").write_text(f"/o/{NAMES[0]}|x|ZH|第一句。\n/o/{moved}|x|EN|Second.\n/o/{NAMES[0]}|x|ZH|又一次。\n"
                               "/o/zzz.wav|x|EN|Nobody.\nbroken line\n", encoding="utf-8")
    (up / f"{Path(NAMES[2]).stem}.lab").write_text("Third | one\n", encoding="utf-8")
    (up / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    m = map_provided(slices, load_provided(up), "spk", "en")
    assert [(Path(ln.wav_path).name, ln.lang, ln.text) for ln in m.lines] == [
        (NAMES[0], "ZH", "又一次。"), (NAMES[1], "EN", "Second."), (NAMES[2], "EN", "Third one")]
    assert m.missing == [NAMES[3]] and m.extra == ["zzz.wav"] and m.nearby == {moved: NAMES[1]}
    assert any("more than once" in p for p in m.problems) and any("line 5" in p for p in m.problems)
    assert any("latin1.txt: not UTF-8" in p for p in m.problems)


def test_a_transcript_named_after_a_recording_is_its_only_slices(tmp_path):
    names = [f"alone.wav_{0:010d}_{96000:010d}.wav", f"long.wav_{0:010d}_{96000:010d}.wav",
             f"long.wav_{96000:010d}_{192000:010d}.wav"]
    slices = [tmp_path / n for n in names]
    for p in slices:
        p.write_bytes(b"")
    up = tmp_path / "input_transcripts"
    up.mkdir()
    (up / "alone.txt").write_text("Only one slice here.", encoding="utf-8")
    (up / "long.txt").write_text("Which of the two?", encoding="utf-8")
    m = map_provided(slices, load_provided(up), "spk", "en")
    assert [(Path(ln.wav_path).name, ln.text) for ln in m.lines] == [(names[0], "Only one slice here.")]
    assert m.extra == ["long.txt"] and m.missing == names[1:]


# ---------- review through the API ----------

@pytest.fixture
def reviewed(client, settings, tmp_path):
    if not have_tools():
        pytest.skip("espeak-ng is needed")
    r = client.post("/api/v1/task/create", json={"task_name": "review", "config": {"exp_name": "spk",
                                                                                   "language": "en"}})
    tid = r.json()["task_id"]
    root = settings.task_root / tid
    audio = [utterance(SENTENCES_EN[i], "en", tmp_path / "espeak") for i in range(4)]
    wavs = slice_files(root / "sliced", list(zip(NAMES, audio)))
    write_list(root / "transcripts" / "spk.list",
               [Line(str(w), "spk", "EN", SENTENCES_EN[i]) for i, w in enumerate(wavs)])
    return tid, root, [len(a) / 22050 for a in audio]


def finish_step(app, tid: str, step: str, status=RunStatus.completed) -> dict:
    lifecycle = app.state.service.lifecycle
    run = lifecycle.start_run(tid, step, {}, lambda rid: Path("/dev/null"))
    if status != RunStatus.cancelled:
        lifecycle.mark_running(run.id, "test")
    return lifecycle.finish_run(run.id, status, result={})


def test_get_lists_lines_with_durations(client, reviewed):
    tid, _root, durations = reviewed
    body = client.get(f"/api/v1/task/{tid}/transcripts").json()
    assert body["count"] == 4 and body["path"] == "transcripts/spk.list"
    assert [ln["slice"] for ln in body["lines"]] == NAMES
    assert [ln["duration"] for ln in body["lines"]] == pytest.approx(durations, abs=0.01)
    assert body["lines"][1]["language"] == "EN" and body["lines"][1]["text"] == SENTENCES_EN[1]


def test_edits_change_the_list_and_make_the_feature_steps_stale(client, app, reviewed):
    tid, root, _ = reviewed
    finish_step(app, tid, "extract_text_features")
    r = client.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [
        {"slice": NAMES[0], "text": "  A corrected   first line. "},
        {"slice": NAMES[1], "drop": True}, {"slice": NAMES[2], "language": "all_zh", "text": "第三句。"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stale_steps"] == ["extract_text_features"] and body["count"] == 3
    rows = [ln.split("|") for ln in (root / "transcripts" / "spk.list").read_text(encoding="utf-8").splitlines()]
    assert [(Path(p[0]).name, p[2], p[3]) for p in rows] == [
        (NAMES[0], "EN", "A corrected first line."), (NAMES[2], "ZH", "第三句。"), (NAMES[3], "EN", SENTENCES_EN[3])]
    steps = client.get(f"/api/v1/task/{tid}").json()["steps"]
    assert steps["extract_text_features"]["status"] == "stale" and steps["train_sovits"]["status"] == "pending"


def test_replace_sets_the_whole_transcript_in_order(client, reviewed):
    tid, root, _ = reviewed
    r = client.put(f"/api/v1/task/{tid}/transcripts", json={"lines": [
        {"slice": NAMES[3], "text": "Last comes first."}, {"slice": NAMES[0], "text": "你好。", "language": "zh"}]})
    assert r.status_code == 200, r.text
    assert [(ln["slice"], ln["language"]) for ln in r.json()["lines"]] == [(NAMES[3], "EN"), (NAMES[0], "ZH")]
    rows = (root / "transcripts" / "spk.list").read_text(encoding="utf-8").splitlines()
    assert rows[0] == f"{(root / 'sliced' / NAMES[3]).resolve()}|spk|EN|Last comes first."


@pytest.mark.parametrize("body,expect", [
    ({"edits": [{"slice": "nope.wav", "text": "x"}]}, "edits[0] (nope.wav): the transcript has no line"),
    ({"edits": [{"slice": NAMES[0], "text": "a|b"}]}, "may not contain '|'"),
    ({"edits": [{"slice": NAMES[0], "text": " "}]}, "drop it instead"),
    ({"edits": [{"slice": NAMES[0], "language": "klingon"}]}, "unknown language"),
    ({"lines": [{"slice": "../spk.list", "text": "x"}]}, "no slice of that name in sliced/"),
    ({"lines": [{"slice": NAMES[0], "text": "x"}, {"slice": NAMES[0], "text": "y"}]}, "appears twice"),
    ({"lines": [], "edits": []}, "either `lines`"),
    ({"edits": [{"slice": n, "drop": True} for n in NAMES]}, "leave the transcript empty"),
])
def test_bad_edits_are_refused_by_line_and_change_nothing(client, reviewed, body, expect):
    tid, root, _ = reviewed
    before = (root / "transcripts" / "spk.list").read_bytes()
    r = client.put(f"/api/v1/task/{tid}/transcripts", json=body)
    assert r.status_code == 422 and expect in r.json()["detail"], r.text
    assert (root / "transcripts" / "spk.list").read_bytes() == before


def test_edit_is_refused_while_a_step_runs(client, app, reviewed):
    tid, _root, _ = reviewed
    lifecycle = app.state.service.lifecycle
    run = lifecycle.start_run(tid, "extract_text_features", {}, lambda rid: Path("/dev/null"))
    r = client.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [{"slice": NAMES[0], "drop": True}]})
    assert r.status_code == 409 and "running step 'extract_text_features'" in r.json()["detail"]
    lifecycle.finish_run(run.id, RunStatus.cancelled)
    r = client.put(f"/api/v1/task/{tid}/transcripts", json={"edits": [{"slice": NAMES[0], "drop": True}]})
    assert r.status_code == 200


def test_no_transcript_yet_or_no_task_is_404(client):
    tid = client.post("/api/v1/task/create", json={"task_name": "t"}).json()["task_id"]
    r = client.get(f"/api/v1/task/{tid}/transcripts")
    assert r.status_code == 404 and "asr_transcribe" in r.json()["detail"]
    assert client.put(f"/api/v1/task/{tid}/transcripts", json={"edits": []}).status_code == 404
    assert client.get("/api/v1/task/nope/transcripts").status_code == 404
