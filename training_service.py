#!/usr/bin/env python3
"""Start the GPT-SoVITS training service: `python training_service.py --host 127.0.0.1 --port 8000`.

Another address than loopback needs an API key first (`python -m gsv_service keys create ...`),
or --insecure to start open anyway.

Configuration comes from environment variables or .env (see README: GSV_ROOT, GSV_PYTHON, ...).
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="GPT-SoVITS training service (Swagger UI at /docs)")
    p.add_argument("-H", "--host", default="127.0.0.1",
                   help="bind address (default 127.0.0.1; another one needs an API key or --insecure)")
    p.add_argument("-p", "--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--access-log", action="store_true",
                   help="log every request (off by default: a line per polled GET costs CPU)")
    p.add_argument("--insecure", action="store_true",
                   help="start on a non-loopback address even though no API key exists (anyone who "
                        "reaches it can use the service)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    import uvicorn

    from gsv_service.auth.bind import EXIT_REFUSED, refusal
    from gsv_service.settings import Settings

    args = parse_args(argv)
    why = refusal(args.host, args.insecure, Settings())
    if why:
        print(why, file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    os.environ["GSV_BIND_HOST"] = args.host  # the app's default trusted hosts include it (workers inherit)
    # loop/http "auto" pick uvloop and httptools (uvicorn[standard]), else the pure-Python ones.
    uvicorn.run("gsv_service.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, timeout_graceful_shutdown=30,
                loop="auto", http="auto", access_log=args.access_log)


if __name__ == "__main__":
    main()
