"""Child job: probe every upload and convert it to 32 kHz mono 16-bit WAV, several ffmpeg at once.

    python -m gsv_service.jobs.convert --src input_audio --dst OUT --workers N

A bad file is reported as an `item_error` and the others go on. Writes OUT/.sources.json
(converted name -> uploaded name) so that slices are named after the uploads, as upstream's
slicer names them.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from gsv_service.audio import TARGET_SR
from gsv_service.audio.ffmpeg import AudioError, convert, probe
from gsv_service.jobs.protocol import emit

SOURCES_FILE = ".sources.json"


def output_names(names: list[str]) -> dict[str, str]:
    """upload name -> converted name: `stem.wav`, or `name.wav` when two uploads share a stem."""
    stems = Counter(Path(n).stem for n in names)
    return {n: (f"{Path(n).stem}.wav" if stems[Path(n).stem] == 1 else f"{n}.wav") for n in names}


def _one(src: Path, dst: Path) -> dict[str, Any]:
    info = probe(src)
    duration = convert(src, dst, TARGET_SR, info)
    return {"file": src.name, "converted": dst.name, "duration": round(duration, 3),
            "source_duration": info.duration and round(info.duration, 3), "format": info.format,
            "codec": info.codec, "sample_rate": info.sample_rate, "channels": info.channels,
            "video": info.has_video}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--dst", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    files = sorted(p for p in args.src.iterdir() if p.is_file() and not p.name.startswith("."))
    names = output_names([p.name for p in files])
    args.dst.mkdir(parents=True, exist_ok=True)
    done, ok, lock = 0, {}, threading.Lock()
    emit("progress", done=0, total=len(files), message=f"converting {len(files)} file(s)")
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futs = {pool.submit(_one, p, args.dst / names[p.name]): p for p in files}
        for fut in as_completed(futs):
            src = futs[fut]
            what = "could not convert"
            try:
                item = fut.result()
                with lock:
                    ok[item["converted"]] = item
                emit("item", **item)
                what = "converted"
            except AudioError as e:
                emit("item_error", item=src.name, error=str(e))
            except Exception as e:  # noqa: BLE001 - one file's surprise must not stop the others
                emit("item_error", item=src.name, error=f"{type(e).__name__}: {e}")
            done += 1
            failed = done - len(ok)
            emit("progress", done=done, total=len(files), message=f"{done} of {len(files)}: {what} "
                 f"{src.name}" + (f" ({failed} failed so far)" if failed else ""))
    (args.dst / SOURCES_FILE).write_text(json.dumps({k: v["file"] for k, v in ok.items()},
                                                    ensure_ascii=False, indent=1), encoding="utf-8")
    emit("result", converted=len(ok), total=len(files),
         seconds=round(sum(v["duration"] for v in ok.values()), 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
