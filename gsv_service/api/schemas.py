"""Request and response models of the HTTP API (documentation and validation)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from gsv_service.task_config import TaskConfig


# No control characters or line separators: the name shows up in logs, webhooks and the page.
TASK_NAME_RE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class TaskCreate(BaseModel):
    task_name: str = Field(..., min_length=1, max_length=200, description="a name for people")
    config: TaskConfig = Field(default_factory=TaskConfig)

    @field_validator("task_name")
    @classmethod
    def _task_name(cls, v: str) -> str:
        if not TASK_NAME_RE.fullmatch(v):
            raise ValueError("task_name may not contain control characters or line breaks")
        return v


class StepRecord(BaseModel):
    status: str
    run_id: str | None = None
    progress: float | None = Field(None, description="fraction 0-1 of the step's latest run")
    message: str | None = Field(None, description="while it runs, its latest progress; once it has ended, what "
                                "came of it (e.g. converted 5 of 7; failed: fake.wav (not audio))")
    error_message: str | None = None
    reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None


class TaskDisk(BaseModel):
    used_bytes: int = Field(..., description="sum of the file sizes in the task's folder, measured at most "
                            "GSV_DISK_USAGE_TTL_S seconds ago (afresh after each step run)")
    budget_bytes: int | None = Field(None, description="GSV_MAX_TASK_MB in bytes; null: no budget")


class TaskOut(BaseModel):
    task_id: str
    task_name: str
    status: str = Field(..., description="created | queued | running | completed | failed | cancelled | "
                                         "awaiting_review: follows the task's latest step run (completed: that "
                                         "step, not the training; see last_completed_step and has_weights)")
    current_step: str | None = None
    progress: float = Field(..., description="overall progress in percent, 0-100")
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime
    config: TaskConfig
    active_run_id: str | None = None
    active_pipeline_id: str | None = None
    queue_position: int | None = Field(None, description="while queued for a GPU: 1 = next to start")
    steps: dict[str, StepRecord]
    last_completed_step: str | None = Field(None, description="how far the task got: the last step, in "
                                            "pipeline order, whose record is completed")
    has_weights: bool = Field(False, description="train_sovits and train_gpt have completed: trained "
                              "weights are there (GET /task/{task_id}/models); `completed` alone can mean "
                              "only the audio steps ran")
    summary: str = Field("", description="one line for people: where the task stands, what its last step "
                         "achieved, whether it is trained")
    disk: TaskDisk | None = Field(None, description="GET /task/{task_id} only: the task's disk use")


class TaskCreated(TaskOut):
    webhook_secret: str | None = Field(None, description="with a config.webhook_url: the key each delivery's "
                                       "X-GSV-Signature is made with (HMAC-SHA256); shown only in this answer")


class StepRequest(BaseModel):
    params: dict[str, Any] | None = Field(default_factory=dict, description="the step's params; see "
                                          "GET /api/v1/steps for each step's schema and defaults")


class RunOut(BaseModel):
    id: str
    run_id: str
    task_id: str
    step: str
    status: str
    params: dict[str, Any]
    progress: float
    message: str | None = None
    metrics: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error_message: str | None = None
    reason: str | None = None
    pipeline_id: str | None = None
    resources: dict[str, Any] | None = None
    queue_position: int | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class StepStarted(BaseModel):
    message: str
    task_id: str
    step: str
    run_id: str
    status: str
    run: RunOut


class Message(BaseModel):
    message: str
    task_id: str | None = None


class LogsOut(BaseModel):
    logs: str
    run_id: str | None = None
    step: str | None = None
    status: str | None = None
    truncated: bool = False
