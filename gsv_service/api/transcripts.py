"""Transcript review and the dataset report of a task."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from gsv_service.api.deps import JSON, ServiceDep
from gsv_service.dataset import DatasetReport
from gsv_service.transcripts import TranscriptReview, TranscriptUpdate

router = APIRouter(prefix="/api/v1", tags=["transcripts"])

_EXAMPLES = {
    "patch": {"summary": "edit one line, drop another",
              "value": {"edits": [{"slice": "a.wav_0000000000_0000160000.wav", "text": "Corrected text."},
                                  {"slice": "a.wav_0000160000_0000320000.wav", "drop": True}]}},
    "replace": {"summary": "the whole transcript",
                "value": {"lines": [{"slice": "a.wav_0000000000_0000160000.wav", "text": "Hello.",
                                     "language": "en"}]}},
}


@router.get("/task/{task_id}/transcripts")
def get_transcripts(task_id: str, svc: ServiceDep):
    """The transcript as JSON: one entry per line with slice name, duration, language and text.
    404 until asr_transcribe has written it."""
    return JSON(TranscriptReview(svc).get(task_id))


@router.put("/task/{task_id}/transcripts")
def put_transcripts(task_id: str, svc: ServiceDep,
                    body: Annotated[TranscriptUpdate, Body(openapi_examples=_EXAMPLES)]):
    """Replace the transcript (`lines`) or change some lines (`edits`: new text or language, or
    `drop`). The feature steps that used it become stale. 409 while a step of the task runs; 422
    names the line that is wrong."""
    return JSON(TranscriptReview(svc).update(task_id, body))


@router.get("/task/{task_id}/dataset")
def get_dataset(task_id: str, svc: ServiceDep):
    """Per slice and in total: duration, peak and RMS level, clipped and silent share, transcript
    length, and warnings to act on before training (too short/long, clipping, near silence, empty
    or implausible transcripts, mixed languages)."""
    return JSON(DatasetReport(svc).get(task_id))
