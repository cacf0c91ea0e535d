#!/usr/bin/env python3
"""Benchmark (b): 200 keep-alive clients polling GET /api/v1/task/{id}, ours beside the original
service and a ceiling, in one run, under the same load and the same clients.

Servers, one after another (each started alone, measured, stopped; a quiet pause between):
  1. ours: training_service.py of this tree (default SQLite in a temp dir);
  2. the original service (lesliegaga/GPT-SoVITS 6130ac4, its training_service.py serving tasks
     from an in-memory dict) when `--original DIR` names a folder holding its training_service.py
     and training_steps.py; it hard-codes its base folder, which is created for the run and
     removed afterwards (only what the bench created); run at --log-level warning by default, so
     that like ours it writes no access-log line per request (info: as shipped);
  3. the ceiling: bench/ceiling_app.py, a minimal FastAPI app answering the same JSON body as ours
     from an in-memory dict, served by uvicorn with ours' settings.
For each, after a 2 s warm-up:
  a. paced: every client sends one request, waits for the answer, pauses 100 ms, and again, for 15 s
     (about 2,000 requests/s offered): p50, p99, max latency, errors;
  b. no pause: the same clients send back to back for 15 s: requests/s;
  c. ours only: no pause with If-None-Match: each client sends the ETag it last got (304s).
Clients: the paced part defaults to a raw-socket asyncio HTTP/1.1 client in this process (uvloop):
each connection sends on its own fixed 100 ms schedule, started at a random phase, as independent
pollers do. wrk cannot stagger its connections: all 200 send their first request in the same
instant, and that one burst (200 requests queued behind each other) alone fills the top 1 % of a
15 s run, so `--paced-client wrk` measures the start-up burst rather than the steady state. The
no-pause parts default to wrk (one thread, Lua `done()` prints the figures as JSON; the 304 part
adds a Lua `response()` that keeps the ETag and a `request()` that sends it), which costs less CPU
than any Python client. The client's CPU share is reported (CPU seconds / wall seconds; 100 % = one
core of the machine's N; client and server share those cores), and so is the CPU the rest of the
machine used meanwhile (other_cpu_pct: a disturbed run shows there).

Exit 0 when ours (no 304) reaches at least the original's no-pause requests/s and ours' paced p99
is no worse than the original's (+ --p99-tolerance, default 10 %), without errors; without the
original, by the fixed targets (paced p99 <= 8.5 ms, no pause >= 5,000/s); the ceiling is for
information only.

    .venv/bin/python bench/bench_poll.py --original /tmp/gsv-original    # ours, original, ceiling
    .venv/bin/python bench/bench_poll.py --seconds 5                     # quicker, no original
    .venv/bin/python bench/bench_poll.py --db postgres                   # PostgreSQL database `bench`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (HOST, CommandServer, Server, add_server_args, cpu_seconds, db_url_from,  # noqa: E402
                    machine_busy_seconds, percentile, request, wait_for_quiet)

TARGET_P99_MS = 8.5
TARGET_RPS = 5000
BENCH = Path(__file__).resolve().parent

WRK_LUA = r"""
local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "0")
if pause > 0 then
  function delay() return pause end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
if os.getenv("BENCH_ETAG") == "1" then
  -- A poller that keeps the last ETag it got and sends it as If-None-Match (304 while unchanged).
  n200, n304, nother = 0, 0, 0
  local req, etag = nil, nil
  function request() return req or wrk.format() end
  function response(status, headers, body)
    if status == 304 then n304 = n304 + 1 elseif status == 200 then n200 = n200 + 1 else nother = nother + 1 end
    local e = headers["etag"] or headers["ETag"]
    if e and e ~= etag then
      etag = e
      req = wrk.format(nil, nil, {["If-None-Match"] = e})
    end
  end
end
function done(summary, latency, requests)
  local c200, c304, cother = 0, 0, 0
  for _, t in ipairs(threads) do
    c200 = c200 + (t:get("n200") or 0); c304 = c304 + (t:get("n304") or 0); cother = cother + (t:get("nother") or 0)
  end
  local e = summary.errors
  io.write("BENCH_JSON " .. string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"n200":%d,"n304":%d,"nother":%d}',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout, c200, c304, cother) .. "\n")
end
"""


def run_wrk(url: str, clients: int, seconds: float, pause_ms: int, threads: int, etag: bool = False) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA)
        script = f.name
    try:
        env = dict(os.environ, BENCH_PAUSE_MS=str(pause_ms), BENCH_ETAG="1" if etag else "0")
        t0 = time.perf_counter()
        proc = subprocess.Popen(["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s",
                                 "--timeout", "10s", "-s", script, url],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        out = proc.stdout.read().decode(errors="replace")
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    finally:
        os.unlink(script)
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{out}")
    r = json.loads(line.split(" ", 1)[1])
    secs = r["duration_us"] / 1e6
    errors = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"] + r["err_timeout"]
    res = {"requests": r["requests"], "seconds": round(secs, 2), "rps": round(r["requests"] / secs, 1),
           "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000, "max_ms": r["max_us"] / 1000,
           "mean_ms": round(r["mean_us"] / 1000, 3), "errors": errors,
           "error_detail": {k[4:]: v for k, v in r.items() if k.startswith("err_")},
           "client_cpu_s": round(ru.ru_utime + ru.ru_stime, 2), "client_wall_s": round(wall, 2)}
    if etag:
        res["status_counts"] = {"200": r["n200"], "304": r["n304"], "other": r["nother"]}
        res["errors"] += r["nother"]
    return res


# ---------- raw asyncio client: HTTP/1.1 keep-alive sockets ----------
async def _client(port: int, req: bytes, period: float, phase: float, start: float, stop_at: float,
                  lat: list, errs: list, counts: dict | None) -> None:
    """One connection. period > 0: send at start + phase + k * period (a poller's fixed schedule;
    when an answer comes late the next request goes at once, with no catch-up burst).
    period == 0: back to back. counts (a dict) given: If-None-Match with the last ETag got; 304 is
    then an answer like 200, counted by status."""
    reader, writer = await asyncio.open_connection(HOST, port)
    clock = time.perf_counter
    nxt = start + phase
    etag, base = None, req[:-2]  # base: the request line and headers, without the blank line
    try:
        while True:
            if period:
                wait = nxt - clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            t0 = clock()
            if t0 >= stop_at:
                break
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for hline in head.split(b"\r\n"):
                low = hline[:15].lower()
                if low == b"content-length:":
                    length = int(hline[15:])
                elif counts is not None and low[:5] == b"etag:":
                    tag = hline[5:].strip()
                    if tag != etag:
                        etag = tag
                        req = base + b"If-None-Match: " + tag + b"\r\n\r\n"
            await reader.readexactly(length)
            lat.append(clock() - t0)
            code = head[9:12]
            if counts is not None:
                counts[code.decode()] = counts.get(code.decode(), 0) + 1
            if code != b"200" and not (counts is not None and code == b"304"):
                errs.append(code)
            if period:
                nxt = max(nxt + period, clock())
    except (OSError, asyncio.IncompleteReadError) as e:
        errs.append(repr(e))
    finally:
        writer.close()


def run_asyncio(port: int, path: str, clients: int, seconds: float, pause_ms: int, etag: bool = False) -> dict:
    """Clients start at random phases within one period (independent pollers are not in step)."""
    import random
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    req = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    lat: list[float] = []
    errs: list = []
    counts: dict | None = {} if etag else None
    period = pause_ms / 1000
    rnd = random.Random(1)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()

    async def go():
        start = time.perf_counter() + 0.05
        await asyncio.gather(*(_client(port, req, period, rnd.random() * period, start, start + seconds,
                                       lat, errs, counts) for _ in range(clients)))

    runner(go())
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ms = [x * 1000 for x in lat]
    res = {"client": "asyncio", "requests": len(ms), "seconds": round(seconds, 2),
           "rps": round(len(ms) / seconds, 1),
           "p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
           "max_ms": round(max(ms, default=float("nan")), 3),
           "mean_ms": round(sum(ms) / len(ms), 3) if ms else None, "errors": len(errs),
           "error_detail": [str(e) for e in errs[:5]],
           "client_cpu_s": round(ru.ru_utime - ru0.ru_utime + ru.ru_stime - ru0.ru_stime, 2),
           "client_wall_s": round(wall, 2)}
    if counts is not None:
        res["status_counts"] = counts
    return res


def measure(srv, path: str, args, client: str, pause_ms: int, seconds: float, etag: bool = False) -> dict:
    if args.quiet_pct:
        wait_for_quiet(args.quiet_pct)
    cpu0, busy0, t0 = cpu_seconds(srv.pid, True), machine_busy_seconds(), time.perf_counter()
    if client == "wrk":
        r = run_wrk(f"http://{HOST}:{srv.port}{path}", args.clients, seconds, pause_ms, args.wrk_threads, etag)
        r["client"] = "wrk"
    else:
        r = run_asyncio(srv.port, path, args.clients, seconds, pause_ms, etag)
    wall = time.perf_counter() - t0
    server = cpu_seconds(srv.pid, True) - cpu0
    others = machine_busy_seconds() - busy0 - server - r["client_cpu_s"]
    r["server_cpu_pct"] = round(100 * server / wall, 1)
    r["client_cpu_pct"] = round(100 * r["client_cpu_s"] / r["client_wall_s"], 1)
    r["other_cpu_pct"] = round(100 * max(0.0, others) / wall, 1)  # other processes: a noisy run shows here
    r["server_cpu_us_per_request"] = round(1e6 * server / max(1, r["requests"]), 1)
    return r


# ---------- the original service (lesliegaga/GPT-SoVITS 6130ac4, training_service.py) ----------
class OriginalServer(CommandServer):
    """The original training_service.py from `folder` (with its training_steps.py), run by its own
    __main__ (uvicorn defaults: uvloop + httptools when installed; access log on, written at --log-level
    info, filtered out at warning).
    Its TrainingService hard-codes base_dir = Path("/Users/..."), mkdirs base_dir/api_tasks (no
    parents) at import: the base folder is created here for the run and removed afterwards, as far
    as this run created it."""

    def __init__(self, folder: str | Path, python: str, log_level: str, base: str | None = None):
        self.folder = Path(folder).resolve()
        script = self.folder / "training_service.py"
        if not script.is_file() or not (self.folder / "training_steps.py").is_file():
            raise SystemExit(f"--original {folder}: needs training_service.py and training_steps.py "
                             "(see bench/README.md for how to get them)")
        if base is None:
            m = re.search(r"""base_dir\s*=\s*Path\(\s*["']([^"']+)["']""", script.read_text(errors="replace"))
            if not m:
                raise SystemExit(f"{script}: no hard-coded base_dir found; pass --original-base")
            base = m.group(1)
        self.base = Path(base)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GSV_")}
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(self.folder))
        super().__init__([python, str(script), "--host", "{host}", "--port", "{port}", "--log-level", log_level],
                         env, health_path="/", name="original training_service.py")
        self._created: Path | None = None  # the topmost folder this run created
        self._work_created = False
        self.task_ids: list[str] = []

    def __enter__(self):
        top = None
        p = self.base
        while not p.exists():
            top = p
            p = p.parent
        self.base.mkdir(parents=True, exist_ok=True)
        self._created = top
        self._work_created = not (self.base / "api_tasks").exists()
        try:
            return super().__enter__()
        except BaseException:
            self._cleanup()
            raise

    def create_task(self, name: str = "bench") -> str:
        tid = super().create_task(name)
        self.task_ids.append(tid)
        return tid

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._created is not None:
            shutil.rmtree(self._created, ignore_errors=True)
        elif self._work_created:
            shutil.rmtree(self.base / "api_tasks", ignore_errors=True)
        else:
            for tid in self.task_ids:
                shutil.rmtree(self.base / "api_tasks" / tid, ignore_errors=True)


def ceiling_server(tasks_file: Path, log_level: str) -> CommandServer:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSV_")}
    env["BENCH_CEILING_TASKS"] = str(tasks_file)
    return CommandServer([sys.executable, str(BENCH / "ceiling_app.py"), "--host", "{host}", "--port", "{port}",
                          "--log-level", log_level], env, name="bench/ceiling_app.py")


def bench_one(label: str, srv, args, task_id: str | None = None, etag_phase: bool = False) -> dict:
    """Create a task (unless given), take its body, warm up, then the paced, no-pause and (ours)
    304 phases. The server runs alone: started before, stopped after by the caller's `with`."""
    if task_id is None:
        task_id = srv.create_task()
    path = f"/api/v1/task/{task_id}"
    status, body = request(srv.port, "GET", path)
    if status != 200:
        raise RuntimeError(f"{label}: GET {path}: {status} {body[:300]!r}")
    print(f"[{label}] pid {srv.pid}, port {srv.port}, GET {path}: {len(body)} bytes", file=sys.stderr)
    measure(srv, path, args, args.unpaced_client, 0, 2)  # warm-up: imports, pool, caches
    res = {"task_id": task_id, "body_bytes": len(body), "_body": body}
    res["paced"] = measure(srv, path, args, args.paced_client, args.pause_ms, args.seconds)
    print(f"[{label}] paced: p50/p99/max {res['paced']['p50_ms']}/{res['paced']['p99_ms']}/"
          f"{res['paced']['max_ms']} ms, other CPU {res['paced']['other_cpu_pct']} %", file=sys.stderr)
    res["unpaced"] = None
    if not args.skip_unpaced:
        res["unpaced"] = measure(srv, path, args, args.unpaced_client, 0, args.seconds)
        print(f"[{label}] no pause: {res['unpaced']['rps']}/s, other CPU {res['unpaced']['other_cpu_pct']} %",
              file=sys.stderr)
    if etag_phase and not args.skip_unpaced and not args.skip_etag:
        res["unpaced_304"] = measure(srv, path, args, args.unpaced_client, 0, args.seconds, etag=True)
        print(f"[{label}] no pause, If-None-Match: {res['unpaced_304']['rps']}/s "
              f"{res['unpaced_304'].get('status_counts')}", file=sys.stderr)
    return res


def run_round(args, extra: list[str]) -> dict[str, dict]:
    """ours, then the original (if at hand), then the ceiling: each started alone and stopped."""
    results: dict[str, dict] = {}
    with Server(db_url_from(args), args.log_level, extra, args.service_root) as srv:
        results["ours"] = bench_one("ours", srv, args, etag_phase=True)
    ours_body = results["ours"].pop("_body")
    if args.original:
        time.sleep(args.gap_s)
        with OriginalServer(args.original, args.original_python, args.original_log_level,
                            args.original_base) as srv:
            results["original"] = bench_one("original", srv, args)
        results["original"].pop("_body")
        results["original"]["base_folder"] = str(srv.base)
    if not args.no_ceiling:
        time.sleep(args.gap_s)
        tid = results["ours"]["task_id"]
        with tempfile.TemporaryDirectory(prefix="gsv-bench-ceiling-") as d:
            tasks = Path(d) / "tasks.json"
            tasks.write_bytes(json.dumps({tid: json.loads(ours_body)}).encode())
            with ceiling_server(tasks, args.log_level) as srv:
                results["ceiling"] = bench_one("ceiling", srv, args, task_id=tid)
        results["ceiling"]["same_body_as_ours"] = results["ceiling"].pop("_body") == ours_body
    return results


def aggregate(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """One round: as measured. Several: per server and phase the median of each figure (errors
    summed, max latency the largest), every round's figures kept under "rounds"."""
    if len(rounds) == 1:
        return rounds[0]
    import statistics
    out: dict[str, dict] = {}
    for key in rounds[0]:
        runs = [r[key] for r in rounds]
        agg = {k: v for k, v in runs[0].items() if k not in ("paced", "unpaced", "unpaced_304")}
        for phase in ("paced", "unpaced", "unpaced_304"):
            if phase not in runs[0]:
                continue
            if runs[0][phase] is None:
                agg[phase] = None
                continue
            ph = [r[phase] for r in runs]
            m = {}
            for field, v in ph[0].items():
                vals = [x[field] for x in ph]
                if field == "errors":
                    m[field] = sum(vals)
                elif field == "max_ms":
                    m[field] = max(vals)
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    m[field] = round(statistics.median(vals), 3 if field.endswith("_ms") else 1)
                else:
                    m[field] = v
            m["rps_rounds"] = [x["rps"] for x in ph]
            m["p99_ms_rounds"] = [x["p99_ms"] for x in ph]
            agg[phase] = m
        agg["same_body_as_ours"] = all(r.get("same_body_as_ours", True) for r in runs)
        if key != "ceiling":
            agg.pop("same_body_as_ours")
        agg["rounds"] = runs
        out[key] = agg
    return out


def _ratio(a, b) -> str:
    return f"x{a / b:.2f}" if a and b else "-"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=15, help="length of each phase (default 15)")
    p.add_argument("--pause-ms", type=int, default=100, help="pause between a client's requests (paced part)")
    p.add_argument("--paced-client", choices=["asyncio", "wrk"], default="asyncio")
    p.add_argument("--unpaced-client", choices=["wrk", "asyncio"],
                   default="wrk" if shutil.which("wrk") else "asyncio")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--skip-unpaced", action="store_true")
    p.add_argument("--skip-etag", action="store_true", help="no If-None-Match (304) phase for ours")
    p.add_argument("--server-workers", type=int, default=1, help="training_service.py --workers")
    p.add_argument("--original", default=os.environ.get("GSV_BENCH_ORIGINAL"), metavar="DIR",
                   help="folder holding the original service's training_service.py and training_steps.py "
                        "(lesliegaga/GPT-SoVITS 6130ac4; default $GSV_BENCH_ORIGINAL); absent: not run")
    p.add_argument("--original-python", default=sys.executable,
                   help="interpreter for the original (needs fastapi, uvicorn, python-multipart; default this one)")
    p.add_argument("--original-log-level", default="warning",
                   help="the original's --log-level. Default warning: no access-log line per request, like ours "
                        "(whose access log is off by default); info = as shipped (its start_service.sh), where "
                        "its uvicorn logs every request")
    p.add_argument("--original-base", default=None,
                   help="its hard-coded base folder (default: read from its training_service.py)")
    p.add_argument("--no-ceiling", action="store_true", help="skip the minimal FastAPI app")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat ours, original, ceiling this many times; figures are the medians (default 1)")
    p.add_argument("--gap-s", type=float, default=3, help="quiet pause between servers (default 3 s)")
    p.add_argument("--p99-tolerance", type=float, default=10,
                   help="ours' paced p99 may exceed the original's by this %% (default 10)")
    add_server_args(p)
    args = p.parse_args(argv)

    extra = list(args.server_arg) + (["--workers", str(args.server_workers)] if args.server_workers != 1 else [])
    rounds: list[dict[str, dict]] = []
    for i in range(args.rounds):
        if i:
            time.sleep(args.gap_s)
        if args.rounds > 1:
            print(f"round {i + 1} of {args.rounds}", file=sys.stderr)
        rounds.append(run_round(args, extra))
    results = aggregate(rounds)

    ncpu = os.cpu_count()
    ours, orig, ceil = results["ours"], results.get("original"), results.get("ceiling")
    tol = args.p99_tolerance
    checks: dict[str, bool] = {"no errors": all(
        not (r[k] or {}).get("errors") for r in results.values() for k in ("paced", "unpaced", "unpaced_304") if k in r)}
    if orig:
        p99_limit = round(orig["paced"]["p99_ms"] * (1 + tol / 100), 3)
        checks[f"paced p99 <= original's x{1 + tol / 100:.2f} ({p99_limit} ms)"] = ours["paced"]["p99_ms"] <= p99_limit
        if ours["unpaced"] and orig["unpaced"]:
            checks[f"no pause >= original's ({orig['unpaced']['rps']}/s)"] = \
                ours["unpaced"]["rps"] >= orig["unpaced"]["rps"]
        basis = "original"
    else:
        checks[f"paced p99 <= {TARGET_P99_MS} ms"] = ours["paced"]["p99_ms"] <= TARGET_P99_MS
        if ours["unpaced"]:
            checks[f"no pause >= {TARGET_RPS}/s"] = ours["unpaced"]["rps"] >= TARGET_RPS
        basis = "fixed targets (no original at hand)"
    passed = all(checks.values())

    summary = {"benchmark": "poll", "db": "postgres" if (args.db == "postgres" or args.db_url) else "sqlite",
               "clients": args.clients, "pause_ms": args.pause_ms, "seconds": args.seconds, "rounds": args.rounds,
               "cpus": ncpu,
               "paced_client": args.paced_client, "unpaced_client": args.unpaced_client,
               "original": args.original, "original_log_level": args.original_log_level if orig else None,
               # kept for older readers: ours' phases at the top level
               "paced": ours["paced"], "unpaced": ours["unpaced"],
               "servers": results, "basis": basis, "checks": checks, "passed": passed}
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(text + "\n")

    def rps(r, k="unpaced"):
        return (r.get(k) or {}).get("rps") if r else None

    def p99(r):
        return r["paced"]["p99_ms"] if r else None

    def spread(ph: dict, field: str) -> str:
        """The figure; with several rounds the median and (lowest-highest)."""
        if not ph:
            return "-"
        each = ph.get(f"{field}_rounds")
        return f"{ph[field]} ({min(each)}-{max(each)})" if each else f"{ph[field]}"

    labels = {"ours": "ours (SQLite)" if summary["db"] == "sqlite" else "ours (PostgreSQL)",
              "original": "original (dict)", "ceiling": "ceiling (minimal FastAPI, dict)"}
    head = ["server", "no pause req/s", "paced p50 / p99 / max ms", "paced req/s", "errors",
            "vs original: req/s, p99", "vs ceiling: req/s, p99", "server us/req", "other CPU % (paced / no pause)"]
    table = []
    for key, r in results.items():
        u = r["unpaced"] or {}
        table.append([labels[key], spread(u, "rps"),
                      f"{r['paced']['p50_ms']} / {spread(r['paced'], 'p99_ms')} / {r['paced']['max_ms']}",
                      f"{r['paced']['rps']}", f"{r['paced']['errors'] + u.get('errors', 0)}",
                      f"{_ratio(rps(r), rps(orig))}, {_ratio(p99(r), p99(orig))}" if orig else "-",
                      f"{_ratio(rps(r), rps(ceil))}, {_ratio(p99(r), p99(ceil))}" if ceil else "-",
                      f"{u.get('server_cpu_us_per_request', '-')}",
                      f"{r['paced']['other_cpu_pct']} / {u.get('other_cpu_pct', '-')}"])
        if "unpaced_304" in r:
            e = r["unpaced_304"]
            table.append(["ours, If-None-Match (304)", spread(e, "rps"), "-", "-", f"{e['errors']}",
                          _ratio(e["rps"], rps(orig)) if orig else "-", _ratio(e["rps"], rps(ceil)) if ceil else "-",
                          f"{e['server_cpu_us_per_request']}", f"- / {e['other_cpu_pct']}"])
    widths = [max(len(str(row[i])) for row in table + [head]) for i in range(len(head))]
    print(f"\npoll benchmark: {args.clients} keep-alive clients, {args.seconds:g} s a phase, {ncpu} cores, "
          f"{args.rounds} round(s){' (medians)' if args.rounds > 1 else ''}; "
          f"paced ~{args.clients * 1000 // (args.pause_ms or 1)}/s offered ({args.paced_client}), "
          f"no pause ({args.unpaced_client})")
    for row in [head] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if orig:
        print(f"original: {args.original} (base folder {results['original']['base_folder']}, "
              f"log level {args.original_log_level}, body {orig['body_bytes']} bytes)")
    if ceil:
        print(f"ceiling: body {'identical to' if ceil['same_body_as_ours'] else 'DIFFERS from'} ours "
              f"({ceil['body_bytes']} bytes)")
    print(f"\ntargets ({basis}):")
    for name, ok in checks.items():
        print(f"  {'met   ' if ok else 'MISSED'}  {name}")
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
