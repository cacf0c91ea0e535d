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

    @cached_property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_path.resolve()}"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024
