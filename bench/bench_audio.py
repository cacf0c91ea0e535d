#!/usr/bin/env python3
"""Benchmark: audio-seconds per wall-second of convert_audio, slice_audio and denoise_audio
(spectral) on 10 minutes of espeak speech, through the steps (the real app in-process, its child
jobs doing load + work + write), pinned to one core; beside it upstream's own tools/slice_audio.py
on the same file when a GPT-SoVITS checkout is given, and the denoiser's effect on a 20 dB SNR copy.

    .venv/bin/python bench/bench_audio.py                       # ours only
    GSV_ROOT=/work/gsv GSV_PYTHON=/work/gsv-venv/bin/python .venv/bin/python bench/bench_audio.py

Targets (issue #3): slicing at least as fast as upstream's script on the same file, conversion
>= 500x real time, spectral denoise >= 100x real time while lowering the noise floor of a 20 dB SNR
input by >= 20 dB and changing the level of speech frames by < 1 dB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import emit, wait_for_quiet  # noqa: E402

from tests.audio_fixtures import add_noise, levels_by_mask, minutes_of_speech, read, transcode, write  # noqa: E402

SLICE_DEFAULTS = ["-34", "4000", "300", "10", "500", "0.9", "0.25"]

# Runs upstream's script as it is; only the timing is ours: its imports (gradio and all) happen
# first, then the script's own code (load with ffmpeg, slice, write) runs under the clock.
UPSTREAM = textwrap.dedent("""
    import json, os, sys, time
    root, inp, out = sys.argv[1:4]
    os.chdir(root); sys.path[:0] = [root, root + "/tools"]
    t0 = time.perf_counter()
    import numpy, scipy.io.wavfile, tools.my_utils, slicer2  # what slice_audio.py imports
    t1 = time.perf_counter()
    sys.argv = ["slice_audio.py", inp, out, *sys.argv[4:], "0", "1"]
    code = compile(open("tools/slice_audio.py", encoding="utf-8").read(), "tools/slice_audio.py", "exec")
    exec(code, {"__name__": "__main__"})
    t2 = time.perf_counter()
    x = tools.my_utils.load_audio(inp, 32000)
    s = slicer2.Slicer(sr=32000, threshold=-34, min_length=4000, min_interval=300, hop_size=10,
                       max_sil_kept=500)
    t3 = time.perf_counter(); s.slice(x); t4 = time.perf_counter()
    print("@@bench " + json.dumps({"imports": t1 - t0, "script": t2 - t1, "slicer": t4 - t3}))
""")


def run_step(client, tid: str, step: str, **params) -> dict:
    r = client.post(f"/api/v1/task/{tid}/step/{step}", json={"params": params})
    assert r.status_code == 202, r.text
    rid = r.json()["run_id"]
    while True:
        run = client.get(f"/api/v1/task/{tid}/runs/{rid}").json()
        if run["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.02)
    if run["status"] != "completed":
        raise SystemExit(f"{step} {run['status']}: {run['error_message']}")
    wall = (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
    return {"wall_s": wall, "result": run["result"]}


def task_with(client, path: Path, name: str) -> str:
    tid = client.post("/api/v1/task/create", json={"task_name": "bench", "config": {"exp_name": "b",
                                                                                    "language": "en"}}).json()["task_id"]
    with open(path, "rb") as f:
        r = client.post(f"/api/v1/task/{tid}/files/upload", files={"file": (name, f)})
    assert r.status_code == 200, r.text
    return tid


def upstream_slice(gsv_root: str, gsv_python: str, wav: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run([gsv_python, "-s", "-c", UPSTREAM, gsv_root, str(wav), str(out), *SLICE_DEFAULTS],
                       capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("@@bench ")), None)
    if p.returncode != 0 or line is None:
        return {"error": (p.stderr or p.stdout)[-600:]}
    return {**json.loads(line[8:]), "process_wall": wall, "names": sorted(q.name for q in out.glob("*.wav"))}


def our_slice_timings(wav: Path, out: Path) -> dict:
    """Our slicer outside the service, timed the way upstream's script is timed above: the whole
    child process, and load + slice + write in-process."""
    from gsv_service.jobs.slice import slice_file
    keys = ("threshold", "min_length", "min_interval", "hop_size", "max_sil_kept", "_max", "alpha")
    cfg = {k: (float(v) if "." in v or k == "threshold" else int(v)) for k, v in zip(keys, SLICE_DEFAULTS)}
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gsv_service.jobs.slice", "--src", str(wav.parent), "--dst",
                    str(out), "--config", json.dumps(cfg)], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    t1 = time.perf_counter()
    for q in out.glob("*.wav"):
        q.unlink()
    slice_file(wav, wav.name, out, cfg)
    return {"process_wall": t1 - t0, "script": time.perf_counter() - t1}


def denoise_figures(task_root: Path, tid: str, clean32: np.ndarray, with_default: bool) -> dict:
    """Speech and pause levels over every slice: frames chosen on the clean signal at the slice's
    position (from its name), measured on the noisy slice and on the denoised one."""
    from gsv_service.audio.levels import read_mono
    from gsv_service.audio.slicer import parse_slice_name
    cl, no, de, nd = [], [], [], []
    for p in sorted((task_root / tid / "sliced").glob("*.wav")):
        _, a, _b = parse_slice_name(p.name)
        x, sr = read_mono(p)
        cl.append(clean32[a:a + len(x)])
        no.append(x)
        de.append(read_mono(task_root / tid / "denoised" / p.name)[0])
        if with_default:
            import noisereduce
            nd.append(noisereduce.reduce_noise(y=x, sr=sr).astype(np.float32))
    c, n = np.concatenate(cl), np.concatenate(no)
    s0, p0 = levels_by_mask(c, n, 32000)
    s1, p1 = levels_by_mask(c, np.concatenate(de), 32000)
    out = {"input_snr_db": round(s0 - p0, 2), "floor_change_db": round(p1 - p0, 2),
           "speech_change_db": round(s1 - s0, 2)}
    if nd:
        s2, p2 = levels_by_mask(c, np.concatenate(nd), 32000)
        out.update(noisereduce_default_floor_db=round(p2 - p0, 2), noisereduce_default_speech_db=round(s2 - s0, 2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cpu", type=int, default=0, help="the one core to pin to (default 0)")
    ap.add_argument("--gsv-root", default=os.environ.get("GSV_ROOT"))
    ap.add_argument("--gsv-python", default=os.environ.get("GSV_PYTHON"))
    ap.add_argument("--no-default-noisereduce", action="store_true", help="skip the default-settings comparison")
    ap.add_argument("--quiet-pct", type=float, default=25)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.cpu})  # children (ffmpeg, jobs, upstream) inherit the one core
    os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    from fastapi.testclient import TestClient
    from gsv_service.app import create_app
    from gsv_service.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench-audio-"))
    speech = minutes_of_speech(work / "speech.wav", args.minutes)
    mp3 = transcode(speech.path, work / "speech.mp3", "-c:a", "libmp3lame", "-b:a", "96k")
    x, sr = read(speech.path)
    noisy = write(work / "noisy.wav", add_noise(x, 20, seed=11), sr)
    secs = speech.duration
    settings = Settings(_env_file=None, task_root=work / "tasks", log_dir=work / "logs",
                        sqlite_path=work / "db.sqlite", engine_root=None, engine_python=None, gpus="",
                        trusted_hosts="testserver")  # the TestClient's Host header
    busy = wait_for_quiet(args.quiet_pct) if args.quiet_pct > 0 else None
    res: dict = {"audio_seconds": round(secs, 1), "cpu": args.cpu, "other_load_pct_before": busy}
    with TestClient(create_app(settings)) as c:
        t_wav, t_mp3, t_noisy = task_with(c, speech.path, "speech.wav"), task_with(c, mp3, "speech.mp3"), \
            task_with(c, noisy, "speech.wav")
        res["convert_wav"] = run_step(c, t_wav, "convert_audio", workers=1)
        res["convert_mp3"] = run_step(c, t_mp3, "convert_audio", workers=1)
        res["slice"] = run_step(c, t_wav, "slice_audio", workers=1)
        run_step(c, t_noisy, "convert_audio", workers=1)
        run_step(c, t_noisy, "slice_audio", workers=1)
        res["denoise"] = run_step(c, t_noisy, "denoise_audio", method="spectral", workers=1)
        conv = settings.task_root / t_wav / "converted_wav" / "speech.wav"
        ours = sorted(q.name for q in (settings.task_root / t_wav / "sliced").glob("*.wav"))
        from gsv_service.audio.levels import read_mono
        clean32 = read_mono(conv)[0]
        res["denoise_levels"] = denoise_figures(settings.task_root, t_noisy, clean32, not args.no_default_noisereduce)
    res["ours_outside_service"] = our_slice_timings(conv, work / "our_slices")
    if args.gsv_root and args.gsv_python:
        up = upstream_slice(args.gsv_root, args.gsv_python, conv, work / "upstream_slices")
        if "names" in up:
            up["same_slice_names"] = up.pop("names") == ours
        res["upstream"] = up
    report(res, secs, len(ours), args.json_out)
    shutil.rmtree(work, ignore_errors=True)


def report(res: dict, secs: float, n_slices: int, json_out: str | None) -> None:
    x = {k: secs / res[k]["wall_s"] for k in ("convert_wav", "convert_mp3", "slice", "denoise")}
    lv = res["denoise_levels"]
    rows = [("convert_audio, WAV 22.05 kHz -> 32 kHz (x real time)", f"{x['convert_wav']:.0f}", ">= 500"),
            ("convert_audio, MP3 96 kb/s (x real time)", f"{x['convert_mp3']:.0f}", ">= 500"),
            (f"slice_audio, {n_slices} slices (x real time)", f"{x['slice']:.0f}", ">= upstream's script"),
            ("denoise_audio spectral (x real time)", f"{x['denoise']:.0f}", ">= 100"),
            ("  input SNR in pauses (dB)", f"{lv['input_snr_db']:.1f}", "~20"),
            ("  noise floor change (dB)", f"{lv['floor_change_db']:+.1f}", "<= -20"),
            ("  speech level change (dB)", f"{lv['speech_change_db']:+.2f}", "within +-1")]
    if "noisereduce_default_floor_db" in lv:
        rows += [("  noisereduce defaults: floor (dB)", f"{lv['noisereduce_default_floor_db']:+.1f}", "(reference)"),
                 ("  noisereduce defaults: speech (dB)", f"{lv['noisereduce_default_speech_db']:+.2f}", "(reference)")]
    own = res["ours_outside_service"]
    rows += [("  ours: load+slice+write in-process (x real time)", f"{secs / own['script']:.0f}", ""),
             ("  ours: job process incl. interpreter start (x)", f"{secs / own['process_wall']:.0f}", "")]
    up = res.get("upstream")
    if up and "script" in up:
        rows += [("upstream slice_audio.py: load+slice+write (x real time)", f"{secs / up['script']:.0f}", ""),
                 ("upstream slice_audio.py: whole process incl. imports (x)", f"{secs / up['process_wall']:.0f}", ""),
                 ("upstream slicer2 alone (x real time)", f"{secs / up['slicer']:.0f}", ""),
                 ("same slice names as upstream", str(up["same_slice_names"]), "True")]
    elif up:
        rows.append(("upstream slice_audio.py", "failed: " + up["error"][-80:].replace("\n", " "), ""))
    res["x_real_time"] = {k: round(v, 1) for k, v in x.items()}
    emit(res, rows, json_out, "audio preparation, one core")


if __name__ == "__main__":
    main()
