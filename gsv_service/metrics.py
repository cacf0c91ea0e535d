"""Training loss series per step kind, read back from the training runs' log files, and a plot.

The logs are the engine's own output (the same lines progress is parsed from), so the series is
complete even for runs whose live progress was throttled, and it survives restarts.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gsv_service.progress_parsers import S1Progress, S2Progress
from gsv_service.records import RunRecord

KINDS: dict[str, tuple[str, type[S2Progress] | type[S1Progress]]] = {
    "train_sovits": ("sovits", S2Progress), "train_gpt": ("gpt", S1Progress)}
MAX_POINTS = 2000
CHUNK = 1 << 20


def _segments(path: Path) -> Iterator[str]:
    """Log segments split at \\n and \\r, read in chunks (a log can be large)."""
    partial = ""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        while chunk := f.read(CHUNK):
            parts = (partial + chunk.decode("utf-8", "replace")).replace("\r", "\n").split("\n")
            partial = parts.pop()[-65536:]
            yield from (p for p in parts if p.strip())
    if partial.strip():
        yield partial


def run_series(run: RunRecord) -> list[dict[str, Any]]:
    """Points (epoch, step, losses) in the order the run logged them, thinned to MAX_POINTS."""
    _kind, parser_cls = KINDS[run.step]
    epochs = int(run.params.get("epochs") or 0) or 10_000
    parser = parser_cls(epochs)
    points: list[dict[str, Any]] = []
    last: tuple[Any, ...] | None = None
    for seg in _segments(Path(run.log_path or "")):
        parser.feed(seg)
        if not parser.losses:
            continue
        _frac, _msg, m = parser.report()
        losses = tuple(sorted(m["losses"].items()))
        # s2 prints losses with their global step; s1's bar carries them on every redraw
        key = (m["global_step"], losses) if "global_step" in m else (m.get("epoch"), m.get("step"), losses)
        if key == last:
            continue
        last = key
        points.append({"epoch": m.get("epoch"), "step": m.get("global_step", m.get("step")),
                       "losses": m["losses"]})
    if len(points) > MAX_POINTS:  # keep the shape, and always the last point
        stride = -(-len(points) // MAX_POINTS)
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return points


def task_metrics(runs: list[RunRecord]) -> dict[str, Any]:
    out: dict[str, Any] = {"sovits": [], "gpt": []}
    for run in runs:
        if run.step in KINDS and run.log_path:
            kind = KINDS[run.step][0]
            out[kind].append({"run_id": run.id, "status": run.status.value, "started_at": run.started_at,
                              "points": run_series(run)})
    return out


def plot_png(metrics: dict[str, Any]) -> bytes:
    """Loss curves, one panel per kind; headless (Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 7), dpi=100)
    for i, kind in enumerate(("sovits", "gpt")):
        ax = fig.add_subplot(2, 1, i + 1)
        ax.set_title(f"{'SoVITS' if kind == 'sovits' else 'GPT'} training losses")
        ax.set_xlabel("step")
        drawn = False
        for r_i, run in enumerate(metrics[kind]):
            names = sorted({n for p in run["points"] for n in p["losses"]})
            for name in names:
                xs = [p["step"] if p["step"] is not None else j for j, p in enumerate(run["points"])
                      if name in p["losses"]]
                ys = [p["losses"][name] for p in run["points"] if name in p["losses"]]
                ax.plot(xs, ys, label=f"{name} (run {r_i + 1})" if len(metrics[kind]) > 1 else name)
                drawn = True
        if drawn:
            ax.legend(fontsize="small", ncol=3)
        else:
            ax.text(0.5, 0.5, "no training run yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
