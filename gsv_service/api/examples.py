"""Examples of every request and answer, for the OpenAPI document (/docs). They are answers the
service gave (ids and times from one run); tests/test_openapi.py checks each against its schema."""

from __future__ import annotations

from typing import Any

from gsv_service.steps.registry import STEP_NAMES

TID = "deb157ea-8354-4398-9e06-ec59117fc60c"
RUN = "4a0eb121b39042f7a1f0c65aaca31dda"
PIPE = "580fe17833cd495db73af31e3e71a0a4"
T0, T1 = "2026-11-25T20:39:40.458592+00:00", "2026-11-25T20:39:43.214690+00:00"
S1, S2 = "reading.wav_0000001280_0000162240.wav", "reading.wav_0000175360_0000298880.wav"
S3, S4 = "reading.wav_0000310400_0000420480.wav", "reading.wav_0000432320_0000589760.wav"

CONFIG = {"exp_name": "spk", "language": "en", "model_version": "v2ProPlus", "batch_size": 1, "epochs_s2": 1,
          "epochs_s1": 1, "save_every_epoch_s2": 4, "save_every_epoch_s1": 5, "gpu_id": "0",
          "text_low_lr_rate": 0.4, "if_save_latest": True, "keep_resume_checkpoints": 1,
          "if_save_every_weights": True, "if_dpo": False, "is_half": None, "denoise": False, "speaker_name": None, "webhook_url": None}

_MESSAGES = {
    "convert_audio": "converted 1 of 1", "slice_audio": "cut 1 recording into 4 slices (17.25 s, 3.4-5.0 s each)",
    "asr_transcribe": "transcribed 4 of 4 slices (provided)",
    "extract_text_features": "text features: 4 items", "extract_audio_features": "HuBERT features: 4 items",
    "extract_speaker_vectors": "speaker vectors: 4 items", "extract_semantic_features": "semantic tokens: 4 items",
    "train_sovits": "trained 1 epoch; latest weights: spk_e1_s100.pth",
    "train_gpt": "trained 1 epoch; latest weights: spk-e1.ckpt", "test_inference": "wrote output/output.wav (1.62 s)",
}


def _record(step: str, done: bool) -> dict[str, Any]:
    if not done or step == "denoise_audio":
        return {"status": "pending", "run_id": None, "progress": None, "message": None, "error_message": None,
                "reason": None, "started_at": None, "finished_at": None, "updated_at": T0}
    return {"status": "completed", "run_id": RUN, "progress": 1.0, "message": _MESSAGES[step],
            "error_message": None, "reason": None, "started_at": T0, "finished_at": T1, "updated_at": T1}


def task(upto: str | None, status: str = "completed") -> dict[str, Any]:
    """A task whose steps up to `upto` have completed (denoise_audio off, as by default)."""
    n = STEP_NAMES.index(upto) + 1 if upto else 0
    steps = {s: _record(s, i < n) for i, s in enumerate(STEP_NAMES)}
    trained = n == len(STEP_NAMES)
    done = sum(1 for r in steps.values() if r["status"] == "completed")
    if upto is None:
        summary = "nothing has run yet; not trained yet (0 of 11 steps completed, no weights)"
    else:
        summary = f"{upto} completed: {_MESSAGES[upto]}; " + (
            f"trained weights are ready (GET /api/v1/task/{TID}/models)" if trained
            else f"not trained yet ({done} of 11 steps completed, no weights)")
    return {"task_id": TID, "task_name": "demo", "status": "created" if upto is None else status,
            "current_step": upto, "progress": 96.55 if trained else round(100 * n / 29, 2),
            "error_message": None, "created_at": T0, "updated_at": T1, "config": CONFIG,
            "active_run_id": None, "active_pipeline_id": None, "steps": steps,
            "last_completed_step": upto, "has_weights": trained, "summary": summary}


def run(status: str = "completed") -> dict[str, Any]:
    done = status == "completed"
    return {"id": RUN, "run_id": RUN, "task_id": TID, "step": "convert_audio", "status": status,
            "params": {"workers": None}, "progress": 1.0 if done else 0.0,
            "message": "converted 1 of 1" if done else None, "metrics": None,
            "result": {"converted": 1, "failed": 0, "uploads": 1, "seconds": 19.301, "sample_rate": 32000,
                       "files": [{"file": "reading.wav", "converted": "reading.wav", "duration": 19.301,
                                  "source_duration": 19.301, "format": "wav", "codec": "pcm_s16le",
                                  "sample_rate": 22050, "channels": 1, "video": False}],
                       "errors": []} if done else None,
            "error_message": None, "reason": None, "pipeline_id": None, "resources": None,
            "created_at": T0, "started_at": T0 if done else None, "finished_at": T1 if done else None}


# ---------- requests ----------

CREATE_REQUEST = {
    "defaults": {"summary": "a task with the web UI's defaults", "value": {"task_name": "my voice"}},
    "quick": {"summary": "English, one epoch each (a quick trial)",
              "value": {"task_name": "demo", "config": {"exp_name": "spk", "language": "en", "epochs_s2": 1,
                                                        "epochs_s1": 1, "batch_size": 1}}},
}
STEP_REQUEST = {
    "defaults": {"summary": "the step's defaults", "value": {"params": {}}},
    "slice": {"summary": "slice_audio: cut at quieter pauses", "value": {"params": {"threshold": -40,
                                                                                   "min_length": 3000}}},
    "asr": {"summary": "asr_transcribe: the transcripts you uploaded", "value": {"params": {"method": "provided"}}},
    "train": {"summary": "train_sovits / train_gpt: more epochs", "value": {"params": {"epochs": 8,
                                                                                     "batch_size": 4}}},
}
PIPELINE_REQUEST = {
    "all": {"summary": "every step, with a test sentence", "value": {
        "steps_params": {"test_inference": {"target_text": "Hello, this is my new voice."}}}},
    "review": {"summary": "from transcription on, pausing for a review", "value": {
        "from_step": "asr_transcribe", "steps_params": {"asr_transcribe": {"method": "provided"}},
        "stop_after_asr_for_review": True}},
    "audio": {"summary": "only the audio steps (no engine needed)", "value": {"to_step": "slice_audio"}},
}
UPLOAD_REQUEST = {"files": ["reading.wav", "reading.wav_0000001280_0000162240.txt"]}

# ---------- answers ----------

TASK_CREATED = task(None)
TASK = {**task("test_inference"), "disk": {"used_bytes": 187236512, "budget_bytes": None}}
TASKS = [task("convert_audio")]
STEP_STARTED = {"message": f"step convert_audio accepted (run {RUN})", "task_id": TID, "step": "convert_audio",
                "run_id": RUN, "status": "queued", "run": run("queued")}
STEP_BUSY = {"detail": f"task {TID} is already running step 'convert_audio' (run {RUN}); wait for it to "
                       f"finish or cancel it with POST /api/v1/task/{TID}/cancel", "active_run": RUN}
RUN_DONE = run()
CANCEL = {"message": "no step is running", "task_id": TID, "cancelled": False}
DELETED = {"message": "task deleted", "task_id": TID}
UPLOAD = {"message": "uploaded 1 file(s): reading.wav", "task_id": TID, "filename": "reading.wav",
          "size": 851232, "folder": "input_audio", "path": "input_audio/reading.wav",
          "files": [{"filename": "reading.wav", "size": 851232, "folder": "input_audio",
                     "path": "input_audio/reading.wav", "replaced": False}]}
FILES = {"task_id": TID, "folders": {"sliced": [
    {"name": S1, "path": f"sliced/{S1}", "size": 321964, "modified": T1},
    {"name": S2, "path": f"sliced/{S2}", "size": 247084, "modified": T1}]}}
PIPELINE: dict[str, Any] = {"pipeline_id": PIPE, "task_id": TID, "status": "completed",
            "steps": ["asr_transcribe", "extract_text_features", "extract_audio_features",
                      "extract_speaker_vectors", "extract_semantic_features", "train_sovits", "train_gpt",
                      "test_inference"],
            "parallel": True, "stop_after_asr_for_review": False, "failed_step": None, "error_message": None,
            "reason": None, "created_at": T0, "finished_at": T1}
PIPELINE_STARTED = {**PIPELINE, "status": "running", "finished_at": None, "stop_after_asr_for_review": True,
                    "message": "pipeline started: " + ", ".join(PIPELINE["steps"])}
APPROVED = {**PIPELINE_STARTED, "message": "transcripts approved; pipeline continues"}
NO_ENGINE_424 = {"detail": "no GPT-SoVITS engine is configured, and this pipeline needs it for: extract_text_features; "
                           "…; train_gpt. Without it this task can run up to 'slice_audio' now",
                 "step": "extract_text_features", "steps": ["extract_text_features", "train_gpt"],
                 "to_step": "slice_audio", "install_command": "./start_service.sh --engine-only"}


def _line(name: str, duration: float) -> dict[str, Any]:
    return {"slice": name, "wav_path": f"/srv/api_tasks/{TID}/sliced/{name}", "duration": duration,
            "speaker": "spk", "language": "EN", "text": "Some words read aloud."}


TRANSCRIPT = {"task_id": TID, "path": "transcripts/spk.list", "count": 2, "task_language": "en",
              "lines": [_line(S1, 5.03), _line(S2, 3.86)], "problems": []}
TEMPLATE = {"task_id": TID, "source": "sliced", "count": 2, "speaker": "spk", "language": "EN",
            "lines": [{"slice": S1, "duration": 5.03, "text": ""}, {"slice": S2, "duration": 3.86, "text": ""}]}
TRANSCRIPT_SAVED = {**TRANSCRIPT, "count": 1, "lines": [_line(S1, 5.03)], "stale_steps": ["extract_text_features"],
                    "edits_kept": 1, "message": "transcript saved (1 lines; 1 edited slice(s) kept for when "
                                                "asr_transcribe runs again); now stale: extract_text_features"}
DATASET = {"task_id": TID, "source": "sliced", "transcript": "transcripts/spk.list",
           "totals": {"slices": 4, "seconds": 17.25, "minutes": 0.29, "speech_minutes": 0.23, "min_seconds": 3.44,
                      "max_seconds": 5.03, "mean_seconds": 4.31, "with_transcript": 4, "languages": {"EN": 4},
                      "slices_with_warnings": 0},
           "warnings": ["only 0.23 min of speech: GPT-SoVITS needs at least about 1 minute, and several "
                        "minutes give a steadier voice; upload more recordings"],
           "slices": [{"slice": S1, "duration": 5.03, "peak_db": -3.3, "rms_db": -21.59, "clipped_share": 0.0,
                       "silence_share": 0.195, "speech_db": -20.47, "noise_db": None, "language": "EN",
                       "text": "Some words read aloud.", "text_length": 22, "warnings": []}]}
LOGS = {"logs": "[service] $ …/python -m gsv_service.jobs.convert --src …/input_audio --dst …/.converted_wav.new "
                "--workers 1\n[service] completed\n",
        "run_id": RUN, "step": "convert_audio", "status": "completed", "truncated": False}
MODELS = {"task_id": TID,
          "sovits": [{"kind": "sovits", "name": "spk_e1_s100.pth", "path": "weights/sovits/spk_e1_s100.pth",
                      "epoch": 1, "step": 100, "size": 1127, "modified": T1,
                      "download_url": f"/api/v1/task/{TID}/files/download/weights/sovits/spk_e1_s100.pth"}],
          "gpt": [{"kind": "gpt", "name": "spk-e1.ckpt", "path": "weights/gpt/spk-e1.ckpt", "epoch": 1, "step": None,
                   "size": 855, "modified": T1,
                   "download_url": f"/api/v1/task/{TID}/files/download/weights/gpt/spk-e1.ckpt"}],
          "latest": {"sovits": "spk_e1_s100.pth", "gpt": "spk-e1.ckpt"}}
METRICS = {"task_id": TID,
           "sovits": [{"run_id": RUN, "status": "completed", "started_at": T0, "points": [
               {"epoch": 1, "step": 0, "losses": {"loss_disc": 3.1, "loss_gen": 2.2, "loss_fm": 1.3,
                                                  "loss_mel": 24.5, "kl_ssl": 0.6, "loss_kl": 1.7}}]}],
           "gpt": [{"run_id": RUN, "status": "completed", "started_at": T0,
                    "points": [{"epoch": 1, "step": 1, "losses": {"total_loss": 200.0}}]}]}
HEALTH: dict[str, Any] = {"status": "ok", "version": "0.1.0",
          "store": {"backend": "sqlite", "url": "sqlite:////srv/data/service.db", "ok": True},
          "engine": {"found": True, "root": "/srv/gsv/engine/GPT-SoVITS", "gpus": ["0"], "ffmpeg": True},
          "disk": {"used_bytes": 2147483648, "budget_bytes": 53687091200, "free_bytes": 412316860416}}
HEALTH_DOWN = {**HEALTH, "status": "degraded", "store": {**HEALTH["store"], "ok": False}}
ENGINE = {"pinned_commit": "48b1a0169a28", "model_versions": ["v1", "v2", "v2Pro", "v2ProPlus"], "gpus": [],
          "device": "cpu", "ffmpeg": "/usr/bin/ffmpeg", "found": False, "root": None,
          "install_command": "./start_service.sh --engine-only",
          "hint": "no engine: the 4 audio steps run (ASR with transcripts you upload, method 'provided'); to enable "
                  "the 7 engine steps, install it with ./start_service.sh --engine-only, or set GSV_ROOT to a "
                  "GPT-SoVITS checkout and GSV_PYTHON to its interpreter, and restart the service"}
DOCTOR = {"status": "warn", "summary": "doctor: warn (13 ok, 1 warn, 0 fail) — warn cuda", "version": "v2ProPlus",
          "language": "zh", "batch_size": 16,
          "versions_usable": {"v1": False, "v2": False, "v2Pro": False, "v2ProPlus": True},
          "checks": [{"name": "checkout", "status": "ok",
                      "found": "/srv/gsv/engine/GPT-SoVITS at commit 48b1a0169a28", "fix": None},
                     {"name": "cuda", "status": "warn",
                      "found": "no CUDA GPU: the engine steps run on the CPU (SoVITS training takes hours)",
                      "fix": "fine for tests with tiny models; train real voices on a machine with an NVIDIA GPU"}],
          "probe": {"python": "/srv/gsv/engine/venv/bin/python", "ok": True, "error": None, "seconds": 9.8,
                    "finished_at": T1}}
STEPS = [{"order": 1, "name": "convert_audio", "title": "Convert audio",
          "description": "Every upload becomes 32 kHz mono 16-bit WAV (ffmpeg); bad files are reported by name.",
          "needs_engine": False, "needs_gpu": False, "engine_needs": [],
          "inputs": [{"name": "input_audio", "description": "uploaded recordings", "produced_by": None}],
          "optional_inputs": [], "inputs_v2pro_only": [],
          "outputs": [{"name": "converted_wav", "description": "32 kHz mono WAV files",
                       "produced_by": "convert_audio"}],
          "params_schema": {"additionalProperties": False, "properties": {"workers": {
              "anyOf": [{"maximum": 64, "minimum": 1, "type": "integer"}, {"type": "null"}], "default": None,
              "description": "parallel ffmpeg processes; default: cores", "title": "Workers"}},
              "title": "ConvertParams", "type": "object"}}]


def _number(field: str, param: str, default: float, task_default: float, lo: float, hi: float, ui_lo: float,
            ui_hi: float, step: float = 1, exclusive: bool = False) -> dict[str, Any]:
    return {"field": field, "step_param": param, "default": default, "task_default": task_default,
            "minimum": lo, "maximum": hi, "exclusive_minimum": exclusive, "webui_minimum": ui_lo,
            "webui_maximum": ui_hi, "step": step}


OPTIONS = {
    "engine": {"configured": False, "root": None, "install_command": "./start_service.sh --engine-only"},
    "device": {"device": "cpu", "gpus": [], "batch_size_basis": "no GPU: the web UI's CPU rule, RAM 23.5 GiB / 4"},
    "default_version": "v2ProPlus",
    "versions": [{"version": "v2ProPlus", "default": True, "pretrained_installed": None,
                  "languages": ["zh", "en", "ja", "ko", "yue", "auto", "auto_yue"],
                  "sovits": {"batch_size": _number("batch_size", "train_sovits.batch_size", 5, 16, 1, 256, 1, 15),
                             "epochs": _number("epochs_s2", "train_sovits.epochs", 8, 8, 1, 1000, 1, 25),
                             "save_every_epoch": _number("save_every_epoch_s2", "train_sovits.save_every_epoch",
                                                         4, 4, 1, 1000, 1, 25),
                             "text_low_lr_rate": _number("text_low_lr_rate", "train_sovits.text_low_lr_rate", 0.4,
                                                         0.4, 0, 1, 0.2, 0.6, 0.05, True),
                             "lora_rank": None},
                  "gpt": {"batch_size": _number("batch_size", "train_gpt.batch_size", 5, 16, 1, 256, 1, 40),
                          "epochs": _number("epochs_s1", "train_gpt.epochs", 15, 15, 1, 1000, 2, 50),
                          "save_every_epoch": _number("save_every_epoch_s1", "train_gpt.save_every_epoch",
                                                      5, 5, 1, 1000, 1, 50)}}],
    "languages": [{"code": "en", "name": "English", "versions": ["v1", "v2", "v2Pro", "v2ProPlus"],
                   "asr": ["funasr/fun-asr-nano", "faster_whisper/large-v3"]}],
    "asr_methods": [{"method": "provided", "default": False, "needs_engine": False, "available": True,
                     "why_not": None, "description": "transcripts you upload: a .list, or one .txt per slice "
                                                     "named after it", "models": []}],
    "denoise_methods": [{"method": "spectral", "default": False, "needs_engine": False, "available": True,
                         "why_not": None, "description": "spectral gating, built in (noisereduce)", "models": []}],
}

SSE = (f'id: 8\nevent: state\ndata: {{"id":8,"type":"state","run_id":"{RUN}","created_at":"{T0}",'
       f'"step":"slice_audio","status":"queued","pipeline_id":"{PIPE}"}}\n\n'
       f'id: 29\nevent: progress\ndata: {{"id":29,"type":"progress","run_id":"{RUN}","created_at":"{T1}",'
       '"step":"train_sovits","progress":0.2308,"message":"SoVITS training: epoch 1/1, step 3/13",'
       '"metrics":{"epoch":1,"epochs":1,"step":3,"total_steps":13}}\n\n')
