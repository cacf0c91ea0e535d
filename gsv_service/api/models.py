"""Trained models of a task: every saved SoVITS and GPT weight, downloadable."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, ServiceDep
from gsv_service.api.responses import errors, ok
from gsv_service.trained_models import list_models

router = APIRouter(prefix="/api/v1", tags=["models"])


class ModelOut(BaseModel):
    kind: Literal["sovits", "gpt"]
    name: str
    path: str = Field(..., description="relative to the task folder")
    epoch: int | None = None
    step: int | None = Field(None, description="SoVITS only")
    size: int
    modified: str
    download_url: str


class ModelsOut(BaseModel):
    task_id: str
    sovits: list[ModelOut]
    gpt: list[ModelOut]
    latest: dict[str, str | None]


@router.get("/task/{task_id}/models", response_model=ModelsOut, responses={**ok(ex.MODELS), **errors(404)})
def models(task_id: str, svc: ServiceDep) -> Response:
    """Saved weights, oldest epoch first per kind, with the latest of each kind; download each
    at its download_url (weights never leave the task folder)."""
    task = svc.get(task_id)
    out: dict[str, list[dict[str, Any]]] = {"sovits": [], "gpt": []}
    for m in list_models(svc.workspace(task)):
        out[m.kind].append({**m.to_dict(),
                            "download_url": f"/api/v1/task/{task_id}/files/download/{m.path}"})
    latest = {k: (v[-1]["name"] if v else None) for k, v in out.items()}
    return JSON({"task_id": task_id, **out, "latest": latest})
