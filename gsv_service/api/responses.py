"""Response models of the JSON answers that schemas.py does not hold, the error model, and the
helpers that document each route's answers (an example per answer, the error codes it gives).

The handlers answer with orjson (deps.JSON), so these models document and are not applied on the
way out; tests/test_openapi.py validates live answers against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gsv_service.api.schemas import RunOut
from gsv_service.steps.registry import STEP_NAMES

StepNameField = Annotated[str, Field(json_schema_extra={"enum": list(STEP_NAMES)})]


# ---------- errors ----------

class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(..., description="where: body, query, path or header, then the field")
    msg: str
    type: str


class Error(BaseModel):
    """Every error answer: `detail` says what went wrong and what to do; some carry more fields."""

    model_config = ConfigDict(extra="allow")

    detail: str = Field(..., description="what went wrong and what to do about it")
    errors: list[ValidationIssue] | None = Field(None, description="422 from request validation: "
                                                 "each invalid field")
    run_first: str | None = Field(None, description="404/409: the step to run first")
    missing: str | None = Field(None, description="409: the input (artifact) that is missing or stale")
    active_run: str | None = Field(None, description="409: the run that keeps the task busy")
    step: str | None = Field(None, description="424: the step that needs the engine")
    steps: list[str] | None = Field(None, description="424 (pipeline): the steps that need the engine")
    to_step: str | None = Field(None, description="424 (pipeline): the furthest step reachable now")
    needs_engine_for: str | None = Field(None, description="424: what in the params needs the engine")
    install_command: str | None = Field(None, description="424: how to install the engine")


_ERROR_TEXT = {
    400: "Bad request: a path or folder that is not allowed, a body that is not UTF-8 JSON, or a Host "
         "header that is not trusted (GSV_TRUSTED_HOSTS); `detail` says which",
    401: "No API key, or one that is unknown or revoked (WWW-Authenticate: Bearer)",
    403: "The key's scope does not allow this (read keys only GET), or a cross-site request",
    404: "Unknown task, step, run or file, or nothing of that kind yet (`run_first` names the step to run)",
    409: "The task is busy (`active_run`), or an input is missing or stale (`run_first`, `missing`)",
    413: "The upload or JSON body is over its limit (GSV_MAX_UPLOAD_MB, GSV_MAX_JSON_BYTES, GSV_MAX_UPLOAD_FILES, "
         "the task's or the service's disk budget)",
    415: "A file type that is not accepted, or a body that is not JSON (or multipart for uploads)",
    416: "A Range that starts at or past the end of the file (Content-Range: bytes */SIZE)",
    422: "Invalid body, query or params: `detail` in one line, `errors` per field",
    424: "The GPT-SoVITS engine is not configured, or the installation fails a check this step needs",
    429: "The key is at its limit of tasks (GSV_MAX_TASKS_PER_KEY) or open streams (GSV_MAX_STREAMS_PER_KEY)",
    503: "The database does not answer",
}

_ERROR_EXAMPLE = {
    400: {"detail": "path '../../etc/passwd' must be relative to the task folder, without '..'"},
    401: {"detail": "an API key is required; send an API key as 'Authorization: Bearer <key>' or "
                    "'X-API-Key: <key>'"},
    403: {"detail": "key 'ci' has scope read: it may only read (GET); POST needs a key with scope run or admin"},
    404: {"detail": "task 'deb157ea-8354-4398-9e06-ec59117fc60c' not found; list tasks with GET /api/v1/tasks"},
    409: {"detail": "step 'slice_audio' needs 32 kHz mono WAV files, which this task does not have yet: run "
                    "step 'convert_audio' first", "missing": "converted_wav", "run_first": "convert_audio"},
    413: {"detail": "upload of 3 MiB is over the limit of 1 MiB (GSV_MAX_UPLOAD_MB)"},
    415: {"detail": "file 'notes.pdf': type .pdf is not accepted; upload audio or video (.wav, .mp3, …) or "
                    "transcripts (.lab, .list, .txt)"},
    416: {"detail": "range bytes=400000- starts past the end of the file (321964 bytes)"},
    422: {"detail": "query.limit: Input should be less than or equal to 1000",
          "errors": [{"loc": ["query", "limit"], "msg": "Input should be less than or equal to 1000",
                      "type": "less_than_equal"}]},
    429: {"detail": "key 'ci' has 100 tasks, the limit (GSV_MAX_TASKS_PER_KEY=100); delete tasks you no "
                    "longer need (DELETE /api/v1/task/{task_id}) and create again"},
    424: {"detail": "step 'extract_text_features' needs the GPT-SoVITS engine, and none is configured: install "
                    "it with ./start_service.sh --engine-only, or set GSV_ROOT to a GPT-SoVITS checkout and "
                    "GSV_PYTHON to its interpreter; then restart the service"},
}


NULL = "\u2400null"  # stands for null in examples until docs._restore_nulls puts it back


def keep_nulls(value: Any) -> Any:
    """An example with its nulls marked, so that they survive FastAPI's writing of the document."""
    if value is None:
        return NULL
    if isinstance(value, dict):
        return {k: keep_nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keep_nulls(v) for v in value]
    return value


def errors(*codes: int, **examples: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes, each an Error with an example; pass
    e409={...} to show this route's own example for a code."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        example = examples.get(f"e{code}", _ERROR_EXAMPLE[code])
        out[code] = {"model": Error, "description": _ERROR_TEXT[code],
                     "content": {"application/json": {"example": keep_nulls(example)}}}
    return out


def ok(example: Any, code: int = 200, description: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The success answer's example (its schema comes from the route's response_model)."""
    doc: dict[str, Any] = {"content": {"application/json": {"example": keep_nulls(example)}}}
    if description:
        doc["description"] = description
    return {code: doc}


# ---------- files ----------

class UploadedFile(BaseModel):
    filename: str = Field(..., description="the safe base name it was stored under")
    size: int
    folder: Literal["input_audio", "input_transcripts"]
    path: str = Field(..., description="relative to the task folder")
    replaced: bool = Field(..., description="a file of that name was there and is replaced")


class UploadOut(BaseModel):
    message: str
    task_id: str
    filename: str = Field(..., description="the first file (the original service's answer)")
    size: int
    folder: str
    path: str
    files: list[UploadedFile]


class FileEntry(BaseModel):
    name: str
    path: str = Field(..., description="relative to the task folder; download it with files/download/{path}")
    size: int
    modified: datetime


class FilesOut(BaseModel):
    task_id: str
    folders: dict[str, list[FileEntry]] = Field(..., description="folder name -> its files (sub-folders "
                                                "included), names starting with '.' left out")


# ---------- steps, runs, pipeline ----------

class CancelOut(BaseModel):
    message: str
    task_id: str
    cancelled: bool = Field(..., description="false when nothing was running")
    pipeline_id: str | None = Field(None, description="the pipeline being cancelled")
    run: RunOut | None = Field(None, description="the run being cancelled")


class ArtifactOut(BaseModel):
    name: str
    description: str
    produced_by: str | None = Field(None, description="the step that writes it; null: uploaded")


class StepOut(BaseModel):
    order: int
    name: StepNameField
    title: str
    description: str
    needs_engine: bool
    needs_gpu: bool
    engine_needs: list[str] = Field(..., description="what the preflight checks before it starts")
    inputs: list[ArtifactOut]
    optional_inputs: list[ArtifactOut]
    inputs_v2pro_only: list[ArtifactOut]
    outputs: list[ArtifactOut]
    params_schema: dict[str, Any] = Field(..., description="JSON Schema of the step's params")


class PipelineOut(BaseModel):
    pipeline_id: str
    task_id: str
    status: Literal["running", "awaiting_review", "completed", "failed", "cancelled"]
    steps: list[str] = Field(..., description="the steps it runs, in order")
    parallel: bool
    stop_after_asr_for_review: bool
    failed_step: str | None = None
    error_message: str | None = None
    reason: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class PipelineAnswer(PipelineOut):
    message: str


# ---------- service ----------

class StoreStatus(BaseModel):
    backend: str = Field(..., description="sqlite or postgresql")
    url: str = Field(..., description="the database URL, password hidden")
    ok: bool


class HealthEngine(BaseModel):
    found: bool
    root: str | None
    gpus: list[str]
    ffmpeg: bool


class HealthDisk(BaseModel):
    used_bytes: int = Field(..., description="sum of the file sizes under the task folder (GSV_TASK_ROOT), "
                            "measured at most GSV_DISK_USAGE_TTL_S seconds ago")
    budget_bytes: int | None = Field(..., description="GSV_MAX_TOTAL_MB in bytes; null: no budget")
    free_bytes: int | None = Field(..., description="free space on the task folder's file system")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    store: StoreStatus
    engine: HealthEngine
    disk: HealthDisk


class VersionSupport(BaseModel):
    supported: bool = Field(..., description="every pretrained model of the version is present")
    pretrained: dict[str, bool]


class EngineOut(BaseModel):
    pinned_commit: str
    model_versions: list[str]
    gpus: list[str]
    device: Literal["cuda", "cpu"]
    ffmpeg: str | None = Field(..., description="the ffmpeg the service uses, or null")
    found: bool
    root: str | None
    install_command: str | None = Field(None, description="without an engine: how to install it")
    hint: str | None = Field(None, description="without an engine: what runs and how to get the rest")
    python: str | None = Field(None, description="with an engine: its interpreter")
    scripts_missing: list[str] | None = None
    pretrained_models: dict[str, bool] | None = None
    versions: dict[str, VersionSupport] | None = None


# ---------- results ----------

class LossPoint(BaseModel):
    epoch: int | None
    step: int | None
    losses: dict[str, float]


class LossSeries(BaseModel):
    run_id: str
    status: str
    started_at: datetime | None
    points: list[LossPoint]


class MetricsOut(BaseModel):
    task_id: str
    sovits: list[LossSeries]
    gpt: list[LossSeries]


# ---------- transcripts and dataset ----------

class TranscriptLineOut(BaseModel):
    slice: str = Field(..., description="the slice's file name")
    wav_path: str
    duration: float | None
    speaker: str
    language: str = Field(..., description="upstream's code: ZH, EN, JA, KO, YUE")
    text: str


class TranscriptOut(BaseModel):
    task_id: str
    path: str = Field(..., description="the .list, relative to the task folder")
    count: int
    task_language: str | None
    lines: list[TranscriptLineOut]
    problems: list[str]


class TemplateLine(BaseModel):
    slice: str
    duration: float | None
    text: str = Field(..., description="empty: to fill in")


class TranscriptTemplate(BaseModel):
    task_id: str
    source: str = Field(..., description="sliced or denoised: where the slices are")
    count: int
    speaker: str | None
    language: str | None = Field(..., description="upstream's code for the task language; null for auto")
    lines: list[TemplateLine]


class TranscriptSaved(TranscriptOut):
    stale_steps: list[str] = Field(..., description="steps that used the old transcript and must run again")
    edits_kept: int | None = Field(None, description="edited slices kept by name, re-applied when "
                                   "asr_transcribe runs again")
    message: str


class DatasetTotals(BaseModel):
    slices: int
    seconds: float
    minutes: float
    speech_minutes: float
    min_seconds: float
    max_seconds: float
    mean_seconds: float
    with_transcript: int
    languages: dict[str, int]
    slices_with_warnings: int


class DatasetSlice(BaseModel):
    slice: str
    duration: float
    peak_db: float | None = None
    rms_db: float | None = None
    clipped_share: float | None = None
    silence_share: float | None = None
    speech_db: float | None = None
    noise_db: float | None = None
    error: str | None = Field(None, description="the slice could not be read")
    language: str | None
    text: str | None
    text_length: int | None
    warnings: list[str]


class DatasetOut(BaseModel):
    task_id: str
    source: str = Field(..., description="sliced or denoised: the audio training reads")
    transcript: str | None
    totals: DatasetTotals
    warnings: list[str]
    slices: list[DatasetSlice]


# ---------- events ----------

class EventData(BaseModel):
    """The JSON in each event's `data:` line."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(..., description="send it back as Last-Event-ID (or ?after=) to resume")
    type: Literal["state", "progress", "log", "pipeline", "webhook"]
    run_id: str | None
    created_at: datetime
    task_id: str | None = Field(None, description="GET /events only")
    step: str | None = None
    status: str | None = None
    progress: float | None = Field(None, description="progress: fraction 0-1")
    message: str | None = None
    metrics: dict[str, Any] | None = None
    lines: list[str] | None = Field(None, description="log: a batch of log lines")
    pipeline_id: str | None = None


def sse(example: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A Server-Sent Events answer: text/event-stream, each `data:` an EventData."""
    return {200: {"description": description, "content": {"text/event-stream": {
        "schema": {"type": "string", "description": "events: `id:`, `event:` (the type) and `data:` "
                                                   "(JSON, schema EventData)"},
        "itemSchema": {"$ref": "#/components/schemas/EventData"},
        "example": example}}}}
