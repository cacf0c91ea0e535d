"""API_USAGE_GUIDE.md is tested: every curl example in it runs (curl itself, as a subprocess)
against a live server driving the engine's contract double, and its answer is compared with the
guide's: the status, every field the guide shows, and the values that do not vary from run to run
(statuses, step and file names, messages; ids and times are masked, `…` stands for anything).

Each example runs on the task whose state it needs (see _task_for): a trained one by default, a
fresh one for uploads and the first step, one paused for review for the pipeline examples."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio_fixtures import have_tools
from tests.conftest import ROOT
from tests.live_flow import TEXT, create, double_server, idle, pipeline_ended, reading, sliced_with_transcripts, trained

GUIDE = ROOT / "API_USAGE_GUIDE.md"
pytestmark = [pytest.mark.timeout(400),
              pytest.mark.skipif(not (have_tools() and shutil.which("curl")), reason="needs curl, espeak-ng, ffmpeg")]

# Values compared with the guide's (other fields: only that they are there). The installation's own
# answers (health, engine, doctor, options) differ from machine to machine: fields only.
CHECKED = {"status", "step", "cancelled", "folder", "filename", "kind", "name", "slice", "task_name",
           "current_step", "failed_step", "message", "detail", "stale_steps", "last_completed_step",
           "has_weights", "type", "latest", "source", "transcript"}
INSTALLATION = ("/health", "/engine", "/options")
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}|[0-9a-f]{6,}(?:-)?…")


# ---------- reading the guide ----------

@dataclass
class Example:
    heading: str
    commands: list[str]                                   # curl command lines, continuations joined
    answers: list[str] = field(default_factory=list)      # the fenced blocks after it


def examples(text: str) -> list[Example]:
    """Every ```bash block with a curl in it, with the blocks that follow it up to the next bash
    block or heading: the answers the guide shows."""
    out: list[Example] = []
    heading, current = "", None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading, current = line.lstrip("# ").strip(), None
        elif line.startswith("```"):
            lang = line[3:].strip()
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            body = "\n".join(lines[i + 1:j])
            if lang == "bash":
                cmds = [c for c in shell_lines(body) if c.startswith("curl ")]
                current = Example(heading, cmds) if cmds else None
                if current:
                    out.append(current)
            elif current is not None:
                current.answers.append(body)
            i = j
        i += 1
    return out


def shell_lines(body: str) -> list[str]:
    """The block's commands: continuation lines joined, and lines inside an open quote too."""
    out, cur = [], ""
    for line in body.replace("\\\n", " ").splitlines():
        cur = f"{cur}\n{line}" if cur else line.strip()
        try:
            shlex.split(cur, comments=True)
        except ValueError:  # a quote still open: the command goes on
            continue
        if cur:
            out.append(cur)
        cur = ""
    return out


def _mask_strings(text: str) -> tuple[str, list[str]]:
    strings: list[str] = []

    def keep(m: re.Match) -> str:
        strings.append(m.group(0))
        return f"\x00{len(strings) - 1}\x00"
    return re.sub(r'"(?:[^"\\]|\\.)*"', keep, text), strings


def guide_json(text: str) -> Any:
    """The guide's JSON, where `…` (outside strings) stands for fields or items left out."""
    masked, strings = _mask_strings(text)
    masked = masked.replace("…", "")
    for _ in range(5):
        masked = re.sub(r",(\s*[,}\]])", r"\1", masked)
        masked = re.sub(r"([\[{]\s*),", r"\1", masked)
    return json.loads(re.sub(r"\x00(\d+)\x00", lambda m: strings[int(m.group(1))], masked))


def kind(text: str) -> str:
    first = text.lstrip()[:1]
    if first in "{[":
        return "json"
    if text.startswith("id:"):
        return "sse"
    if text.startswith("HTTP/") or re.match(r"^[A-Za-z-]+: ", text):
        return "headers"
    return "text"


# ---------- comparing ----------

def _norm(s: str) -> str:
    return _ID.sub("<id>", s)


def same_text(guide: str, actual: str) -> bool:
    """`…` in the guide's string stands for anything; ids match any id."""
    parts = _norm(guide).split("…")
    rest = _norm(actual)
    if not rest.startswith(parts[0]):
        return False
    rest = rest[len(parts[0]):]
    for part in parts[1:-1]:
        k = rest.find(part)
        if k < 0:
            return False
        rest = rest[k + len(part):]
    return len(parts) == 1 and rest == "" or rest.endswith(parts[-1])


def differences(guide: Any, actual: Any, values: bool, where: str = "") -> list[str]:
    if isinstance(guide, dict):
        if not isinstance(actual, dict):
            return [f"{where or '.'}: the guide shows an object, the answer has {type(actual).__name__}"]
        out = []
        for k, g in guide.items():
            if k not in actual:
                out.append(f"{where}.{k}: in the guide, not in the answer")
            elif isinstance(g, (dict, list)):
                out += differences(g, actual[k], values, f"{where}.{k}")
            elif values and k in CHECKED and not _same_value(g, actual[k]):
                out.append(f"{where}.{k}: the guide says {g!r}, the answer {actual[k]!r}")
        return out
    if isinstance(guide, list):
        if not isinstance(actual, list):
            return [f"{where}: the guide shows a list, the answer has {type(actual).__name__}"]
        out = []
        for n, g in enumerate(x for x in guide if x not in ("...", "…")):
            if isinstance(g, (dict, list)):  # some item of the answer must be like it
                if not any(not differences(g, a, values) for a in actual):
                    best = min((differences(g, a, values, f"{where}[{n}]") for a in actual), key=len,
                               default=[f"{where}: the answer's list is empty"])
                    out += best
            elif values and not any(_same_value(g, a) for a in actual):
                out.append(f"{where}: {g!r} is not in the answer's {actual!r}"[:300])
        return out
    return []


def _same_value(g: Any, a: Any) -> bool:
    if isinstance(g, str) and isinstance(a, str):
        return same_text(g, a)
    return g == a


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields and "data" in fields:
            out.append((fields["event"], fields["data"]))
    return [(e, guide_json(d)) for e, d in out]


# ---------- running ----------

@dataclass
class Outcome:
    code: int
    exit: int
    headers: dict[str, str]
    body: str


def run_curl(argv: list[str], cwd: Path, stream: bool) -> Outcome:
    extra = ["-sS", "-w", "\n@@status %{http_code}"] + (["--max-time", "3"] if stream else [])
    p = subprocess.run([*argv, *extra], cwd=cwd, capture_output=True, text=True, timeout=60)
    out, _, status = p.stdout.rpartition("\n@@status ")
    headers: dict[str, str] = {}
    if out.startswith("HTTP/"):
        head, _, out = out.replace("\r\n", "\n").partition("\n\n")
        headers = {k.lower(): v for k, v in (ln.split(": ", 1) for ln in head.splitlines()[1:] if ": " in ln)}
        headers[":status-line"] = head.splitlines()[0]
    return Outcome(int(status or 0), p.returncode, headers, out)


class Guide:
    """The live state the examples need, and the variables they use ($B, $T, $RUN)."""

    def __init__(self, url: str, work: Path, wav: Path):
        self.http = httpx.Client(base_url=url, timeout=30)
        self.base = url + "/api/v1"
        self.work = work
        shutil.copy(wav, work / "reading.wav")
        self.wav = wav
        # the guide's task: trained, its last slice without a transcript (which the PUT example adds)
        self.trained = trained(self.http, wav, work / "tx-trained", missing=1)
        self.review = sliced_with_transcripts(self.http, wav, work / "tx-review", "review")
        self.fresh = create(self.http, "fresh")
        self.doomed = create(self.http, "doomed")
        self.resliced = ""
        self.run_id = ""

    def edits_vanished(self) -> str:
        """A task whose transcript was edited, then sliced again so that the edited slices are gone."""
        if not self.resliced:
            tid = sliced_with_transcripts(self.http, self.wav, self.work / "tx-resliced", "resliced")
            for step, params in (("asr_transcribe", {"method": "provided"}), ("slice_audio", {"min_length": 8000})):
                r = self.http.post(f"/api/v1/task/{tid}/step/{step}", json={"params": params})
                assert r.status_code == 202, r.text
                idle(self.http, tid)
                if step == "asr_transcribe":
                    lines = self.http.get(f"/api/v1/task/{tid}/transcripts").json()["lines"]
                    edits = [{"slice": ln["slice"], "text": "Edited."} for ln in (lines[0], lines[-1])]
                    assert self.http.put(f"/api/v1/task/{tid}/transcripts", json={"edits": edits}).status_code == 200
            self.resliced = tid
        return self.resliced

    def task_for(self, method: str, path: str) -> str:
        if method == "DELETE":
            return self.doomed
        if path == "/step/asr_transcribe":
            return self.edits_vanished()
        if path.startswith(("/files/upload", "/step/", "/runs/")):
            return self.fresh
        if path.startswith(("/run", "/pipeline", "/transcripts/approve")) and not path.startswith("/runs"):
            return self.review
        return self.trained

    def argv(self, command: str) -> tuple[list[str], str, str]:
        argv = shlex.split(command, comments=True)
        method = argv[argv.index("-X") + 1] if "-X" in argv else "GET"
        url = next(a for a in argv if "$B" in a)
        path = url.split("$T", 1)[1].split("?")[0] if "$T" in url else url.replace("$B", "").split("?")[0]
        tid = self.task_for(method, path)
        values = {"$B": self.base, "$T": tid, "$RUN": self.run_id}
        out = []
        for a in argv:
            for k, v in values.items():
                a = a.replace(k, v)
            out.append(a)
        for a in out:  # files the example uploads: the recording, or a transcript named after a slice
            if a.startswith(("file=@", "files=@")):
                name = a.split("@", 1)[1]
                if not (self.work / name).exists():
                    (self.work / name).write_text(TEXT + "\n", encoding="utf-8")
        return out, method, path

    def before(self, method: str, path: str) -> None:
        if path == "/transcripts/approve":
            pipeline_ended(self.http, self.review, ("awaiting_review",))
        elif path == "/pipeline":
            pipeline_ended(self.http, self.review)
        elif method in ("POST", "PUT") and path.startswith(("/step/", "/transcripts")):
            idle(self.http, self.task_for(method, path))

    def after(self, method: str, path: str, outcome: Outcome) -> None:
        if method == "POST" and path.startswith("/step/") and outcome.code == 202:
            self.run_id = json.loads(outcome.body)["run_id"]
            idle(self.http, self.fresh)
        elif method == "POST" and path == "/run":
            pipeline_ended(self.http, self.review, ("awaiting_review", "failed"))

    def stimulate(self) -> threading.Thread:
        """Something to report while a stream that skips the history (latest=true) is open."""
        def go() -> None:
            time.sleep(1.0)
            self.http.post(f"/api/v1/task/{self.fresh}/step/convert_audio", json={})
        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # text (a followed log, an event stream)
        return None


def check(example: Example, command: str, argv: list[str], path: str, out: Outcome) -> list[str]:
    where = f"[{example.heading}] {command[:110]}"
    problems = []
    stream = "-N" in argv
    if out.exit not in ((0, 28) if stream else (0,)):
        problems.append(f"curl exited with {out.exit} (HTTP {out.code}): {out.body[:200]}")
    if out.code >= 500 or out.code == 0:
        problems.append(f"HTTP {out.code}")
    writes_file = any(a in ("-o", "-O") or (a.startswith("-") and not a.startswith("--") and ("o" in a or "O" in a))
                      for a in argv[1:])
    blocks = [(kind(b), b) for b in example.answers]
    values = not path.startswith(INSTALLATION)
    body = "" if writes_file else out.body.strip()
    if "headers" in {k for k, _ in blocks} and out.headers:  # curl -i, or -D -
        b = next(b for k, b in blocks if k == "headers")
        for line in b.splitlines():
            if line.startswith("HTTP/"):
                if line.split()[1] != str(out.code):
                    problems.append(f"status {out.code}, the guide shows {line}")
            elif re.match(r"^[A-Za-z-]+: ", line) and line.split(":")[0].lower() not in out.headers:
                problems.append(f"header {line.split(':')[0]} missing")
        rest = [ln for ln in b.splitlines() if ln[:1] in "[{"]
        if rest and body:
            problems += differences(guide_json("\n".join(rest)), json.loads(body), values)
    elif not body:
        pass
    elif (answer := _json_or_none(body)) is not None:
        shown = [guide_json(b) for k, b in blocks if k == "json"]
        if shown:
            results = [differences(g, answer, values) for g in shown]
            best = min(results, key=len)
            if best:
                problems += best
            matched = shown[results.index(best)]
            is_error = isinstance(matched, dict) and "detail" in matched
            if not best and (out.code >= 400) != is_error:
                problems.append(f"HTTP {out.code}, the guide shows {'an error' if is_error else 'a success'}")
    elif body.startswith(("id:", ":")) and any(k == "sse" for k, _ in blocks):
        got = sse_events(body)
        if not got:
            problems.append("no event arrived")
        for ev, data in sse_events(next(b for k, b in blocks if k == "sse")):
            same = [d for e, d in got if e == ev]
            if got and not same:
                problems.append(f"no {ev} event in the stream")
            elif same and all(differences(data, d, False) for d in same):
                problems += differences(data, same[0], False, f"({ev} event)")
    return [f"{where}: {p}" for p in problems]


def test_guide_parser_reads_the_examples():
    found = examples(GUIDE.read_text(encoding="utf-8"))
    assert len(found) >= 25 and sum(len(e.commands) for e in found) >= 30
    for e in found:
        for b in e.answers:
            if kind(b) == "json":
                guide_json(b)  # every answer the guide shows parses
    assert guide_json('{"a":1,…,"b":[{"c":2},…],"d":{…}}') == {"a": 1, "b": [{"c": 2}], "d": {}}
    assert same_text("step x accepted (run 4a0eb121…)", "step x accepted (run 0f9b4c7b8e7d4c2e9a1b2c3d4e5f6a7b)")
    assert not same_text("converted 1 of 1", "converted reading.wav")


def test_every_curl_example_runs_as_the_guide_says(tmp_path):
    text = GUIDE.read_text(encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    with double_server(tmp_path / "server") as srv:
        g = Guide(srv.url, work, reading(tmp_path / "audio"))
        problems, ran = [], 0
        try:
            for ex in examples(text):
                for command in ex.commands:
                    argv, method, path = g.argv(command)
                    g.before(method, path)
                    stream = "-N" in argv
                    poke = g.stimulate() if stream and "latest=true" in command else None
                    out = run_curl(argv, work, stream)
                    if poke:
                        poke.join()
                    problems += check(ex, command, argv, path, out)
                    g.after(method, path, out)
                    ran += 1
        finally:
            g.http.close()
        assert ran >= 30
        assert not problems, "the guide and the service disagree:\n" + "\n".join(problems)
