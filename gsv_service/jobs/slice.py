"""Child job: slice converted recordings into utterances (one shard of the files).

    python -m gsv_service.jobs.slice --src converted_wav --dst OUT --config JSON [--part i --parts n]

Config keys: threshold, min_length, min_interval, hop_size, max_sil_kept (as the web UI), _max,
alpha. Slices are named `{uploaded file name}_{start:010d}_{end:010d}.wav` like upstream's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gsv_service.audio.levels import read_mono, write_pcm16
from gsv_service.audio.slicer import SlicerConfig, find_segments, normalise
from gsv_service.jobs.convert import SOURCES_FILE
from gsv_service.jobs.protocol import emit

CUT_KEYS = ("threshold", "min_length", "min_interval", "hop_size", "max_sil_kept")


def source_names(src: Path) -> dict[str, str]:
    try:
        names: dict[str, str] = json.loads((src / SOURCES_FILE).read_text(encoding="utf-8"))
        return names
    except (OSError, ValueError):
        return {}


def slice_file(path: Path, source: str, dst: Path, cfg: dict[str, Any]) -> list[float]:
    """Write the slices of one recording; return their durations (seconds)."""
    x, sr = read_mono(path)
    segs = find_segments(x, SlicerConfig(sr=sr, **{k: cfg[k] for k in CUT_KEYS}))
    durations = []
    for seg in segs:
        chunk = x[seg.start:min(len(x), seg.end)]
        out = normalise(chunk, cfg["_max"], cfg["alpha"]) if len(chunk) else None
        if out is None:  # nothing but digital silence: upstream would write NaNs here
            continue
        write_pcm16(dst / seg.name(source), out, sr)
        durations.append(len(out) / sr)
    return durations


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--dst", type=Path, required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--part", type=int, default=0)
    ap.add_argument("--parts", type=int, default=1)
    args = ap.parse_args(argv)
    cfg = json.loads(args.config)
    names = source_names(args.src)
    files = sorted(p for p in args.src.glob("*.wav") if not p.name.startswith("."))[args.part::args.parts]
    args.dst.mkdir(parents=True, exist_ok=True)
    durations: list[float] = []
    for i, path in enumerate(files):
        source = names.get(path.name, path.name).replace("|", "_")  # '|' separates .list fields
        try:
            got = slice_file(path, source, args.dst, cfg)
        except Exception as e:  # noqa: BLE001 - report the file, go on with the others
            emit("item_error", item=source, error=f"could not slice it ({type(e).__name__}: {e})")
            got = None
        if got == []:
            emit("item_error", item=source, error=f"no speech found: every part is quieter than "
                 f"{cfg['threshold']} dB; lower `threshold` if the recording is quiet")
        durations += got or []
        emit("progress", part=args.part, done=i + 1, total=len(files),
             message=f"{source}: {len(got or [])} slice(s)")
    emit("result", part=args.part, files=len(files), slices=len(durations),
         seconds=round(sum(durations), 3), min=round(min(durations), 3) if durations else None,
         max=round(max(durations), 3) if durations else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
