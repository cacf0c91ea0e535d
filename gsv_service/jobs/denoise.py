"""Child job: spectral denoise of slices, or a plain copy (method none); one shard of the sources.

    python -m gsv_service.jobs.denoise --src sliced --dst OUT [--method spectral|none]
                                       [--strength 2.5] [--part i --parts n]

Slices of one recording share a noise profile taken from all their pauses, so shards split by
recording, never inside one.
"""

from __future__ import annotations

import argparse
import shutil
from collections import defaultdict
from pathlib import Path

from gsv_service.audio.denoise import DEFAULT_STRENGTH, NoiseProfile, spectral
from gsv_service.audio.levels import read_mono, write_pcm16
from gsv_service.audio.slicer import parse_slice_name
from gsv_service.jobs.protocol import emit


def groups(files: list[Path]) -> list[list[Path]]:
    """Slices grouped by the recording they were cut from (by name), in a stable order."""
    by_src: dict[str, list[Path]] = defaultdict(list)
    for p in files:
        parsed = parse_slice_name(p.name)
        by_src[parsed[0] if parsed else p.name].append(p)
    return [by_src[k] for k in sorted(by_src)]


def denoise_group(paths: list[Path], dst: Path, strength: float) -> list[str]:
    """Denoise one recording's slices (two passes: noise profile, then gate); return the names
    that failed, already reported."""
    profiles: dict[int, NoiseProfile] = {}
    failed = []
    for p in paths:
        try:
            x, sr = read_mono(p)
        except Exception as e:  # noqa: BLE001
            emit("item_error", item=p.name, error=f"unreadable WAV ({e})")
            failed.append(p.name)
            continue
        profiles.setdefault(sr, NoiseProfile(sr)).add(x)
    noise = {sr: prof.noise() for sr, prof in profiles.items()}
    for p in paths:
        if p.name not in failed:
            x, sr = read_mono(p)
            write_pcm16(dst / p.name, spectral(x, sr, noise[sr], strength), sr)
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--dst", type=Path, required=True)
    ap.add_argument("--method", choices=("spectral", "none"), default="spectral")
    ap.add_argument("--strength", type=float, default=DEFAULT_STRENGTH)
    ap.add_argument("--part", type=int, default=0)
    ap.add_argument("--parts", type=int, default=1)
    args = ap.parse_args(argv)
    files = sorted(p for p in args.src.glob("*.wav") if not p.name.startswith("."))
    mine = groups(files)[args.part::args.parts]
    total = sum(len(g) for g in mine)
    args.dst.mkdir(parents=True, exist_ok=True)
    done = written = 0
    for group in mine:
        if args.method == "none":
            for p in group:
                shutil.copyfile(p, args.dst / p.name)
            failed = []
        else:
            failed = denoise_group(group, args.dst, args.strength)
        done += len(group)
        written += len(group) - len(failed)
        emit("progress", part=args.part, done=done, total=total, message=f"denoised {done}/{total}")
    emit("result", part=args.part, files=written, failed=total - written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
