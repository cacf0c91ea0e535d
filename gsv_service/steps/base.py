"""What a step is: its declaration (StepSpec), the artifacts steps pass to each other, and the
contract a running step sees (RunContext, StepFailed, Cancelled). Nothing here knows who runs the
step: the local runner on a thread of the API process, or a worker on another machine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from gsv_service.engine import Engine
from gsv_service.procs import Command, LogTail, Supervision, supervise
from gsv_service.settings import Settings
from gsv_service.states import Reason
from gsv_service.task_config import TaskConfig
from gsv_service.workspace import Workspace

PROGRESS_WRITE_INTERVAL_S = 0.5


class StepFailed(Exception):
    """A step ends in failure with a message a person can act on."""

    def __init__(self, message: str, reason: Reason = Reason.error, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.reason = reason
        self.result = result


class Cancelled(Exception):
    """The run was cancelled (or the service is stopping) while the step ran."""


class RunRecorder(Protocol):
    """Where a running step's progress and process groups are recorded (the store)."""

    def set_progress(self, run_id: str, fraction: float, message: str | None = None,
                     metrics: dict[str, Any] | None = None) -> None: ...

    def set_pgids(self, run_id: str, pgids: list[int]) -> None: ...


class LogFollowers(Protocol):
    """Who hears a run's new log lines as they come (the event log)."""

    def append_log_lines(self, task_id: str, run_id: str, step: str, lines: list[str]) -> None: ...


@dataclass
class RunContext:
    """What a running step sees: its run, task, files, engine, and the process launcher."""

    run_id: str
    task_id: str
    step: str
    config: TaskConfig
    workspace: Workspace
    engine: Engine | None
    settings: Settings
    log_path: Path
    store: RunRecorder
    cancel_event: threading.Event
    step_status: dict[str, str] = field(default_factory=dict)  # step -> status when the run was accepted
    leases: list[str] = field(default_factory=list)            # "gpu:0", "cpu:0", ... held while it runs
    events: LogFollowers | None = None
    _last_progress_write: float = 0.0
    _unwritten: tuple[float, str | None, dict[str, Any] | None] | None = None

    # ---- reporting ----
    def log(self, message: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"[service] {message}\n")

    def progress(self, fraction: float, message: str | None = None, metrics: dict[str, Any] | None = None,
                 force: bool = False) -> None:
        """Report progress; writes are throttled, the latest one is kept for flush_progress()."""
        now = time.monotonic()
        if not force and now - self._last_progress_write < PROGRESS_WRITE_INTERVAL_S:
            self._unwritten = (fraction, message, metrics)
            return
        self._last_progress_write = now
        self._unwritten = None
        self.store.set_progress(self.run_id, fraction, message, metrics)

    def flush_progress(self) -> None:
        if self._unwritten is not None:
            fraction, message, metrics = self._unwritten
            self.progress(fraction, message, metrics, force=True)

    @property
    def gpu_ids(self) -> list[str]:
        """GPUs leased to this run (empty on a CPU machine)."""
        return [r.split(":", 1)[1] for r in self.leases if r.startswith("gpu:")]

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    # ---- processes ----
    def run(self, commands: list[Command], on_line: Callable[[str], None] | None = None,
            poll: Callable[[], None] | None = None, poll_interval: float = 1.0) -> list[int]:
        """Run commands in parallel, each in its own process group; return their exit codes.

        Output goes to the run's log file only. `on_line` sees every new log line, `poll` is
        called every poll_interval seconds (e.g. to count output files). Raises Cancelled after
        killing every group if the run is cancelled meanwhile.
        """
        self.check_cancelled()
        tail = LogTail(self.log_path)  # from here: the command lines below reach followers too
        for cmd in commands:
            self.log(f"$ {' '.join(cmd.argv)}" + (f"  ({cmd.label})" if cmd.label else ""))
        exits = supervise(commands, Supervision(
            self.log_path, self.cancel_event, self.settings.kill_grace_s,
            on_started=lambda pgids: self.store.set_pgids(self.run_id, pgids), on_line=on_line,
            on_lines=self._publish_lines, poll=poll, poll_interval=poll_interval), tail)
        if exits is None:
            raise Cancelled()
        return exits

    def _publish_lines(self, lines: list[str]) -> None:
        if self.events is not None:
            self.events.append_log_lines(self.task_id, self.run_id, self.step, lines)


PRO_VERSIONS = ("v2Pro", "v2ProPlus")


class StepParams(BaseModel):
    """Base of every step's params model: unknown fields are an error (typos are caught)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Artifact:
    """A set of files one step writes and later steps read."""

    key: str
    description: str
    rel: Callable[[Workspace], Path]       # where it lives
    produced_by: str | None                # step name; None = uploaded by the user
    pattern: str = "*"                     # a folder counts as present when it holds a match

    def path(self, ws: Workspace) -> Path:
        return self.rel(ws)

    def present(self, ws: Workspace) -> bool:
        p = self.path(ws)
        if p.is_dir():
            return any(p.glob(self.pattern))
        return p.is_file() and p.stat().st_size > 0


def _exp(name: str) -> Callable[[Workspace], Path]:
    return lambda ws: ws.exp_dir / name


ARTIFACTS: dict[str, Artifact] = {a.key: a for a in (
    Artifact("input_audio", "uploaded recordings", lambda ws: ws.root / "input_audio", None),
    Artifact("converted_wav", "32 kHz mono WAV files", lambda ws: ws.root / "converted_wav",
             "convert_audio", "*.wav"),
    Artifact("sliced", "sliced utterances", lambda ws: ws.root / "sliced", "slice_audio", "*.wav"),
    Artifact("denoised", "denoised utterances", lambda ws: ws.root / "denoised", "denoise_audio", "*.wav"),
    Artifact("transcript", "the transcript list (.list)", lambda ws: ws.transcript_path, "asr_transcribe"),
    Artifact("text_features", "text features (2-name2text.txt)", _exp("2-name2text.txt"),
             "extract_text_features"),
    Artifact("hubert_features", "HuBERT features and 32 kHz audio (4-cnhubert/, 5-wav32k/)",
             _exp("4-cnhubert"), "extract_audio_features", "*.pt"),
    Artifact("speaker_vectors", "speaker vectors (7-sv_cn/)", _exp("7-sv_cn"), "extract_speaker_vectors",
             "*.pt"),
    Artifact("semantic_features", "semantic tokens (6-name2semantic.tsv)", _exp("6-name2semantic.tsv"),
             "extract_semantic_features"),
    Artifact("sovits_weights", "trained SoVITS weights", lambda ws: ws.root / "weights" / "sovits",
             "train_sovits", "*.pth"),
    Artifact("gpt_weights", "trained GPT weights", lambda ws: ws.root / "weights" / "gpt", "train_gpt",
             "*.ckpt"),
    Artifact("inference_audio", "synthesised audio", lambda ws: ws.root / "output", "test_inference",
             "*.wav"),
)}


@dataclass(frozen=True)
class EngineUse:
    """Why a step's params need the engine, and what does the job without it."""

    reason: str        # "method 'funasr'"
    alternative: str   # "use method 'spectral' (built in)"


P = TypeVar("P", bound=StepParams)


@dataclass(frozen=True)
class StepSpec(Generic[P]):
    """Everything the service needs to know about one step (P: its params model)."""

    name: str
    title: str
    description: str
    params: type[P]
    inputs: tuple[str, ...]                 # artifacts that must be present
    outputs: tuple[str, ...]
    execute: Callable[[RunContext, P], dict[str, Any]]
    optional_inputs: tuple[str, ...] = ()   # read when present (e.g. denoised over sliced)
    needs_engine: bool = False
    # For a step that needs the engine only with some params (ASR methods, FRCRN): why these params
    # need it, or None. Checked at submit (424 without an engine).
    engine_use: Callable[[P, Workspace], EngineUse | None] | None = None
    # Checked at submit of the step on its own, after its inputs: raises a ServiceError (409) when
    # these params would throw away work of the user's (asr_transcribe and transcript edits). It
    # gets the task's steps ({name: {"status": ...}}); the step checks again when it runs.
    precheck: Callable[[P, Workspace, Mapping[str, str]], None] | None = None  # statuses
    needs_gpu: bool = False
    # What an engine step reads besides its inputs, checked before it starts (gsv_service/preflight.py):
    # pretrained items by the model plan's roles (bert, cnhubert, sv, s2G, s2D, s1, g2pw, nltk,
    # langdetect; each only where the task's version and language need it), "ffmpeg", "disk".
    engine_needs: tuple[str, ...] = ()
    weight: float = 1.0                     # share of the task's overall progress
    pro_inputs: tuple[str, ...] = ()        # required for v2Pro/v2ProPlus only (speaker vectors)

    def required_inputs(self, cfg: TaskConfig) -> tuple[str, ...]:
        return self.inputs + (self.pro_inputs if cfg.model_version in PRO_VERSIONS else ())

    @property
    def all_inputs(self) -> tuple[str, ...]:
        return self.inputs + self.optional_inputs + self.pro_inputs

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "needs_engine": self.needs_engine, "needs_gpu": self.needs_gpu,
            "engine_needs": list(self.engine_needs),
            "inputs": [_artifact_doc(k) for k in self.inputs],
            "optional_inputs": [_artifact_doc(k) for k in self.optional_inputs],
            "inputs_v2pro_only": [_artifact_doc(k) for k in self.pro_inputs],
            "outputs": [_artifact_doc(k) for k in self.outputs],
            "params_schema": self.params.model_json_schema(),
        }


AnyStep = StepSpec[Any]  # a step whose params model does not matter to the caller


def _artifact_doc(key: str) -> dict[str, Any]:
    a = ARTIFACTS[key]
    return {"name": key, "description": a.description, "produced_by": a.produced_by}


def audio_source(ctx: RunContext) -> Path:
    """Utterances for ASR and features: denoised when denoise_audio is completed (not stale),
    else the slices."""
    return ctx.workspace.utterances_dir(ctx.step_status.get("denoise_audio") == "completed")
