"""Shared pieces of the benchmarks: start the real service on a loopback port in a temp dir, create a
task through the API, sample a process's RSS, print results. Standard library + psutil only."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
RESULTS = ROOT / "bench" / "results"


def add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                   help=f"sqlite (default: a temp file) or postgres ({PG_URL}; created if missing, "
                        "its public schema emptied first)")
    p.add_argument("--db-url", default=None, help="any other SQLAlchemy URL (PostgreSQL: its public schema is emptied first!)")
    p.add_argument("--log-level", default="info", help="server --log-level (default info, as start_service.sh)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra argument for training_service.py (repeatable), e.g. --server-arg=--access-log")
    p.add_argument("--json-out", default=None, help="also write the JSON summary to this file")
    p.add_argument("--service-root", default=str(ROOT),
                   help="service tree to run (default: this checkout); e.g. a copy at another revision")
    p.add_argument("--quiet-pct", type=float, default=25,
                   help="before measuring, wait until other processes use under this %% of one core "
                        "(default 25; 0 = do not wait)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def prepare_postgres(url: str) -> None:
    """Create the benchmark database if missing and empty its public schema (never `test`/`postgres`)."""
    import psycopg
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    dbname = dsn.rsplit("/", 1)[-1].split("?")[0]
    if dbname in ("test", "postgres"):
        raise SystemExit(f"refusing to drop tables in database {dbname!r}; use a dedicated one")
    admin = dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            c.execute(f'CREATE DATABASE "{dbname}"')
    with psycopg.connect(dsn, autocommit=True) as c:  # a dedicated database: start from an empty schema
        c.execute("DROP SCHEMA IF EXISTS public CASCADE")
        c.execute("CREATE SCHEMA public")


def db_url_from(args) -> str | None:
    if args.db_url:
        return args.db_url
    return PG_URL if args.db == "postgres" else None


class CommandServer:
    """An HTTP server command on a free loopback port, run in its own temp dir (its cwd), its output
    in server.out there; ready once GET `health_path` answers 200; stopped and the dir removed on
    exit. `argv` may hold "{port}", "{host}" and "{tmp}"."""

    health_path = "/api/v1/health"

    def __init__(self, argv=(), env: dict | None = None, health_path: str | None = None,
                 name: str = "server"):
        self.tmp = Path(tempfile.mkdtemp(prefix="gsv-bench-"))
        self.port = free_port()
        self.argv, self.env, self.name = list(argv), env, name
        if health_path:
            self.health_path = health_path
        self.proc: subprocess.Popen | None = None
        self._out = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def command(self) -> tuple[list[str], dict]:
        fmt = {"port": self.port, "host": HOST, "tmp": self.tmp}
        return [str(a).format(**fmt) for a in self.argv], dict(os.environ if self.env is None else self.env)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # killed: still stop the server
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        argv, env = self.command()
        self._out = open(self.tmp / "server.out", "wb")
        self.proc = subprocess.Popen(argv, cwd=self.tmp, env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request(self.port, "GET", self.health_path)[0] == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                self._out.close()
                out = (self.tmp / "server.out").read_text(errors="replace")[-3000:]
                self.__exit__(None, None, None)
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{out}")
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"{self.name} did not start within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._out:
            self._out.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def create_task(self, name: str = "bench") -> str:
        status, body = request(self.port, "POST", "/api/v1/task/create",
                               json.dumps({"task_name": name, "config": {"exp_name": name}}).encode(),
                               {"Content-Type": "application/json"})
        if status != 200:
            raise RuntimeError(f"create task: {status} {body[:300]!r}")
        return json.loads(body)["task_id"]


class Server(CommandServer):
    """`python training_service.py` in its own temp dir (task root, SQLite file, logs); stopped and
    removed on exit."""

    def __init__(self, db_url: str | None = None, log_level: str = "info", extra_args=(),
                 service_root: str | Path = ROOT, **env: str):
        super().__init__(name="training_service.py")
        self.root = Path(service_root).resolve()
        self.db_url, self.log_level, self.extra_args, self.extra_env = db_url, log_level, list(extra_args), env

    def command(self) -> tuple[list[str], dict]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GSV_")}
        env.update(GSV_TASK_ROOT=str(self.tmp / "api_tasks"), GSV_LOG_DIR=str(self.tmp / "logs"),
                   GSV_SQLITE_PATH=str(self.tmp / "service.db"), GSV_GPUS="", PYTHONPATH=str(self.root))
        if self.db_url:
            if self.db_url.startswith("postgresql"):
                prepare_postgres(self.db_url)
            env["GSV_DATABASE_URL"] = self.db_url
        env.update(self.extra_env)
        return [sys.executable, str(self.root / "training_service.py"), "--host", HOST, "--port", str(self.port),
                "--log-level", self.log_level, *self.extra_args], env


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None,
            timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def rss_bytes(pid: int) -> int:
    """Resident set of a process (VmRSS from /proc)."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int, children: bool = False) -> float:
    """user + system CPU time of a live process, from /proc/PID/stat; with children=True plus its
    live descendants' (uvicorn --workers N runs the app in child processes)."""
    pids = [pid]
    if children:
        import psutil
        pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
    total = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine, all cores (from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_other_pct: float, timeout: float = 900, window: float = 3.0) -> float:
    """Wait (up to timeout) until the rest of the machine is quiet: over `window` seconds, the busy
    CPU of all processes stays under max_other_pct of one core. The benchmark shares the cores with
    whatever else runs here; returns the last busy share seen."""
    deadline = time.monotonic() + timeout
    while True:
        b0 = machine_busy_seconds()
        time.sleep(window)
        pct = 100 * (machine_busy_seconds() - b0) / window
        if pct <= max_other_pct or time.monotonic() > deadline:
            return pct
        print(f"machine busy ({pct:.0f} % of a core by other processes); waiting", file=sys.stderr)


class RssSampler(threading.Thread):
    """Samples VmRSS of `pid` every `interval` seconds until stop(); keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.01):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.baseline = rss_bytes(pid)
        self.peak = self.baseline
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except OSError:
                return
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


def emit(summary: dict, rows: list[tuple[str, str, str]], json_out: str | None, name: str) -> None:
    """Print the JSON summary, then a table of (metric, value, target)."""
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(text + "\n")
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"\n{name}")
    print(f"{'metric':<{w0}}  {'value':>{w1}}  target")
    for metric, value, target in rows:
        print(f"{metric:<{w0}}  {value:>{w1}}  {target}")
