"""Turn store rows into the JSON the API answers with (one place, shared by every router)."""

from __future__ import annotations

_RUN_PUBLIC = ("task_id", "step", "status", "params", "progress", "message", "metrics", "result",
               "error_message", "reason", "pipeline_id", "resources", "created_at", "started_at",
               "finished_at")


def task_view(t: dict) -> dict:
    return {
        "task_id": t["id"], "task_name": t["name"], "status": t["status"],
        "current_step": t["current_step"], "progress": t["progress"],
        "error_message": t["error_message"], "created_at": t["created_at"],
        "updated_at": t["updated_at"], "config": t["config"], "active_run_id": t["active_run_id"],
        "active_pipeline_id": t.get("active_pipeline_id"), "steps": t.get("steps", {}),
    }


def run_view(r: dict) -> dict:
    out = {"id": r["id"], "run_id": r["id"]}
    out.update({k: r.get(k) for k in _RUN_PUBLIC})
    return out
