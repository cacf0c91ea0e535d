"""Status enums and the one table of allowed state changes for step runs."""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """Status of one step run, and of a step's record within a task."""

    pending = "pending"      # step record only: never run
    queued = "queued"        # accepted, waiting for a slot
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    stale = "stale"          # step record only: an input it consumed was produced again


class TaskStatus(str, Enum):
    created = "created"
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    awaiting_review = "awaiting_review"  # a pipeline paused after ASR for the user to check transcripts


class PipelineStatus(str, Enum):
    running = "running"
    awaiting_review = "awaiting_review"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


ACTIVE = frozenset({RunStatus.queued, RunStatus.running})
ACTIVE_VALUES = frozenset(s.value for s in ACTIVE)  # for SQL IN (...) clauses
FINISHED = frozenset({RunStatus.completed, RunStatus.failed, RunStatus.cancelled})

# run status -> statuses it may move to. Finished runs never change again.
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.queued: frozenset({RunStatus.running, RunStatus.failed, RunStatus.cancelled}),
    RunStatus.running: FINISHED,
    RunStatus.completed: frozenset(),
    RunStatus.failed: frozenset(),
    RunStatus.cancelled: frozenset(),
}


def sources_of(new: RunStatus) -> list[str]:
    """The statuses a run may be in for a move to `new` to be allowed."""
    return [old.value for old, targets in RUN_TRANSITIONS.items() if new in targets]


def task_status_for_run(status: RunStatus) -> TaskStatus:
    """The task's status follows its latest step run (what the original clients poll for)."""
    return TaskStatus(status.value)


class Reason(str, Enum):
    """Machine-readable reasons stored with failed or cancelled runs."""

    interrupted = "interrupted"       # the service process died while the run was active
    cancelled_by_user = "cancelled_by_user"
    exit_code = "exit_code"
    outputs_missing = "outputs_missing"
    error = "error"
