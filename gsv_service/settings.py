"""Service configuration: environment variables and an optional .env file (pydantic-settings)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Every knob of the service. Names are the environment variables users set."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    engine_root: Path | None = Field(None, validation_alias=_env("GSV_ROOT"),
                                     description="GPT-SoVITS checkout (RVC-Boss/GPT-SoVITS @ 48b1a0169a28)")
    engine_python: str | None = Field(None, validation_alias=_env("GSV_PYTHON"),
                                      description="interpreter of the engine's environment")
    task_root: Path = Field(Path("api_tasks"), validation_alias=_env("GSV_TASK_ROOT"))
    log_dir: Path = Field(Path("logs"), validation_alias=_env("GSV_LOG_DIR"))
    database_url: str | None = Field(None, validation_alias=_env("GSV_DATABASE_URL"),
                                     description="SQLAlchemy URL; default sqlite file under data/")
    sqlite_path: Path = Field(Path("data/service.db"), validation_alias=_env("GSV_SQLITE_PATH"))
    max_upload_mb: int = Field(2048, ge=1, validation_alias=_env("GSV_MAX_UPLOAD_MB"))
    # Request limits (README "Limits and validation").
    max_upload_files: int = Field(1000, ge=1, le=100_000, validation_alias=_env("GSV_MAX_UPLOAD_FILES"),
                                  description="files in one upload request (413 above)")
    max_json_bytes: int = Field(1024 * 1024, ge=1024, validation_alias=_env("GSV_MAX_JSON_BYTES"),
                                description="largest request body other than an upload (413 above)")
    max_step_procs: int | None = Field(None, ge=1, le=1024, validation_alias=_env("GSV_MAX_STEP_PROCS"),
                                       description="engine processes one step may start (gpu_id ids x "
                                       "parts_per_gpu); default: 8 per GPU, or the CPU cores (at least "
                                       "2) without GPUs")
    # Disk (gsv_service/disk.py) and event retention (gsv_service/retention.py).
    max_total_mb: int | None = Field(None, ge=1, validation_alias=_env("GSV_MAX_TOTAL_MB"),
                                     description="disk budget of all tasks together (under task_root); "
                                     "unset = none")
    max_task_mb: int | None = Field(None, ge=1, validation_alias=_env("GSV_MAX_TASK_MB"),
                                    description="disk budget of one task; unset = none")
    disk_usage_ttl_s: float = Field(10.0, ge=0, validation_alias=_env("GSV_DISK_USAGE_TTL_S"),
                                    description="how long a measured disk use is reused before the "
                                    "folder is walked again")
    event_retention_days: float = Field(30.0, gt=0, validation_alias=_env("GSV_EVENT_RETENTION_DAYS"),
                                        description="progress and log events of finished tasks older "
                                        "than this are deleted")
    retention_interval_s: float = Field(3600.0, ge=0, validation_alias=_env("GSV_RETENTION_INTERVAL_S"),
                                        description="seconds between event compactions; 0 = never")
    gpus: str | None = Field(None, validation_alias=_env("GSV_GPUS"),
                             description='GPU ids the service may use, e.g. "0,1"; empty = none (CPU '
                             'only); unset = what nvidia-smi lists')
    kill_grace_s: float = Field(10.0, ge=0.1, validation_alias=_env("GSV_KILL_GRACE_S"),
                                description="seconds between SIGTERM and SIGKILL on cancel")
    cpu_slots: int = Field(1, ge=1, le=64, validation_alias=_env("GSV_CPU_SLOTS"),
                           description="engine steps running at once on a machine without GPUs")
    pipeline_parallel: bool = Field(True, validation_alias=_env("GSV_PIPELINE_PARALLEL"),
                                    description="pipelines run independent steps at the same time")
    max_concurrent_runs: int = Field(4, ge=1, validation_alias=_env("GSV_MAX_CONCURRENT_RUNS"))
    # Webhooks (README "Webhooks"; gsv_service/webhooks.py).
    webhook_allow: str = Field("", validation_alias=_env("GSV_WEBHOOK_ALLOW"),
                               description="comma list of hosts, IPs or CIDRs webhooks may reach although "
                               "loopback, private, link-local or this machine's own")
    webhook_max_retry_s: float = Field(600.0, ge=0, validation_alias=_env("GSV_WEBHOOK_MAX_RETRY_S"),
                                       description="a delivery is retried (with backoff) for at most this long")
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, validation_alias=_env("GSV_WEBHOOK_TIMEOUT_S"),
                                     description="longest one delivery attempt may take")
    webhook_workers: int = Field(8, ge=1, le=64, validation_alias=_env("GSV_WEBHOOK_WORKERS"),
                                 description="deliveries in flight at once (one per destination)")
    # Security (README "Security: keys, bind, hosts"): see gsv_service/auth/.
    bind_host: str = Field("127.0.0.1", validation_alias=_env("GSV_BIND_HOST"),
                           description="the address the server binds (set by training_service.py)")
    trusted_hosts: str | None = Field(None, validation_alias=_env("GSV_TRUSTED_HOSTS"),
                                      description='Host headers accepted, comma list ("*" any); default '
                                      'localhost, 127.0.0.1, ::1 and the bind host')
    cors_origins: str | None = Field(None, validation_alias=_env("GSV_CORS_ORIGINS"),
                                     description="comma list of origins allowed by CORS; unset: CORS off")
    max_tasks_per_key: int = Field(1000, ge=1, validation_alias=_env("GSV_MAX_TASKS_PER_KEY"))
    max_streams_per_key: int = Field(8, ge=1, validation_alias=_env("GSV_MAX_STREAMS_PER_KEY"),
                                     description="open SSE/WebSocket/log-follow streams per key and process")
    # Pretrained model overrides (default: the checkout's GPT_SoVITS/pretrained_models layout).
    pretrained_dir: Path | None = Field(None, validation_alias=_env("GSV_PRETRAINED_DIR"))
    bert_dir: Path | None = Field(None, validation_alias=_env("GSV_BERT_DIR"))
    cnhubert_dir: Path | None = Field(None, validation_alias=_env("GSV_CNHUBERT_DIR"))
    sv_path: Path | None = Field(None, validation_alias=_env("GSV_SV_PATH"))

    @field_validator("engine_root", "engine_python", "database_url", "pretrained_dir",
                     "bert_dir", "cnhubert_dir", "sv_path", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("max_total_mb", "max_task_mb", mode="before")
    @classmethod
    def _blank_budget_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("max_step_procs", mode="before")
    @classmethod
    def _blank_procs_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @cached_property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_path.resolve()}"

    @property
    def trusted_host_list(self) -> list[str]:
        """Host names (IPv6 literals in brackets, as a Host header has them); ["*"] allows any."""
        if self.trusted_hosts and self.trusted_hosts.strip():
            hosts = [h.strip() for h in self.trusted_hosts.split(",") if h.strip()]
        else:
            hosts = ["localhost", "127.0.0.1", "::1"]
            if self.bind_host not in ("0.0.0.0", "::", ""):
                hosts.append(self.bind_host)
        return [f"[{h}]" if ":" in h and not h.startswith("[") else h.lower() for h in hosts]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in (self.cors_origins or "").split(",") if o.strip()]

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024
