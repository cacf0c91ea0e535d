"""Transcript review and the dataset report of a task."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import PlainTextResponse, Response

from gsv_service.api import examples as ex
from gsv_service.api.deps import JSON, ServiceDep
from gsv_service.api.responses import DatasetOut, TranscriptOut, TranscriptSaved, TranscriptTemplate, errors, ok
from gsv_service.dataset import DatasetReport
from gsv_service.transcript_review import TranscriptReview, TranscriptUpdate, template_list

router = APIRouter(prefix="/api/v1", tags=["transcripts"])

_EXAMPLES = {
    "patch": {"summary": "edit one line, drop another",
              "value": {"edits": [{"slice": "a.wav_0000000000_0000160000.wav", "text": "Corrected text."},
                                  {"slice": "a.wav_0000160000_0000320000.wav", "drop": True}]}},
    "replace": {"summary": "the whole transcript",
                "value": {"lines": [{"slice": "a.wav_0000000000_0000160000.wav", "text": "Hello.",
                                     "language": "en"}]}},
}


@router.get("/task/{task_id}/transcripts/template", response_model=TranscriptTemplate, responses={
    200: {"description": "JSON; with format=list a .list file (text/plain) to fill in",
          "content": {"application/json": {"example": ex.TEMPLATE},
                      "text/plain": {"schema": {"type": "string"},
                                     "example": "a.wav_0000000000_0000160000.wav|spk|EN|\n"}}},
    **errors(404, 422)})
def get_transcript_template(task_id: str, svc: ServiceDep,
                            format: Annotated[Literal["json", "list"], Query(
                                description="json, or list: a .list file to fill in and upload")] = "json") -> Response:
    """Every slice's name with empty text, to fill in: as JSON (`lines`: slice, duration, text), or
    with `format=list` as a .list file (`slice|speaker|LANG|`; LANG is empty when the task's
    language is auto). Fill in the text, upload the file to input_transcripts (POST .../files/upload)
    and run asr_transcribe with method 'provided'. 404 until the recordings are sliced."""
    tpl = TranscriptReview(svc).template(task_id)
    if format == "list":
        name = f"{tpl['task_id']}.template.list"  # a checked task id: safe in a header
        return PlainTextResponse(template_list(tpl), headers={
            "Content-Disposition": f'attachment; filename="{name}"'})
    return JSON(tpl)


@router.get("/task/{task_id}/transcripts", response_model=TranscriptOut,
            responses={**ok(ex.TRANSCRIPT), **errors(404)})
def get_transcripts(task_id: str, svc: ServiceDep) -> Response:
    """The transcript as JSON: one entry per line with slice name, duration, language and text.
    404 until asr_transcribe has written it."""
    return JSON(TranscriptReview(svc).get(task_id))


@router.put("/task/{task_id}/transcripts", response_model=TranscriptSaved,
            responses={**ok(ex.TRANSCRIPT_SAVED), **errors(404, 409, 422)})
def put_transcripts(task_id: str, svc: ServiceDep,
                    body: Annotated[TranscriptUpdate, Body(openapi_examples=_EXAMPLES)]) -> Response:
    """Replace the transcript (`lines`) or change some lines (`edits`: new text or language, or
    `drop`). The feature steps that used it become stale. 409 while a step of the task runs; 422
    names the line that is wrong."""
    return JSON(TranscriptReview(svc).update(task_id, body))


@router.get("/task/{task_id}/dataset", response_model=DatasetOut, responses={**ok(ex.DATASET), **errors(404)})
def get_dataset(task_id: str, svc: ServiceDep) -> Response:
    """Per slice and in total: duration, peak and RMS level, clipped and silent share, transcript
    length, and warnings to act on before training (too short/long, clipping, near silence, empty
    or implausible transcripts, mixed languages)."""
    return JSON(DatasetReport(svc).get(task_id))
