"""What the store hands out: frozen, typed records of tasks, step runs, pipelines and events.

Rows never leave the store as dicts: a caller cannot mutate what another caller reads, statuses
are enums (str-valued, so they compare equal to their JSON spelling), and a task's config is a
parsed TaskConfig, so its defaults live in one place (task_config.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from gsv_service.states import ACTIVE, PipelineStatus, RunStatus, TaskStatus
from gsv_service.task_config import TaskConfig

log = logging.getLogger("gsv_service.records")


@dataclass(frozen=True, slots=True)
class StepState:
    """One step's record within a task, with what its latest run reported."""

    step: str
    status: RunStatus
    run_id: str | None = None
    updated_at: datetime | None = None
    progress: float | None = None
    message: str | None = None
    error_message: str | None = None
    reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: str
    seq: int
    name: str
    status: TaskStatus
    current_step: str | None
    progress: float
    error_message: str | None
    config: TaskConfig
    active_run_id: str | None
    active_pipeline_id: str | None
    created_at: datetime
    updated_at: datetime
    steps: Mapping[str, StepState] = field(default_factory=dict)  # in pipeline order

    @property
    def busy(self) -> bool:
        """A step or a pipeline owns the task."""
        return bool(self.active_run_id or self.active_pipeline_id)

    def step_status(self, step: str) -> RunStatus | None:
        state = self.steps.get(step)
        return state.status if state else None

    def statuses(self) -> dict[str, str]:
        return {name: state.status.value for name, state in self.steps.items()}


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    task_id: str
    step: str
    status: RunStatus
    params: dict[str, Any]
    progress: float
    message: str | None
    metrics: dict[str, Any] | None
    result: dict[str, Any] | None
    error_message: str | None
    reason: str | None
    log_path: str | None
    owner: str | None
    pgids: list[int] | None
    cancel_requested: bool
    pipeline_id: str | None
    resources: dict[str, Any] | None
    seq: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """What a pipeline runs (stored as JSON in pipelines.spec)."""

    steps: tuple[str, ...]
    steps_params: Mapping[str, dict[str, Any]]
    force: str | None = None          # a step that runs again even if completed (from_step)
    stop_after_asr_for_review: bool = False
    reviewed: bool = False
    parallel: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "steps_params": dict(self.steps_params), "force": self.force,
                "stop_after_asr_for_review": self.stop_after_asr_for_review, "reviewed": self.reviewed,
                "parallel": self.parallel}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PipelineSpec:
        return cls(steps=tuple(d["steps"]), steps_params=dict(d.get("steps_params") or {}),
                   force=d.get("force"), stop_after_asr_for_review=bool(d.get("stop_after_asr_for_review")),
                   reviewed=bool(d.get("reviewed")), parallel=bool(d.get("parallel", True)))


@dataclass(frozen=True, slots=True)
class PipelineRecord:
    id: str
    task_id: str
    status: PipelineStatus
    spec: PipelineSpec
    failed_step: str | None
    error_message: str | None
    reason: str | None
    owner: str | None
    cancel_requested: bool
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    task_id: str
    run_id: str | None
    type: str
    data: Mapping[str, Any]
    created_at: datetime


def parse_config(raw: Mapping[str, Any]) -> TaskConfig:
    """A stored config, parsed. One stored before a rule was tightened is kept as stored (with the
    defaults filled in) rather than hiding the task."""
    try:
        return TaskConfig.model_validate(raw)
    except ValidationError:
        log.warning("task config no longer validates; kept as stored: %s", dict(raw))
        return TaskConfig.model_construct(**dict(raw))
