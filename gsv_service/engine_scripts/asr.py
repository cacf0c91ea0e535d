"""Runs the engine's ASR with the options its command lines lose. Executed by the ENGINE's
interpreter with cwd = the checkout and the checkout's sys.path (plus ours, for the protocol):

    python -s gsv_service/engine_scripts/asr.py --method funasr --backend sensevoice \
        --input DIR --output DIR --language zh
    python -s gsv_service/engine_scripts/asr.py --method faster_whisper --model-size large-v3 \
        --precision float32 --input DIR --output DIR --language en

Why: at the pinned commit tools/asr/funasr_asr.py's command line has no backend option (it always
runs Fun-ASR-Nano), so we call its execute_asr(..., backend=...) ourselves. For Faster-Whisper we
use a model already under tools/asr/models when there is one, instead of asking a hub first.
Imports only the standard library and the engine's own modules.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import json

PREFIX = "@@gsv "  # the structured-line prefix of gsv_service/jobs/protocol.py (not imported:
                   # this script runs in the engine's interpreter, which has no gsv_service)


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(PREFIX + json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _cuda() -> bool:
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch means no CUDA
        return False


def run_funasr(args: argparse.Namespace) -> str:
    from tools.asr.funasr_asr import execute_asr
    return str(execute_asr(args.input, args.output, "large", args.language, backend=args.backend))


def run_faster_whisper(args: argparse.Namespace) -> str:
    from tools.asr import fasterwhisper_asr as fw
    size = "large-v3" if args.model_size == "large" else args.model_size
    local = Path("tools/asr/models") / f"faster-whisper-{size}"
    model_path = str(local) if local.is_dir() else fw.download_model(size)
    precision = args.precision
    if precision == "float16" and not _cuda():
        print("float16 needs a CUDA GPU; using float32 on this CPU", flush=True)
        precision = "float32"
    language = args.language
    return str(fw.execute_asr(args.input, args.output, model_path, language, precision))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=("funasr", "faster_whisper"), required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--language", required=True)
    ap.add_argument("--backend", default="fun-asr-nano")
    ap.add_argument("--model-size", default="large-v3")
    ap.add_argument("--precision", default="float32")
    args = ap.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    total = len([n for n in os.listdir(args.input) if not n.startswith(".")])
    emit("progress", done=0, total=total, message=f"{args.method}: {total} file(s)")
    path = run_funasr(args) if args.method == "funasr" else run_faster_whisper(args)
    emit("result", list=str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
