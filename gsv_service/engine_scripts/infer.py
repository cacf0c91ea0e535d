"""Test inference through a GPT-SoVITS checkout's own inference code (GPT_SoVITS/inference_webui.py,
the module upstream's inference_cli.py drives).

Run by the ENGINE's interpreter with cwd = the checkout root and the checkout on PYTHONPATH, never
by the service: it must not import gsv_service. Usage: infer.py JOB.json, where the job holds
ref_audio, ref_text, ref_language, target_text, target_language, output, sv_path, top_k, top_p,
temperature. The env carries what inference_webui reads when imported: gpt_path, sovits_path,
bert_path, cnhubert_base_path, version, is_half.

Differences from inference_cli.py, each for a reason:
- languages are upstream's codes (all_zh, en, zh, ja, ko, yue, auto, ...), looked up in the
  module's own dict_language, so every language the model supports works (the CLI offers three);
- the SoVITS weights are really loaded: inference_cli.py calls change_sovits_weights() without
  iterating the generator it returns, so its --sovits_model is ignored;
- the speaker model (v2Pro/v2ProPlus) comes from the job's sv_path, not only the fixed default;
- the wav goes to the exact output path, and one result line is printed for the service.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

PREFIX = "@@gsv "


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(PREFIX + json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def load(job: dict[str, Any]) -> Any:
    if job.get("sv_path"):
        import sv  # GPT_SoVITS/sv.py: SV() reads this module global when it builds the model

        sv.sv_path = job["sv_path"]
    emit("progress", done=0, total=3, message="loading models")
    import GPT_SoVITS.inference_webui as webui  # loads BERT, HuBERT, GPT and SoVITS from the env

    if getattr(webui, "vq_model", None) is None:
        # its import-time load swallows errors: load again to surface the real one
        next(webui.change_sovits_weights(os.environ["sovits_path"]))
    return webui


def label(webui: Any, code: str) -> str:
    by_code: dict[str, str] = {v: k for k, v in webui.dict_language.items()}
    if code not in by_code:
        raise SystemExit(f"language {code!r} is not supported by this model version "
                         f"(supported: {', '.join(sorted(by_code))})")
    return by_code[code]


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        job: dict[str, Any] = json.load(f)
    t0 = time.time()
    webui = load(job)
    emit("progress", done=1, total=3, message="synthesising")
    t1 = time.time()
    chunks = list(webui.get_tts_wav(
        ref_wav_path=job["ref_audio"], prompt_text=job["ref_text"],
        prompt_language=label(webui, job["ref_language"]), text=job["target_text"],
        text_language=label(webui, job["target_language"]), top_k=job.get("top_k", 20),
        top_p=job.get("top_p", 1), temperature=job.get("temperature", 1)))
    if not chunks:
        raise SystemExit("the engine returned no audio")
    sr, audio = chunks[-1]
    import soundfile as sf

    sf.write(job["output"], audio, sr)
    emit("progress", done=3, total=3, message="written")
    emit("result", output=job["output"], sample_rate=int(sr), samples=int(len(audio)),
         duration=round(len(audio) / float(sr), 3), load_s=round(t1 - t0, 2),
         synth_s=round(time.time() - t1, 2))


if __name__ == "__main__":
    main()
