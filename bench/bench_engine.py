"""Benchmark (real engine only): what the service adds to the engine's own wall time.

On one tiny-model checkout (tools/make_tiny_models.py) and espeak-ng speech, each stage runs twice,
interleaved so both see the same machine: once through the service (its real HTTP server: POST the
step, poll the run until it ends) and once directly (upstream's script with the same argv, cwd, env
and config, plus the web UI's merge of part files). Stages: the four feature stages and one epoch
each of SoVITS and GPT training. Target: the service adds at most 2 %.

    GSV_ROOT=/path/to/GPT-SoVITS GSV_PYTHON=/path/to/engine/python \\
        .venv/bin/python bench/bench_engine.py [--version v2ProPlus] [--tiny DIR] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, Server, request, wait_for_quiet  # noqa: E402
from gsv_service.engine import DevicePlan, Engine  # noqa: E402
from gsv_service.engine_configs import s1_env  # noqa: E402
from gsv_service.settings import Settings  # noqa: E402
from tests import audio_fixtures as af  # noqa: E402
from tests.engine_support import ensure_tiny_models  # noqa: E402

FEATURES = [("extract_text_features", "text"), ("extract_audio_features", "hubert"),
            ("extract_speaker_vectors", "sv"), ("extract_semantic_features", "semantic")]


def _post(port: int, path: str, doc: dict) -> dict:
    status, body = request(port, "POST", path, json.dumps(doc).encode(), {"Content-Type": "application/json"})
    if status not in (200, 202):
        raise RuntimeError(f"POST {path}: {status} {body[:300]!r}")
    return json.loads(body)


def through_service(port: int, tid: str, step: str, params: dict | None = None) -> float:
    t0 = time.perf_counter()
    rid = _post(port, f"/api/v1/task/{tid}/step/{step}", {"params": params or {}})["run_id"]
    while True:
        run = json.loads(request(port, "GET", f"/api/v1/task/{tid}/runs/{rid}")[1])
        if run["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.05)
    secs = time.perf_counter() - t0
    if run["status"] != "completed":
        raise RuntimeError(f"{step}: {run['status']}: {run['error_message']}")
    return secs


def _merge(exp: Path, stage: str) -> None:
    """webui.py open1a / open1c, verbatim in behaviour."""
    if stage == "text":
        opt = (exp / "2-name2text-0.txt").read_text(encoding="utf8").strip("\n").split("\n")
        (exp / "2-name2text-0.txt").unlink()
        (exp / "2-name2text.txt").write_text("\n".join(opt) + "\n", encoding="utf8")
    elif stage == "semantic":
        opt = ["item_name\tsemantic_audio"]
        opt += (exp / "6-name2semantic-0.tsv").read_text(encoding="utf8").strip("\n").split("\n")
        (exp / "6-name2semantic-0.tsv").unlink()
        (exp / "6-name2semantic.tsv").write_text("\n".join(opt) + "\n", encoding="utf8")


def direct(argv: list[str], engine: Engine, env: dict, log: Path, after=None) -> float:
    t0 = time.perf_counter()
    with open(log, "ab") as out:
        code = subprocess.run(argv, cwd=engine.root, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if after:
        after()
    secs = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"{argv[2]} exited with {code}; see {log}")
    return secs


def _inputs(task: Path, work: Path, n: int, words: int) -> None:
    """Short utterances (SoVITS's CPU time per item grows with its length; an epoch always has
    about 100 items, since upstream repeats a small dataset)."""
    rows = []
    for i, sentence in enumerate(af.SENTENCES_EN[:n]):
        text = " ".join(sentence.split()[:words])
        wav = af.speak(text, task / "sliced" / f"utt_{i:02d}.wav", "en", 150 + 10 * (i % 3))
        rows.append(f"{wav}|spk|EN|{text}")
    (task / "transcripts").mkdir(parents=True, exist_ok=True)
    (task / "transcripts" / "spk.list").write_text("\n".join(rows) + "\n", encoding="utf8")


def _config_copy(src: Path, dst: Path, task: Path, mine: Path) -> Path:
    """The service's config with the task's paths swapped for the direct run's own folders."""
    text = src.read_text(encoding="utf8").replace(str(task / "experiments"), str(mine / "experiments"))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text.replace(str(task / "weights"), str(mine / "weights")), encoding="utf8")
    return dst


def measure(args, root: Path, python: str, tiny: Path) -> list[dict]:
    v, rows = args.version, []
    with Server(GSV_ROOT=str(root), GSV_PYTHON=python, GSV_PRETRAINED_DIR=str(tiny)) as srv:
        cfg = {"exp_name": "spk", "language": "en", "model_version": v, "batch_size": args.batch_size,
               "epochs_s2": 1, "epochs_s1": 1, "save_every_epoch_s2": 1, "save_every_epoch_s1": 1}
        tid = _post(srv.port, "/api/v1/task/create", {"task_name": "bench", "config": cfg})["task_id"]
        task, mine = srv.tmp / "api_tasks" / tid, srv.tmp / "direct"
        _inputs(task, srv.tmp, args.items, args.words)
        exp = mine / "experiments" / "spk"
        exp.mkdir(parents=True)
        engine = Engine(root=root, python=python, settings=Settings(_env_file=None, pretrained_dir=tiny))
        common = {"inp_text": str(task / "transcripts" / "spk.list"), "inp_wav_dir": str(task / "sliced"),
                  "exp_name": "spk", "opt_dir": str(exp), "i_part": "0", "all_parts": "1",
                  "_CUDA_VISIBLE_DEVICES": "", "is_half": "False"}
        log = mine / "direct.log"
        through_service(srv.port, tid, "extract_text_features")  # warm-up: caches, imports
        for step, stage in FEATURES:
            if stage == "sv" and "Pro" not in v:
                continue
            row = {"stage": step, "service_s": None, "direct_s": None}
            wait_for_quiet(args.quiet_pct)
            row["service_s"] = through_service(srv.port, tid, step)
            wait_for_quiet(args.quiet_pct)
            row["direct_s"] = direct(engine.argv(stage), engine, engine.feature_env(stage, v, common), log,
                                     lambda s=stage: _merge(exp, s))
            rows.append(row)
        (exp / f"logs_s2_{v}").mkdir()
        (mine / "weights" / "sovits").mkdir(parents=True)
        (mine / "weights" / "gpt").mkdir(parents=True)
        wait_for_quiet(args.quiet_pct)
        svc = through_service(srv.port, tid, "train_sovits")
        conf = _config_copy(task / "configs" / "s2.json", mine / "configs" / "s2.json", task, mine)
        wait_for_quiet(args.quiet_pct)
        rows.append({"stage": "train_sovits (1 epoch)", "service_s": svc,
                     "direct_s": direct(engine.argv("s2_train", "--config", str(conf)), engine, engine.env(), log)})
        wait_for_quiet(args.quiet_pct)
        svc = through_service(srv.port, tid, "train_gpt")
        conf = _config_copy(task / "configs" / "s1.yaml", mine / "configs" / "s1.yaml", task, mine)
        (exp / "logs_s1").mkdir(exist_ok=True)
        wait_for_quiet(args.quiet_pct)
        rows.append({"stage": "train_gpt (1 epoch)", "service_s": svc,
                     "direct_s": direct(engine.argv("s1_train", "--config_file", str(conf)), engine,
                                        s1_env(engine, DevicePlan((None,), False)), log)})
    return rows


def report(rows: list[dict], meta: dict) -> dict:
    for r in rows:
        r["overhead"] = r["service_s"] / r["direct_s"] - 1
    tot_s, tot_d = sum(r["service_s"] for r in rows), sum(r["direct_s"] for r in rows)
    print(f"{'stage':32} {'service s':>10} {'direct s':>10} {'overhead':>9}")
    for r in rows:
        print(f"{r['stage']:32} {r['service_s']:10.2f} {r['direct_s']:10.2f} {100 * r['overhead']:8.2f}%")
    print(f"{'total':32} {tot_s:10.2f} {tot_d:10.2f} {100 * (tot_s / tot_d - 1):8.2f}%")
    return {**meta, "stages": rows, "total_service_s": tot_s, "total_direct_s": tot_d,
            "total_overhead": tot_s / tot_d - 1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default="v2ProPlus", choices=["v1", "v2", "v2Pro", "v2ProPlus"])
    ap.add_argument("--tiny", type=Path, default=None, help="tiny models folder (made when missing)")
    ap.add_argument("--items", type=int, default=8, help="utterances (espeak-ng)")
    ap.add_argument("--words", type=int, default=6, help="words per utterance")
    ap.add_argument("--batch-size", type=int, default=4, help="task batch size (halved on CPU)")
    ap.add_argument("--quiet-pct", type=float, default=25)
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    root, python = os.environ.get("GSV_ROOT"), os.environ.get("GSV_PYTHON")
    if not root or not python or shutil.which("espeak-ng") is None:
        print("needs GSV_ROOT, GSV_PYTHON (a real GPT-SoVITS checkout) and espeak-ng", file=sys.stderr)
        return 2
    root_p = Path(root).resolve()
    tiny = ensure_tiny_models(root_p, python, (args.tiny or RESULTS / "tiny-models").resolve(), [args.version])
    rows = measure(args, root_p, python, tiny)
    out = report(rows, {"version": args.version, "items": args.items, "cpus": os.cpu_count()})
    path = args.json_out or RESULTS / f"engine-{args.version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
