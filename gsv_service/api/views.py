"""Turn store rows into the JSON the API answers with (one place, shared by every router)."""

from __future__ import annotations

from typing import Any

_RUN_PUBLIC = ("task_id", "step", "status", "params", "progress", "message", "metrics", "result",
               "error_message", "reason", "pipeline_id", "resources", "created_at", "started_at",
               "finished_at")


_WEIGHTS_KEPT = ("completed", "stale")  # stale weights are still on disk, from older inputs


def task_view(t: dict[str, Any]) -> dict[str, Any]:
    steps = t.get("steps", {})
    done = [s for s, rec in steps.items() if rec["status"] == "completed"]
    last = done[-1] if done else None  # steps come in pipeline order
    weights = all(steps.get(s, {}).get("status") in _WEIGHTS_KEPT for s in ("train_sovits", "train_gpt"))
    return {
        "task_id": t["id"], "task_name": t["name"], "status": t["status"],
        "current_step": t["current_step"], "progress": t["progress"],
        "error_message": t["error_message"], "created_at": t["created_at"],
        "updated_at": t["updated_at"], "config": t["config"], "active_run_id": t["active_run_id"],
        "active_pipeline_id": t.get("active_pipeline_id"), "steps": steps,
        "last_completed_step": last, "has_weights": weights,
        "summary": _summary(t, steps, last, len(done), weights),
    }


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:limit] + ("…" if len(line) > limit else "")


def _summary(t: dict[str, Any], steps: dict[str, Any], last: str | None, n_done: int, weights: bool) -> str:
    """One line for people: where the task stands, what its last step achieved, and whether it
    has trained weights (so "completed" after convert_audio is not taken for a trained voice)."""
    status, current = t["status"], t["current_step"]
    rec = steps.get(current) or {}
    if status in ("queued", "running") and current:
        head = f"{status} {current}" + (f": {_first_line(rec.get('message'))}" if rec.get("message") else "")
    elif status == "awaiting_review":
        head = ("waiting for a transcript review: check GET transcripts, then POST "
                "transcripts/approve")
    elif status in ("failed", "cancelled") and current:
        # in a pipeline the task's current step is the last one launched, not always the one that failed
        name = next((s for s, r in steps.items() if r["status"] == status), current)
        error = _first_line(t["error_message"] or steps.get(name, rec).get("error_message"))
        head = f"{name} {status}: {error.removeprefix(f'step {name} failed: ')}"
    elif last:
        msg = _first_line(steps[last].get("message"))
        head = f"{last} completed" + (f": {msg}" if msg else "")
    else:
        head = "nothing has run yet"
    if weights:
        return f"{head}; trained weights are ready (GET /api/v1/task/{t['id']}/models)"
    return f"{head}; not trained yet ({n_done} of {len(steps)} steps completed, no weights)"


def run_view(r: dict[str, Any]) -> dict[str, Any]:
    out = {"id": r["id"], "run_id": r["id"]}
    out.update({k: r.get(k) for k in _RUN_PUBLIC})
    return out
