#!/usr/bin/env python3
"""Benchmark (a): one large upload through the API while a status request is sent every 20 ms.

Starts the real service (training_service.py) on a loopback port in a temp dir, creates a task, writes
a file of random bytes to disk and POSTs it to /api/v1/task/{id}/files/upload as multipart field
`file`, streamed from disk with sendfile (the client never holds it in memory). Meanwhile it samples
the server's VmRSS every 10 ms and sends GET /api/v1/task/{id} every 20 ms on a keep-alive
connection. Reports throughput, peak RSS growth and the slowest status answer.

    .venv/bin/python bench/bench_upload.py                 # 1 GiB, SQLite
    .venv/bin/python bench/bench_upload.py --db postgres   # PostgreSQL database `bench`
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (HOST, RssSampler, Server, add_server_args, cpu_seconds, db_url_from, emit,  # noqa: E402
                    machine_busy_seconds, percentile, rss_bytes, wait_for_quiet)

MiB = 1024 * 1024
TARGET_RSS_MIB = 64
TARGET_STATUS_MS = 100


def make_file(path: Path, size: int) -> None:
    chunk = 8 * MiB
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def upload(port: int, task_id: str, path: Path, filename: str) -> tuple[int, bytes, int]:
    """POST the file as multipart/form-data, body streamed from disk by sendfile(2)."""
    boundary = uuid.uuid4().hex
    pre = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
           "Content-Type: audio/wav\r\n\r\n").encode()
    post = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size
    length = len(pre) + size + len(post)
    head = (f"POST /api/v1/task/{task_id}/files/upload HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n\r\n").encode()
    with socket.create_connection((HOST, port)) as s, open(path, "rb") as f:
        s.sendall(head + pre)
        sent = s.sendfile(f)
        s.sendall(post)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, resp.read(), length if sent == size else -1


class StatusPoller(threading.Thread):
    """GET /api/v1/task/{id} every `interval` s on one keep-alive connection; records latencies."""

    def __init__(self, port: int, task_id: str, interval: float = 0.02):
        super().__init__(daemon=True)
        self.port, self.path, self.interval = port, f"/api/v1/task/{task_id}", interval
        self.lat: list[float] = []
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        nxt = time.perf_counter()
        while not self._halt.is_set():
            t0 = time.perf_counter()
            try:
                conn.request("GET", self.path)
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
            self.lat.append(time.perf_counter() - t0)
            self.errors += 0 if ok else 1
            nxt += self.interval
            delay = nxt - time.perf_counter()
            if delay > 0:
                self._halt.wait(delay)
            else:
                nxt = time.perf_counter()  # late: send the next one at once, do not burst
        conn.close()

    def stop(self) -> None:
        self._halt.set()
        self.join()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=1024, help="upload size in MiB (default 1024)")
    p.add_argument("--file-dir", default=None, help="where to write the source file (default: temp dir)")
    add_server_args(p)
    args = p.parse_args(argv)
    size = args.size_mib * MiB
    limit_mb = str(args.size_mib + 64)

    src_dir = Path(tempfile.mkdtemp(prefix="gsv-bench-src-", dir=args.file_dir))
    src = src_dir / "bench.wav"
    try:
        t = time.perf_counter()
        make_file(src, size)
        print(f"wrote {args.size_mib} MiB of random bytes in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        with Server(db_url_from(args), args.log_level, args.server_arg, args.service_root,
                    GSV_MAX_UPLOAD_MB=limit_mb) as srv:
            task_id = srv.create_task()
            warm = StatusPoller(srv.port, task_id)  # warm up the status path (imports, pool)
            warm.start()
            time.sleep(0.5)
            warm.stop()
            time.sleep(0.2)
            if args.quiet_pct:
                wait_for_quiet(args.quiet_pct)
            busy0 = machine_busy_seconds()
            sampler = RssSampler(srv.pid, 0.01)
            poller = StatusPoller(srv.port, task_id, 0.02)
            cpu0 = cpu_seconds(srv.pid)
            sampler.start()
            poller.start()
            t0 = time.perf_counter()
            status, body, sent = upload(srv.port, task_id, src, "bench.wav")
            elapsed = time.perf_counter() - t0
            poller.stop()
            sampler.stop()
            cpu = cpu_seconds(srv.pid) - cpu0
            busy = machine_busy_seconds() - busy0
            rss_after = rss_bytes(srv.pid)
            stored = srv.tmp / "api_tasks"
            stored_size = sum(f.stat().st_size for f in stored.rglob("bench.wav"))
    finally:
        for f in src_dir.iterdir():
            f.unlink()
        src_dir.rmdir()

    ok = status == 200 and sent > 0 and stored_size == size
    growth = (sampler.peak - sampler.baseline) / MiB
    lat_ms = [x * 1000 for x in poller.lat]
    summary = {
        "benchmark": "upload", "db": "postgres" if (args.db == "postgres" or args.db_url) else "sqlite",
        "size_mib": args.size_mib, "http_status": status, "stored_bytes": stored_size, "ok": ok,
        "seconds": round(elapsed, 3), "throughput_mib_s": round(size / MiB / elapsed, 1),
        "server_cpu_s": round(cpu, 2), "machine_busy_cpu_s": round(busy, 2),
        "rss_baseline_mib": round(sampler.baseline / MiB, 1), "rss_peak_mib": round(sampler.peak / MiB, 1),
        "rss_growth_mib": round(growth, 1), "rss_after_mib": round(rss_after / MiB, 1),
        "rss_samples": sampler.samples,
        "status_requests": len(lat_ms), "status_errors": poller.errors,
        "status_p50_ms": round(percentile(lat_ms, 50), 2), "status_p99_ms": round(percentile(lat_ms, 99), 2),
        "status_max_ms": round(max(lat_ms, default=float("nan")), 2),
    }
    if not ok:
        summary["response"] = body[:500].decode(errors="replace")
    emit(summary, [
        ("upload", f"{args.size_mib} MiB -> HTTP {status}", "200, stored whole"),
        ("throughput", f"{summary['throughput_mib_s']} MiB/s", ""),
        ("server RSS growth (peak)", f"{summary['rss_growth_mib']} MiB", f"< {TARGET_RSS_MIB} MiB"),
        ("status requests / errors", f"{len(lat_ms)} / {poller.errors}", "0 errors"),
        ("status p50 / p99", f"{summary['status_p50_ms']} / {summary['status_p99_ms']} ms", ""),
        ("status slowest", f"{summary['status_max_ms']} ms", f"< {TARGET_STATUS_MS} ms"),
    ], args.json_out, "upload benchmark")
    passed = ok and growth < TARGET_RSS_MIB and summary["status_max_ms"] < TARGET_STATUS_MS and not poller.errors
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
