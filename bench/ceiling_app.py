#!/usr/bin/env python3
"""The ceiling for bench_poll.py: a minimal FastAPI app answering GET /api/v1/task/{id} from an
in-memory dict, with the same JSON body as the real service, served by uvicorn exactly as
training_service.py serves ours (loop/http "auto" = uvloop + httptools, no access log, one worker).

    BENCH_CEILING_TASKS=tasks.json python bench/ceiling_app.py --host 127.0.0.1 --port 8000

tasks.json: {"<task_id>": <the task's JSON view>, ...}. No store, no dependencies, no ETag: what
one FastAPI worker on this machine can do at best for this answer.
"""

from __future__ import annotations

import argparse
import json
import os

import orjson
from fastapi import FastAPI, HTTPException, Response

app = FastAPI()
TASKS: dict[str, dict] = {}
if os.environ.get("BENCH_CEILING_TASKS"):
    with open(os.environ["BENCH_CEILING_TASKS"], "rb") as f:
        TASKS.update(json.load(f))


@app.get("/api/v1/health")
async def health():
    return {"status": "ok", "tasks": len(TASKS)}


@app.get("/api/v1/task/{task_id}")
async def get_task(task_id: str):
    view = TASKS.get(task_id)
    if view is None:
        raise HTTPException(404, "task not found")
    return Response(orjson.dumps(view), media_type="application/json")


def main(argv=None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = p.parse_args(argv)
    # The same settings as training_service.py (its --workers 1 and no --access-log defaults).
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level=args.log_level,
                timeout_graceful_shutdown=30, loop="auto", http="auto", access_log=False)


if __name__ == "__main__":
    main()
