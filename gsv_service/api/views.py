"""Turn store records into the JSON the API answers with (one place, shared by every router)."""

from __future__ import annotations

from typing import Any

from gsv_service.records import PipelineRecord, RunRecord, StepState, TaskRecord
from gsv_service.states import RunStatus, TaskStatus

_WEIGHTS_KEPT = (RunStatus.completed, RunStatus.stale)  # stale weights are still on disk, from older inputs


def step_view(s: StepState) -> dict[str, Any]:
    return {"status": s.status.value, "run_id": s.run_id, "updated_at": s.updated_at, "progress": s.progress,
            "message": s.message, "error_message": s.error_message, "reason": s.reason,
            "started_at": s.started_at, "finished_at": s.finished_at}


def task_view(t: TaskRecord) -> dict[str, Any]:
    done = [name for name, s in t.steps.items() if s.status == RunStatus.completed]
    last = done[-1] if done else None  # steps come in pipeline order
    weights = all(t.step_status(s) in _WEIGHTS_KEPT for s in ("train_sovits", "train_gpt"))
    return {
        "task_id": t.id, "task_name": t.name, "status": t.status.value,
        "current_step": t.current_step, "progress": t.progress,
        "error_message": t.error_message, "created_at": t.created_at,
        "updated_at": t.updated_at, "config": t.config.model_dump(), "active_run_id": t.active_run_id,
        "active_pipeline_id": t.active_pipeline_id,
        "steps": {name: step_view(s) for name, s in t.steps.items()},
        "last_completed_step": last, "has_weights": weights,
        "summary": _summary(t, last, len(done), weights),
    }


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:limit] + ("…" if len(line) > limit else "")


def _summary(t: TaskRecord, last: str | None, n_done: int, weights: bool) -> str:
    """One line for people: where the task stands, what its last step achieved, and whether it
    has trained weights (so "completed" after convert_audio is not taken for a trained voice)."""
    status, current, steps = t.status, t.current_step, t.steps
    rec = steps.get(current) if current else None
    if status in (TaskStatus.queued, TaskStatus.running) and current:
        message = rec.message if rec else None
        head = f"{status.value} {current}" + (f": {_first_line(message)}" if message else "")
    elif status == TaskStatus.awaiting_review:
        head = ("waiting for a transcript review: check GET transcripts, then POST "
                "transcripts/approve")
    elif status in (TaskStatus.failed, TaskStatus.cancelled) and current:
        # in a pipeline the task's current step is the last one launched, not always the one that failed
        name = next((s for s, r in steps.items() if r.status.value == status.value), current)
        failed = steps.get(name, rec)
        error = _first_line(t.error_message or (failed.error_message if failed else None))
        head = f"{name} {status.value}: {error.removeprefix(f'step {name} failed: ')}"
    elif last:
        msg = _first_line(steps[last].message)
        head = f"{last} completed" + (f": {msg}" if msg else "")
    else:
        head = "nothing has run yet"
    if weights:
        return f"{head}; trained weights are ready (GET /api/v1/task/{t.id}/models)"
    return f"{head}; not trained yet ({n_done} of {len(steps)} steps completed, no weights)"


def run_view(r: RunRecord) -> dict[str, Any]:
    return {"id": r.id, "run_id": r.id, "task_id": r.task_id, "step": r.step, "status": r.status.value,
            "params": r.params, "progress": r.progress, "message": r.message, "metrics": r.metrics,
            "result": r.result, "error_message": r.error_message, "reason": r.reason,
            "pipeline_id": r.pipeline_id, "resources": r.resources, "created_at": r.created_at,
            "started_at": r.started_at, "finished_at": r.finished_at}


def pipeline_view(p: PipelineRecord) -> dict[str, Any]:
    return {"pipeline_id": p.id, "task_id": p.task_id, "status": p.status.value, "steps": list(p.spec.steps),
            "parallel": p.spec.parallel, "stop_after_asr_for_review": p.spec.stop_after_asr_for_review,
            "failed_step": p.failed_step, "error_message": p.error_message, "reason": p.reason,
            "created_at": p.created_at, "finished_at": p.finished_at}
