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
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (RESULTS, Server, cpu_seconds, machine_busy_seconds, request,  # noqa: E402
                          wait_for_quiet)
from gsv_service.engine import DevicePlan, Engine  # noqa: E402
from gsv_service.engine_configs import (TrainSettings, s1_env, write_s1_config,  # noqa: E402
                                        write_s2_config)
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


class Meter:
    """Wall seconds, the machine's average busy cores, and the service process's own CPU seconds."""

    def __init__(self, server_pid: int | None = None):
        self.pid = server_pid

    def __enter__(self) -> Meter:
        self.t0, self.b0 = time.perf_counter(), machine_busy_seconds()
        self.c0 = cpu_seconds(self.pid) if self.pid else 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.wall = self.window = time.perf_counter() - self.t0
        self.load = (machine_busy_seconds() - self.b0) / self.window
        self.cpu = (cpu_seconds(self.pid) - self.c0) if self.pid else 0.0


def through_service(srv: Server, tid: str, step: str) -> Meter:
    """POST the step and poll its run once a second, as a client would (polling at 20 Hz costs
    the server 5 % of a core; at 1 Hz under 1 %). The wall time ends at the run's recorded
    finished_at, not at the poll that saw it."""
    with Meter(srv.pid) as m:
        posted = time.time()
        rid = _post(srv.port, f"/api/v1/task/{tid}/step/{step}", {"params": {}})["run_id"]
        while True:
            run = json.loads(request(srv.port, "GET", f"/api/v1/task/{tid}/runs/{rid}")[1])
            if run["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(1.0)
    if run["status"] != "completed":
        raise RuntimeError(f"{step}: {run['status']}: {run['error_message']}")
    m.wall = datetime.fromisoformat(run["finished_at"]).timestamp() - posted
    return m


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


def direct(argv: list[str], engine: Engine, env: dict, log: Path, after=None) -> Meter:
    with Meter() as m, open(log, "ab") as out:
        code = subprocess.run(argv, cwd=engine.root, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        if after:
            after()
    if code != 0:
        raise RuntimeError(f"{argv[2]} exited with {code}; see {log}")
    return m


def pair(args, i: int, stage: str, svc, drct) -> dict:
    """Both ways, after the machine quietens; the order alternates so drift does not favour one."""
    first_service = args.order == "service-first" or (args.order == "alternate" and i % 2 == 0)
    got = {}
    for name, fn in ((("service", svc), ("direct", drct)) if first_service
                     else (("direct", drct), ("service", svc))):
        if args.quiet_pct > 0:
            wait_for_quiet(args.quiet_pct)
        got[name] = fn()
    s, d = got["service"], got["direct"]
    return {"stage": stage, "service_s": s.wall, "direct_s": d.wall, "service_cpu_s": s.cpu,
            "service_cpu_share": s.cpu / s.window, "service_window_s": s.window,
            "load_service": s.load, "load_direct": d.load, "service_first": first_service}


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


def _train_settings(engine: Engine, v: str, batch_size: int, sovits: bool) -> TrainSettings:
    """What the service derives from the task config below (its defaults: the web UI's)."""
    return TrainSettings(version=v, exp_name="spk", batch_size=batch_size, epochs=1, save_every_epoch=1,
                         if_save_latest=True, if_save_every_weights=True,
                         pretrained_G=engine.pretrained("s2G" if sovits else "s1", v),
                         pretrained_D=engine.pretrained("s2D", v) if sovits else None)


def _same_config(mine: Path, theirs: Path, task: Path, direct_root: Path) -> None:
    """The direct run must have used the service's config, paths aside."""
    a = mine.read_text(encoding="utf8")
    b = theirs.read_text(encoding="utf8").replace(str(task / "experiments"), str(direct_root / "experiments"))
    if a != b.replace(str(task / "weights"), str(direct_root / "weights")):
        raise RuntimeError(f"the direct run's config {mine} differs from the service's {theirs}")


def _features(args, srv: Server, tid: str, engine: Engine, task: Path, mine: Path) -> list[dict]:
    exp = mine / "experiments" / "spk"
    common = {"inp_text": str(task / "transcripts" / "spk.list"), "inp_wav_dir": str(task / "sliced"),
              "exp_name": "spk", "opt_dir": str(exp), "i_part": "0", "all_parts": "1",
              "_CUDA_VISIBLE_DEVICES": "", "is_half": "False"}
    rows = []
    for i, (step, stage) in enumerate(FEATURES):
        if stage == "sv" and "Pro" not in args.version:
            continue
        env = engine.feature_env(stage, args.version, common)
        rows.append(pair(args, i, step, lambda s=step: through_service(srv, tid, s),
                         lambda st=stage, e=env: direct(engine.argv(st), engine, e, mine / "direct.log",
                                                        lambda: _merge(exp, st))))
    return rows


def _training(args, srv: Server, tid: str, engine: Engine, task: Path, mine: Path) -> list[dict]:
    v, exp, plan = args.version, mine / "experiments" / "spk", DevicePlan((None,), False)
    for d in (exp / f"logs_s2_{v}", exp / "logs_s1", mine / "weights" / "sovits", mine / "weights" / "gpt"):
        d.mkdir(parents=True, exist_ok=True)
    s2 = mine / "configs" / "s2.json"
    write_s2_config(engine, _train_settings(engine, v, args.batch_size, True), plan, exp,
                    mine / "weights" / "sovits", s2)
    s1 = mine / "configs" / "s1.yaml"
    write_s1_config(engine, _train_settings(engine, v, args.batch_size, False), plan, exp,
                    mine / "weights" / "gpt", s1)
    log = mine / "direct.log"
    rows = [pair(args, 0, "train_sovits (1 epoch)", lambda: through_service(srv, tid, "train_sovits"),
                 lambda: direct(engine.argv("s2_train", "--config", str(s2)), engine, engine.env(), log)),
            pair(args, 1, "train_gpt (1 epoch)", lambda: through_service(srv, tid, "train_gpt"),
                 lambda: direct(engine.argv("s1_train", "--config_file", str(s1)), engine,
                                s1_env(engine, plan), log))]
    _same_config(s2, task / "configs" / "s2.json", task, mine)
    _same_config(s1, task / "configs" / "s1.yaml", task, mine)
    return rows


def measure(args, root: Path, python: str, tiny: Path) -> list[dict]:
    with Server(GSV_ROOT=str(root), GSV_PYTHON=python, GSV_PRETRAINED_DIR=str(tiny)) as srv:
        cfg = {"exp_name": "spk", "language": "en", "model_version": args.version,
               "batch_size": args.batch_size, "epochs_s2": 1, "epochs_s1": 1, "save_every_epoch_s2": 1,
               "save_every_epoch_s1": 1}
        tid = _post(srv.port, "/api/v1/task/create", {"task_name": "bench", "config": cfg})["task_id"]
        task, mine = srv.tmp / "api_tasks" / tid, srv.tmp / "direct"
        _inputs(task, srv.tmp, args.items, args.words)
        (mine / "experiments" / "spk").mkdir(parents=True)
        engine = Engine(root=root, python=python, settings=Settings(_env_file=None, pretrained_dir=tiny))
        through_service(srv, tid, "extract_text_features")  # warm-up: caches, imports
        return (_features(args, srv, tid, engine, task, mine)
                + _training(args, srv, tid, engine, task, mine))


def report(rows: list[dict], meta: dict) -> dict:
    """Wall seconds both ways; the service process's own CPU seconds as a share of the stage (what
    it costs the machine, immune to other load); the machine's busy cores during each run (above
    2.0 on this 2-core machine nothing is left for anyone else: someone else was running)."""
    for r in rows:
        r["overhead"] = r["service_s"] / r["direct_s"] - 1
    tot_s, tot_d = sum(r["service_s"] for r in rows), sum(r["direct_s"] for r in rows)
    tot_cpu = sum(r["service_cpu_s"] for r in rows) / sum(r["service_window_s"] for r in rows)
    print(f"{'stage':28} {'service s':>10} {'direct s':>9} {'overhead':>9} {'svc CPU':>8} {'load s/d':>10}")
    for r in rows:
        print(f"{r['stage']:28} {r['service_s']:10.2f} {r['direct_s']:9.2f} {100 * r['overhead']:8.2f}% "
              f"{100 * r['service_cpu_share']:7.2f}% {r['load_service']:4.2f}/{r['load_direct']:4.2f}")
    print(f"{'total':28} {tot_s:10.2f} {tot_d:9.2f} {100 * (tot_s / tot_d - 1):8.2f}% "
          f"{100 * tot_cpu:7.2f}%")
    return {**meta, "stages": rows, "total_service_s": tot_s, "total_direct_s": tot_d,
            "total_overhead": tot_s / tot_d - 1, "service_cpu_share": tot_cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default="v2ProPlus", choices=["v1", "v2", "v2Pro", "v2ProPlus"])
    ap.add_argument("--tiny", type=Path, default=None, help="tiny models folder (made when missing)")
    ap.add_argument("--items", type=int, default=8, help="utterances (espeak-ng)")
    ap.add_argument("--words", type=int, default=6, help="words per utterance")
    ap.add_argument("--batch-size", type=int, default=4, help="task batch size (halved on CPU)")
    ap.add_argument("--quiet-pct", type=float, default=25)
    ap.add_argument("--order", choices=["alternate", "service-first", "direct-first"], default="alternate")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    root, python = os.environ.get("GSV_ROOT"), os.environ.get("GSV_PYTHON")
    if not root or not python or shutil.which("espeak-ng") is None:
        print("needs GSV_ROOT, GSV_PYTHON (a real GPT-SoVITS checkout) and espeak-ng", file=sys.stderr)
        return 2
    root_p = Path(root).resolve()
    tiny = ensure_tiny_models(root_p, python, (args.tiny or RESULTS / "tiny-models").resolve(), [args.version])
    rows = measure(args, root_p, python, tiny)
    out = report(rows, {"version": args.version, "items": args.items, "words": args.words,
                        "batch_size": args.batch_size, "order": args.order, "cpus": os.cpu_count()})
    path = args.json_out or RESULTS / f"engine-{args.version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
