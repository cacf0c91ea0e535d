#!/usr/bin/env python3
"""Client for the GPT-SoVITS training service: a library (GPTSoVITSClient) and a command line.

    ./client_example.py --url http://localhost:8000 train --audio recordings/ --name "my voice" \\
        --exp-name spk --language zh --epochs-s2 8 --epochs-s1 15 --download out/
    ./client_example.py status TASK_ID | logs TASK_ID | cancel TASK_ID | list | steps | options

--url goes before or after the command. Run by an interpreter without httpx, the script restarts
itself with the service's .venv (made by start_service.sh) when there is one. Without an engine on
the service, `train` creates nothing and says what the service can do instead (exit status 2).

The library keeps the original client's method names, signatures and return shapes (dicts from
the JSON; errors raised as exceptions carrying the API's `detail`), and adds run_pipeline, events
(the Server-Sent Events stream, resumed with Last-Event-ID when it drops), upload_folder and
download_models. Ctrl-C during a run cancels the task on the server. Needs httpx; tqdm for bars.
A service with API keys: set GSV_API_KEY (or pass api_key=) and every request sends it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import quote

try:
    import httpx
except ImportError:  # an interpreter without the client's packages: use the service's .venv
    _VENV = Path(__file__).resolve().parent / ".venv"
    if __name__ == "__main__" and (_VENV / "bin" / "python").is_file() and \
            Path(sys.prefix).resolve() != _VENV.resolve():
        os.execv(str(_VENV / "bin" / "python"), [str(_VENV / "bin" / "python"), *sys.argv])
    if __name__ == "__main__":
        sys.exit("client_example.py needs httpx (and tqdm for progress bars): ./start_service.sh makes "
                 ".venv with them, or: pip install httpx tqdm")
    raise

try:
    from tqdm import tqdm
except ImportError:  # progress bars are optional
    tqdm = None

STEPS = ("convert_audio", "slice_audio", "denoise_audio", "asr_transcribe", "extract_text_features",
         "extract_audio_features", "extract_speaker_vectors", "extract_semantic_features",
         "train_sovits", "train_gpt", "test_inference")
FINISHED = frozenset({"completed", "failed", "cancelled"})
WAIT_ENDS = FINISHED | {"awaiting_review"}
AUDIO_EXTS = frozenset({".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".webm", ".3gp",
                        ".mp4", ".mkv", ".mov", ".avi", ".wma", ".aif", ".aiff"})
TRANSCRIPT_EXTS = frozenset({".list", ".txt", ".lab"})
UPLOAD_BATCH_FILES, UPLOAD_BATCH_BYTES = 32, 256 * 1024 * 1024
FIRST_POLL_S, POLL_BACKOFF = 0.2, 1.5  # waiting polls start at 0.2 s and slow to poll_interval
PROTOCOL_PREFIX = "@@gsv "  # the service's own progress lines in step logs (not for people)


class APIError(Exception):
    """An error answer of the service: `status_code` and the API's `detail`."""

    def __init__(self, status_code: int, detail: str):
        super().__init__(f"API error ({status_code}): {detail}")
        self.status_code, self.detail = status_code, detail


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    resp.read()
    try:
        detail = resp.json().get("detail", "unknown error")
    except ValueError:
        detail = resp.text[:500] or "no response body"
    raise APIError(resp.status_code, detail if isinstance(detail, str) else json.dumps(detail))


class Progress:
    """Shows events: one tqdm bar per running step (on a terminal), a line per state change."""

    def __init__(self, bars: Optional[bool] = None, show_logs: bool = False, out=sys.stderr):
        self.bars_on = tqdm is not None and (out.isatty() if bars is None else bars)
        self.show_logs, self.out = show_logs, out
        self._bars: Dict[str, Any] = {}

    def write(self, msg: str) -> None:
        if self._bars:
            tqdm.write(msg, file=self.out)
        else:
            print(msg, file=self.out, flush=True)

    def _bar(self, step: str):
        if step not in self._bars:
            used = {abs(b.pos) for b in self._bars.values()}
            free = next(i for i in range(len(used) + 1) if i not in used)
            self._bars[step] = tqdm(total=100, desc=step, position=free, file=self.out, leave=True,
                                    dynamic_ncols=True,
                                    bar_format="{desc:<26} {percentage:3.0f}%|{bar:24}| {elapsed}{postfix}")
        return self._bars[step]

    def __call__(self, ev: dict) -> None:
        kind, step = ev.get("type"), ev.get("step")
        if kind == "progress" and self.bars_on and step:
            bar = self._bar(step)
            bar.n = round(100 * float(ev.get("progress") or 0), 1)
            bar.set_postfix_str((ev.get("message") or "")[:70], refresh=True)
        elif kind == "state":
            status = ev["status"]
            if status in FINISHED and step in self._bars:
                bar = self._bars.pop(step)
                if status == "completed":
                    bar.n = 100
                bar.close()
            why = f": {ev['error_message']}" if ev.get("error_message") else ""
            self.write(f"[{time.strftime('%H:%M:%S')}] {step}: {status}{why}")
        elif kind == "log" and self.show_logs:
            for line in ev.get("lines", []):
                if not line.startswith(PROTOCOL_PREFIX):
                    self.write(f"  {step} | {line}")
        elif kind == "pipeline":
            why = f" ({ev['error_message']})" if ev.get("error_message") else ""
            self.write(f"[{time.strftime('%H:%M:%S')}] pipeline: {ev['status']}{why}")

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


class GPTSoVITSClient:
    """The service's API as methods. Errors raise APIError (an Exception with `detail`)."""

    def __init__(self, base_url: str = "http://localhost:8000", *, timeout: float = 120.0,
                 poll_interval: float = 5.0, verbose: bool = True, api_key: Optional[str] = None):
        self.base_url = base_url.rstrip("/")
        self.api_base = f"{self.base_url}/api/v1"
        self.poll_interval, self.verbose = poll_interval, verbose
        key = api_key or os.environ.get("GSV_API_KEY")  # a service with API keys (README: Security)
        self.http = httpx.Client(base_url=self.api_base, timeout=httpx.Timeout(timeout, connect=10),
                                 headers={"Authorization": f"Bearer {key}"} if key else None)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "GPTSoVITSClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, method: str, endpoint: str, **kwargs) -> Any:
        resp = self.http.request(method, endpoint, **kwargs)
        _raise_for(resp)
        return resp.json() if resp.content else {}

    # ---------- the original client's methods ----------
    def create_task(self, task_name: str, config: Dict[str, Any]) -> Dict[str, Any]:
        return self._request("POST", "/task/create", json={"task_name": task_name, "config": config})

    def get_task(self, task_id: str) -> Dict[str, Any]:
        return self._request("GET", f"/task/{task_id}")

    def list_tasks(self) -> list:
        """Every task, oldest first (the API pages; this follows X-Total-Count)."""
        out: list = []
        while True:
            resp = self.http.get("/tasks", params={"limit": 1000, "offset": len(out)})
            _raise_for(resp)
            page = resp.json()
            out += page
            if not page or len(out) >= int(resp.headers.get("x-total-count", len(out))):
                return out

    def upload_file(self, task_id: str, file_path: str) -> Dict[str, Any]:
        path = Path(file_path)
        if not path.is_file():
            raise FileNotFoundError(f"file not found: {path}")
        with path.open("rb") as f:
            return self._request("POST", f"/task/{task_id}/files/upload", files={"file": (path.name, f)})

    def download_file(self, task_id: str, filename: str, save_path: str = None) -> str:
        """Download by bare name (output.wav) or relative path (weights/gpt/x.ckpt); streamed."""
        save = Path(save_path) if save_path else Path(Path(filename).name)
        save.parent.mkdir(parents=True, exist_ok=True)
        part = save.with_name(save.name + ".part")
        try:
            with self.http.stream("GET", f"/task/{task_id}/files/download/{quote(filename, safe='/')}") as r:
                _raise_for(r)
                with part.open("wb") as f:
                    for chunk in r.iter_bytes(1024 * 1024):
                        f.write(chunk)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        part.replace(save)
        return str(save)

    def execute_step(self, task_id: str, step_name: str,
                     params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        return self._request("POST", f"/task/{task_id}/step/{step_name}", json={"params": params or {}})

    def cancel_task(self, task_id: str) -> Dict[str, Any]:
        return self._request("POST", f"/task/{task_id}/cancel")

    def delete_task(self, task_id: str) -> Dict[str, Any]:
        return self._request("DELETE", f"/task/{task_id}")

    def get_logs(self, task_id: str) -> str:
        return self._request("GET", f"/task/{task_id}/logs").get("logs", "")

    def wait_for_step_completion(self, task_id: str, timeout: int = 3600) -> Dict[str, Any]:
        """Poll the task until it is completed, failed, cancelled or awaiting_review: first after
        0.2 s, then less often, up to every poll_interval seconds."""
        deadline, last = time.monotonic() + timeout, None
        delay = self._first_poll()
        while time.monotonic() < deadline:
            try:
                task = self.get_task(task_id)
            except httpx.TransportError as e:  # the service restarting: keep waiting
                print(f"status query failed: {e}", file=sys.stderr)
                time.sleep(max(self.poll_interval, 2.0))
                continue
            key = (task["status"], task.get("current_step"), round(task.get("progress") or 0, 1))
            if key != last and self.verbose:
                print(f"[{time.strftime('%H:%M:%S')}] status: {key[0]} | step: {key[1]} | "
                      f"progress: {key[2]:.1f}%", flush=True)
            # a new status or step starts the polls over (a short step may follow); progress does not
            delay = self._first_poll() if last is None or key[:2] != last[:2] else self._next_poll(delay)
            last = key
            if task["status"] in WAIT_ENDS:
                return task
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        raise TimeoutError(f"step did not finish within {timeout} s")

    def _first_poll(self) -> float:
        return min(FIRST_POLL_S, self.poll_interval)

    def _next_poll(self, delay: float) -> float:
        return min(delay * POLL_BACKOFF, self.poll_interval)

    # ---------- additions ----------
    def events(self, task_id: str, last_event_id: Optional[int] = None,
               reconnect_tries: int = 30) -> Iterator[Dict[str, Any]]:
        """The task's events (dicts with id, type, run_id, ...) forever; a dropped stream is resumed
        after the last event seen (Last-Event-ID). Break out of the loop to stop."""
        failures = 0
        timeout = httpx.Timeout(10, read=60)  # the server pings every 15 s
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = str(last_event_id)
            try:
                with self.http.stream("GET", f"/task/{task_id}/events", headers=headers,
                                      timeout=timeout) as resp:
                    _raise_for(resp)
                    for ev in _parse_sse(resp.iter_lines()):
                        failures = 0
                        last_event_id = int(ev["id"])
                        yield ev
            except httpx.TransportError:
                pass
            failures += 1
            if failures > reconnect_tries:
                raise ConnectionError(f"event stream of task {task_id} dropped {failures} times in a row")
            time.sleep(min(0.2 * 2 ** failures, 5.0))

    def run_pipeline(self, task_id: str, from_step: str = None, to_step: str = None,
                     steps_params: Dict[str, Dict[str, Any]] = None,
                     stop_after_asr_for_review: bool = False, parallel: bool = None,
                     wait: bool = True, on_event: Callable[[dict], None] = None,
                     timeout: float = None) -> Dict[str, Any]:
        """Start steps from_step..to_step; with wait, follow events until the pipeline ends (or
        pauses for review) and return GET /pipeline, else return the 202 answer."""
        body: Dict[str, Any] = {"from_step": from_step, "to_step": to_step,
                                "steps_params": steps_params or {},
                                "stop_after_asr_for_review": stop_after_asr_for_review}
        if parallel is not None:
            body["parallel"] = parallel
        started = self._request("POST", f"/task/{task_id}/run", json=body)
        return self.wait_for_pipeline(task_id, started["pipeline_id"], on_event, timeout) if wait else started

    def approve_transcripts(self, task_id: str, wait: bool = True, on_event=None) -> Dict[str, Any]:
        started = self._request("POST", f"/task/{task_id}/transcripts/approve")
        return self.wait_for_pipeline(task_id, started["pipeline_id"], on_event) if wait else started

    def wait_for_pipeline(self, task_id: str, pipeline_id: str, on_event=None, timeout=None) -> Dict:
        runs: set = set()

        def ours(ev: dict) -> bool:
            if ev.get("pipeline_id") == pipeline_id:
                if ev.get("run_id"):
                    runs.add(ev["run_id"])
                return True
            return ev.get("run_id") in runs

        def ended() -> Optional[dict]:
            rec = self._request("GET", f"/task/{task_id}/pipeline")
            return rec if rec["pipeline_id"] != pipeline_id or rec["status"] != "running" else None

        self._follow(task_id, ours, lambda ev: ev["type"] == "pipeline" and ev["status"] != "running",
                     ended, on_event, timeout)
        return self._request("GET", f"/task/{task_id}/pipeline")

    def wait_for_run(self, task_id: str, run_id: str, on_event=None, timeout=None) -> Dict[str, Any]:
        """Follow events until the step run ends; returns the run (GET .../runs/{run_id})."""
        def get() -> dict:
            return self._request("GET", f"/task/{task_id}/runs/{run_id}")

        def ended() -> Optional[dict]:
            run = get()
            return run if run["status"] in FINISHED else None

        self._follow(task_id, lambda ev: ev.get("run_id") == run_id,
                     lambda ev: ev["type"] == "state" and ev["status"] in FINISHED, ended, on_event, timeout)
        return get()

    def _follow(self, task_id, ours, is_end, ended, on_event, timeout) -> None:
        """Feed our events to on_event until is_end(event); polls ended() if there are no events."""
        deadline = time.monotonic() + timeout if timeout else None
        try:
            for ev in self.events(task_id):
                if ours(ev):
                    if on_event:
                        on_event(ev)
                    if is_end(ev):
                        return
                if deadline and time.monotonic() > deadline:
                    raise TimeoutError(f"task {task_id} did not finish within {timeout} s")
        except APIError as e:  # 404 "Not Found" = no such route; a missing task says so in words
            if e.status_code != 404 or e.detail != "Not Found":
                raise
        delay = self._first_poll()
        while ended() is None:  # a service without /events: poll
            if deadline and time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} did not finish within {timeout} s")
            time.sleep(delay)
            delay = self._next_poll(delay)

    def run_steps(self, task_id: str, steps: List[str], steps_params: Dict[str, Dict] = None,
                  on_event=None) -> List[Dict[str, Any]]:
        """Run steps one after another, each to its end; stops at the first that does not complete."""
        done = []
        for step in steps:
            started = self.execute_step(task_id, step, (steps_params or {}).get(step))
            done.append(self.wait_for_run(task_id, started["run_id"], on_event))
            if done[-1]["status"] != "completed":
                break
        return done

    def upload_folder(self, task_id: str, folder: str, recursive: bool = False,
                      on_file: Callable[[Path], None] = None) -> List[Dict[str, Any]]:
        """Upload every audio and transcript file of a folder, several per request."""
        paths = _uploadable(Path(folder), recursive)
        if not paths:
            raise FileNotFoundError(f"no audio or transcript files in {folder}")
        return self.upload_files(task_id, paths, on_file)

    def upload_files(self, task_id: str, paths, on_file=None) -> List[Dict[str, Any]]:
        stored: List[Dict[str, Any]] = []
        batch: List[Path] = []
        for i, p in enumerate(paths):
            batch.append(Path(p))
            size = sum(b.stat().st_size for b in batch)
            if i == len(paths) - 1 or len(batch) >= UPLOAD_BATCH_FILES or size >= UPLOAD_BATCH_BYTES:
                handles = [b.open("rb") for b in batch]
                try:
                    files = [("files", (b.name, h)) for b, h in zip(batch, handles)]
                    stored += self._request("POST", f"/task/{task_id}/files/upload", files=files)["files"]
                finally:
                    for h in handles:
                        h.close()
                for b in batch:
                    if on_file:
                        on_file(b)
                batch = []
        return stored

    def download_models(self, task_id: str, save_dir: str, latest_only: bool = False) -> List[str]:
        """Download the trained SoVITS (.pth) and GPT (.ckpt) weights into save_dir."""
        try:
            models = self._request("GET", f"/task/{task_id}/models")
            paths = [m["path"] for kind in ("sovits", "gpt") for m in models[kind]
                     if not latest_only or m["name"] == models["latest"][kind]]
        except APIError as e:  # a service without /models: list the weights folder
            if e.status_code != 404 or e.detail != "Not Found":
                raise
            listed = self._request("GET", f"/task/{task_id}/files", params={"folder": "weights"})
            paths = [f["path"] for f in listed["folders"].get("weights", [])]
        return [self.download_file(task_id, p, str(Path(save_dir) / Path(p).name)) for p in paths]


def _parse_sse(lines: Iterator[str]) -> Iterator[Dict[str, Any]]:
    """Server-Sent Events lines -> event dicts (the JSON `data`, with id and type)."""
    data: List[str] = []
    ev_id = ev_type = None
    for line in lines:
        if line == "":
            if data and ev_id is not None:
                ev = json.loads("\n".join(data))
                ev.setdefault("type", ev_type)
                ev["id"] = int(ev_id)
                yield ev
            data, ev_id, ev_type = [], None, None
        elif line.startswith(":"):
            continue  # keep-alive comment
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "id":
                ev_id = value
            elif name == "event":
                ev_type = value


# ---------------------------------------------------------------- command line
def _uploadable(folder: Path, recursive: bool = True) -> List[Path]:
    """Audio and transcript files of a folder, hidden files and folders left out."""
    return sorted(f for f in (folder.rglob("*") if recursive else folder.iterdir())
                  if f.is_file() and f.suffix.lower() in AUDIO_EXTS | TRANSCRIPT_EXTS
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


def _audio_paths(items: List[str]) -> List[Path]:
    out: List[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += _uploadable(p)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    if not out:
        raise FileNotFoundError(f"no audio files in {', '.join(items)}")
    return out


def _steps_params(args) -> Dict[str, Dict[str, Any]]:
    """--params JSON plus --param STEP.KEY=VALUE (VALUE as JSON when it parses)."""
    params: Dict[str, Dict[str, Any]] = json.loads(args.params) if args.params else {}
    for item in args.param or []:
        key, _, raw = item.partition("=")
        step, _, name = key.partition(".")
        if not name or step not in STEPS:
            raise SystemExit(f"--param {item!r}: use STEP.KEY=VALUE with one of: {', '.join(STEPS)}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        params.setdefault(step, {})[name] = value
    if args.text:
        params.setdefault("test_inference", {})["target_text"] = args.text
    return params


def _run(client: GPTSoVITSClient, task_id: str, args, progress: Progress) -> bool:
    """Run chosen steps or the pipeline; True when everything completed."""
    params = _steps_params(args)
    if args.steps:
        runs = client.run_steps(task_id, args.steps.split(","), params, on_event=progress)
        ok = all(r["status"] == "completed" for r in runs) and len(runs) == len(args.steps.split(","))
        if not ok:
            print(f"step {runs[-1]['step']} {runs[-1]['status']}: {runs[-1].get('error_message')}",
                  file=sys.stderr)
        return ok
    rec = client.run_pipeline(task_id, args.from_step, args.to_step, params, args.review,
                              on_event=progress)
    if rec["status"] == "awaiting_review":
        print(f"transcripts ready for review: GET /api/v1/task/{task_id}/files?folder=transcripts; "
              f"then: {sys.argv[0]} approve {task_id}")
        return True
    if rec["status"] != "completed":
        print(f"pipeline {rec['status']} at {rec['failed_step']}: {rec['error_message']}", file=sys.stderr)
    return rec["status"] == "completed"


def _download(client: GPTSoVITSClient, task_id: str, folder: str) -> int:
    """Download the weights and output.wav; how many files. Nothing there: says so on stderr."""
    got = client.download_models(task_id, folder)
    try:
        got.append(client.download_file(task_id, "output.wav", str(Path(folder) / "output.wav")))
    except APIError as e:
        if e.status_code != 404:
            raise
    for path in got:
        print(f"downloaded {path}")
    if not got:
        print(f"nothing to download: task {task_id} has no trained weights and no output.wav yet (run "
              "train_sovits and train_gpt for weights, test_inference for output.wav)", file=sys.stderr)
    return len(got)


ENGINE_ASR = ("funasr", "faster_whisper")
INSTALL_COMMAND = "./start_service.sh --engine-only"
NO_ENGINE_EXIT = 2


def _engine_status(client: GPTSoVITSClient) -> Optional[Dict[str, Any]]:
    """GET /engine, or None from a service without that route."""
    try:
        return client._request("GET", "/engine")
    except APIError as e:
        if e.status_code == 404 and e.detail == "Not Found":
            return None
        raise


def _engine_needs(client: GPTSoVITSClient, args, paths: List[Path]) -> Dict[str, str]:
    """Every step that needs the engine, with this command's params: step -> why ("" = always)."""
    try:
        engine_steps = {s["name"] for s in client._request("GET", "/steps") if s["needs_engine"]}
    except APIError:
        engine_steps = set(STEPS[4:])
    params = _steps_params(args)
    has_transcripts = any(p.suffix.lower() in TRANSCRIPT_EXTS for p in paths)
    asr = params.get("asr_transcribe", {}).get("method", "auto")
    needs: Dict[str, str] = {s: "" for s in engine_steps}
    if asr in ENGINE_ASR or (asr == "auto" and not has_transcripts):
        needs["asr_transcribe"] = (f"method '{asr}'" if asr != "auto" else
                                   "method 'auto', which is funasr as your files hold no transcripts")
    if params.get("denoise_audio", {}).get("method") == "frcrn":
        needs["denoise_audio"] = "method 'frcrn'"
    return needs


def _planned(args) -> List[str]:
    """The steps this command runs, in order."""
    if args.steps:
        return args.steps.split(",")
    i0 = STEPS.index(args.from_step) if args.from_step else 0
    i1 = STEPS.index(args.to_step) if args.to_step else len(STEPS) - 1
    return [s for s in STEPS[i0:i1 + 1] if s != "denoise_audio" or args.denoise
            or "denoise_audio" in _steps_params(args) or s == args.from_step]


def _reachable(needs_all: Dict[str, str], args) -> Optional[str]:
    """The furthest step a pipeline reaches without the engine."""
    last = None
    for step in STEPS:
        if step == "denoise_audio" and not (args.denoise or step in _steps_params(args)):
            continue
        if step in needs_all:
            return last
        last = step
    return last


def _prog() -> str:
    return f"python3 {shlex.quote(sys.argv[0])}" if sys.argv[0].endswith(".py") else shlex.quote(sys.argv[0])


def _train_again(args, to_step: str, provided: bool) -> str:
    """The user's own train command, stopping at to_step (and with transcripts as given)."""
    drop = {"--to-step", "--from-step", "--steps", "--download", "--text", "--url"}
    out, skip = [], False
    for item in args.argv:
        if skip:
            skip = False
        elif item in drop:
            skip = True
        elif item != "--review" and item.split("=", 1)[0] not in drop:
            out.append(item)
    out += ["--to-step", to_step]
    if provided and "asr_transcribe.method=provided" not in out:
        out += ["--param", "asr_transcribe.method=provided"]
    return f"{_prog()} --url {shlex.quote(args.url)} {shlex.join(out)}"


def _no_engine_advice(args, needs: Dict[str, str], to_step: Optional[str], install: str) -> str:
    url, prog = shlex.quote(args.url), _prog()
    why = ", ".join(f"{s} ({w})" if w else s for s, w in needs.items())
    lines = [f"The service at {args.url} has no GPT-SoVITS engine, and this command needs it for: {why}.",
             "No task was created.", ""]
    if to_step:
        lines += ["Without the engine the service can prepare your data: convert and slice the recordings "
                  "(denoise them with --denoise), and take transcripts you write (asr_transcribe with "
                  "method 'provided'). To do that now:", "",
                  f"  {_train_again(args, to_step, to_step == 'asr_transcribe')}", ""]
        if to_step != "asr_transcribe":
            lines += ["then write one .txt per slice, named after it (the slices: GET /api/v1/task/TASK_ID/"
                      "files?folder=sliced), or a .list file, and:", "",
                      f"  {prog} --url {url} upload TASK_ID transcripts/",
                      f"  {prog} --url {url} run TASK_ID --to-step asr_transcribe "
                      "--param asr_transcribe.method=provided", ""]
    lines += ["To train a voice, install the engine where the service runs, then restart the service:", "",
              f"  {install}"]
    return "\n".join(lines)


def cmd_train(client: GPTSoVITSClient, args) -> int:
    paths = _audio_paths(args.audio)
    engine = _engine_status(client)
    if engine is not None and not engine.get("found"):
        needs_all = _engine_needs(client, args, paths)
        needs = {s: needs_all[s] for s in _planned(args) if s in needs_all}
        if needs:
            to_step = _reachable(needs_all, args)
            print(_no_engine_advice(args, needs, to_step, engine.get("install_command") or INSTALL_COMMAND),
                  file=sys.stderr)
            return NO_ENGINE_EXIT
    config = {k: v for k, v in (("exp_name", args.exp_name), ("language", args.language),
                                ("model_version", args.model_version), ("epochs_s2", args.epochs_s2),
                                ("epochs_s1", args.epochs_s1), ("batch_size", args.batch_size),
                                ("gpu_id", args.gpu_id), ("denoise", args.denoise or None)) if v is not None}
    task = client.create_task(args.name, config)
    task_id = args.task_id = task["task_id"]
    print(f"task {task_id} created")
    bar = tqdm(total=len(paths), desc="upload", unit="file", file=sys.stderr,
               disable=not sys.stderr.isatty()) if tqdm else None
    client.upload_files(task_id, paths, on_file=lambda p: bar.update(1) if bar else None)
    if bar:
        bar.close()
    print(f"uploaded {len(paths)} file(s)")
    return cmd_run(client, args)


def cmd_run(client: GPTSoVITSClient, args) -> int:
    progress = Progress(bars=False if args.no_progress else None, show_logs=args.verbose)
    try:
        ok = _run(client, args.task_id, args, progress)
    finally:
        progress.close()
    if ok and args.download:
        _download(client, args.task_id, args.download)
    print(f"task {args.task_id}: {client.get_task(args.task_id)['status']}")
    return 0 if ok else 1


def cmd_approve(client: GPTSoVITSClient, args) -> int:
    progress = Progress()
    try:
        rec = client.approve_transcripts(args.task_id, on_event=progress)
    finally:
        progress.close()
    print(f"pipeline {rec['status']}" + (f" at {rec['failed_step']}: {rec['error_message']}"
                                         if rec["failed_step"] else ""))
    return 0 if rec["status"] == "completed" else 1


def cmd_status(client: GPTSoVITSClient, args) -> int:
    task = client.get_task(args.task_id)
    print(f"{task['task_id']}  {task['task_name']}  {task['status']}  {task['progress']:.1f}%")
    for step, rec in task["steps"].items():
        extra = rec.get("error_message") or rec.get("message") or ""
        print(f"  {step:<26} {rec['status']:<10} {extra}")
    return 0


def cmd_logs(client: GPTSoVITSClient, args) -> int:
    params = {k: v for k, v in (("step", args.step), ("follow", args.follow or None),
                                ("tail", args.tail)) if v}
    with client.http.stream("GET", f"/task/{args.task_id}/logs", params=params,
                            timeout=httpx.Timeout(10, read=None)) as r:
        _raise_for(r)
        if args.follow:
            for text in r.iter_text():
                sys.stdout.write(text)
                sys.stdout.flush()
        else:
            r.read()  # a service that still sends its progress lines: leave them out here
            sys.stdout.write("".join(line for line in r.json()["logs"].splitlines(keepends=True)
                                     if not line.startswith(PROTOCOL_PREFIX)))
    return 0


def cmd_upload(client: GPTSoVITSClient, args) -> int:
    paths = _audio_paths(args.paths)
    stored = client.upload_files(args.task_id, paths)
    for f in stored:
        print(f"{f['path']}  {f['size']} bytes")
    return 0


def cmd_cancel(client: GPTSoVITSClient, args) -> int:
    print(client.cancel_task(args.task_id)["message"])
    return 0


def cmd_delete(client: GPTSoVITSClient, args) -> int:
    print(client.delete_task(args.task_id)["message"])
    return 0


def cmd_list(client: GPTSoVITSClient, args) -> int:
    for t in client.list_tasks():
        print(f"{t['task_id']}  {t['status']:<16} {t['progress']:5.1f}%  {t['task_name']}")
    return 0


def cmd_steps(client: GPTSoVITSClient, args) -> int:
    for s in client._request("GET", "/steps"):
        props = s["params_schema"].get("properties", {})
        defaults = ", ".join(f"{k}={v.get('default')!r}" for k, v in props.items())
        print(f"{s['order']:>2}. {s['name']:<26} {'engine ' if s['needs_engine'] else ''}{defaults}")
    return 0


def _range(o: Dict[str, Any]) -> str:
    return f"{o['default']:g} (web UI {o['webui_minimum']:g}-{o['webui_maximum']:g})"


def cmd_options(client: GPTSoVITSClient, args) -> int:
    opts = client._request("GET", "/options")
    if args.json:
        print(json.dumps(opts, indent=2, ensure_ascii=False))
        return 0
    eng = opts["engine"]
    print(f"engine: {eng['root']}" if eng["configured"] else
          f"engine: none; install it with {eng['install_command']} (the 4 audio steps run without it)")
    dev = opts["device"]
    gpus = ", ".join(f"{g['id']} {g['name']} {g['memory_gib']:g} GiB" for g in dev["gpus"])
    print(f"device: {dev['device']}{' (' + gpus + ')' if gpus else ''}; batch sizes: {dev['batch_size_basis']}")
    first = opts["versions"][0]
    limits = [first["sovits"][k] for k in ("batch_size", "epochs", "save_every_epoch", "text_low_lr_rate")
              if first["sovits"].get(k)] + [first["gpt"][k] for k in ("epochs", "save_every_epoch")]
    print("the service accepts: " + ", ".join(
        f"{o['field']} {'>' if o['exclusive_minimum'] else ''}{o['minimum']:g}-{o['maximum']:g}" for o in limits)
        + f"; a task without batch_size gets {first['sovits']['batch_size']['task_default']:g}")
    print("\nmodel versions (config model_version), with the web UI's defaults and ranges:")
    for v in opts["versions"]:
        pre = {True: "pretrained models installed", False: "pretrained models missing",
               None: "no engine"}[v["pretrained_installed"]]
        print(f"  {v['version']}{' (default)' if v['default'] else ''}: {pre}")
        so, gp = v["sovits"], v["gpt"]
        line = (f"    SoVITS  batch_size {_range(so['batch_size'])}  epochs_s2 {_range(so['epochs'])}  "
                f"save_every_epoch_s2 {_range(so['save_every_epoch'])}")
        if so.get("text_low_lr_rate"):
            line += f"  text_low_lr_rate {_range(so['text_low_lr_rate'])}"
        if so.get("lora_rank"):
            line += f"  lora_rank {so['lora_rank']['default']} of {so['lora_rank']['choices']}"
        print(line)
        print(f"    GPT     batch_size {_range(gp['batch_size'])}  epochs_s1 {_range(gp['epochs'])}  "
              f"save_every_epoch_s1 {_range(gp['save_every_epoch'])}")
        print(f"    languages: {' '.join(v['languages'])}")
    print("\nlanguages (config language): code, name, the engine's ASR for it")
    all_models = {m["method"]: [x["name"] for x in m["models"]] for m in opts["asr_methods"]}
    for lang in opts["languages"]:
        asr: Dict[str, List[str]] = {}
        for item in lang["asr"]:
            method, _, name = item.partition("/")
            asr.setdefault(method, []).append(name)
        text = "; ".join(f"{k} ({'any' if v == all_models.get(k) else ' '.join(v)})" for k, v in asr.items())
        print(f"  {lang['code']:<9} {lang['name']:<48} {text or 'none'}")
    for title, key in (("asr_transcribe", "asr_methods"), ("denoise_audio", "denoise_methods")):
        print(f"\n{title} methods (--param {title}.method=...):")
        for m in opts[key]:
            state = "available" if m["available"] else f"NOT AVAILABLE: {m['why_not']}"
            print(f"  {m['method']:<15} {'(default) ' if m['default'] else ''}{state}\n"
                  f"  {'':<15} {m['description']}")
            for mod in m["models"]:
                have = f"installed: {mod['path']}" if mod["installed"] else "not here (fetched at first use)"
                print(f"  {'':<15}   {mod['param']} {mod['name']}{' (default)' if mod['default'] else ''}"
                      f" [{' '.join(mod['languages'])}]: {have}")
    return 0


def cmd_download(client: GPTSoVITSClient, args) -> int:
    return 0 if _download(client, args.task_id, args.dir) else 1


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-step", choices=STEPS, metavar="STEP", help="first step (runs again even if completed)")
    p.add_argument("--to-step", choices=STEPS, metavar="STEP", help="last step (default: test_inference)")
    p.add_argument("--steps", help="comma list: run these steps one after another instead of the pipeline")
    p.add_argument("--params", help='JSON per step, e.g. \'{"slice_audio": {"threshold": -40}}\'')
    p.add_argument("--param", action="append", metavar="STEP.KEY=VALUE", help="one step parameter")
    p.add_argument("--text", help="text for test_inference to speak")
    p.add_argument("--review", action="store_true", help="pause after asr_transcribe for review")
    p.add_argument("--download", metavar="DIR", help="download weights and output.wav here at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="print the steps' log lines")


class _Commands:
    """Subcommands that accept --url after their name too (as well as before it)."""

    def __init__(self, ap: argparse.ArgumentParser):
        self.sub = ap.add_subparsers(dest="command", required=True)
        self.url = argparse.ArgumentParser(add_help=False)
        self.url.add_argument("--url", default=argparse.SUPPRESS, help="service URL")

    def add_parser(self, name: str, **kw) -> argparse.ArgumentParser:
        return self.sub.add_parser(name, parents=[self.url], **kw)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="GPT-SoVITS training service client")
    ap.add_argument("--url", default="http://localhost:8000", help="service URL (default %(default)s); "
                    "before or after the command")
    sub = _Commands(ap)
    p = sub.add_parser("train", help="create a task, upload audio, run the steps, download the results")
    p.add_argument("--audio", nargs="+", required=True, metavar="PATH",
                   help="audio files or folders (transcripts .list/.txt/.lab are uploaded too)")
    p.add_argument("--name", default="voice", help="task name")
    p.add_argument("--exp-name", help="experiment name (letters, digits, _ - .)")
    p.add_argument("--language", help="zh, en, ja, ko, yue, auto, ... (default zh)")
    p.add_argument("--model-version", choices=("v1", "v2", "v2Pro", "v2ProPlus"))
    p.add_argument("--epochs-s2", type=int)
    p.add_argument("--epochs-s1", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--gpu-id", help='"0", or "0-1" for two GPUs')
    p.add_argument("--denoise", action="store_true", help="include denoise_audio in the pipeline")
    _add_run_options(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("run", help="run steps of an existing task (resumes a failed pipeline)")
    p.add_argument("task_id")
    _add_run_options(p)
    p.set_defaults(func=cmd_run)
    for name, func, text in (("status", cmd_status, "a task and its steps"), ("cancel", cmd_cancel,
                             "cancel the running step or pipeline"), ("delete", cmd_delete, "delete a task"),
                             ("approve", cmd_approve, "approve transcripts and continue the pipeline")):
        p = sub.add_parser(name, help=text)
        p.add_argument("task_id")
        p.set_defaults(func=func)
    p = sub.add_parser("upload", help="upload audio or transcript files or folders to a task")
    p.add_argument("task_id")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_upload)
    p = sub.add_parser("logs", help="a step run's log")
    p.add_argument("task_id")
    p.add_argument("--step", choices=STEPS, metavar="STEP")
    p.add_argument("-n", "--tail", type=int, metavar="N", help="the last N lines only")
    p.add_argument("-f", "--follow", action="store_true")
    p.set_defaults(func=cmd_logs)
    p = sub.add_parser("download", help="download trained weights and output.wav")
    p.add_argument("task_id")
    p.add_argument("--dir", default=".")
    p.set_defaults(func=cmd_download)
    sub.add_parser("list", help="all tasks").set_defaults(func=cmd_list)
    sub.add_parser("steps", help="the steps and their parameters").set_defaults(func=cmd_steps)
    p = sub.add_parser("options", help="training settings per model version, languages, ASR and denoise "
                       "methods available on the service")
    p.add_argument("--json", action="store_true", help="the raw JSON")
    p.set_defaults(func=cmd_options)
    return ap


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _stop)  # a killed client cancels its run too
    args.task_id = getattr(args, "task_id", None)
    with GPTSoVITSClient(args.url, verbose=False) as client:
        try:
            return args.func(client, args)
        except KeyboardInterrupt:
            if args.command not in ("train", "run", "approve"):
                return 130
            return _interrupted(client, args.task_id)
        except (APIError, FileNotFoundError, ConnectionError, TimeoutError, httpx.HTTPError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1


def _interrupted(client: GPTSoVITSClient, task_id: Optional[str]) -> int:
    """Ctrl-C: cancel what runs on the server, wait briefly for it to stop, exit 130."""
    if task_id is None:
        return 130
    print(f"\ninterrupted: cancelling task {task_id}", file=sys.stderr)
    try:
        print(client.cancel_task(task_id)["message"], file=sys.stderr)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and client.get_task(task_id)["status"] in ("queued", "running"):
            time.sleep(0.3)
        print(f"task {task_id}: {client.get_task(task_id)['status']}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    except (APIError, httpx.HTTPError) as e:
        print(f"cancel failed: {e}", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
