"""Training helpers of the contract double (the double only): dataset, bars, checkpoints, knobs."""

import glob
import json
import multiprocessing as mp
import os
import sys
import time
import traceback


def dataset(exp_dir, need_sv):
    """Items in both 2-name2text.txt and 6-name2semantic.tsv (and 7-sv_cn for v2Pro), repeated to
    at least 100 like upstream's loaders."""
    with open(os.path.join(exp_dir, "2-name2text.txt"), encoding="utf8") as f:
        text = {ln.split("\t")[0] for ln in f.read().strip("\n").split("\n") if ln}
    with open(os.path.join(exp_dir, "6-name2semantic.tsv"), encoding="utf8") as f:
        rows = f.read().strip("\n").split("\n")
    assert rows[0] == "item_name\tsemantic_audio", "6-name2semantic.tsv has no header"
    items = [r.split("\t")[0] for r in rows[1:] if r.split("\t")[0] in text]
    if need_sv:
        items = [i for i in items if os.path.exists(os.path.join(exp_dir, "7-sv_cn", i + ".pt"))]
    if not items:
        raise RuntimeError("double: no training items")
    if len(items) < 100:
        items = items * max(2, int(100 / len(items)))
    return items


def bar(i, n, prefix="", postfix=""):
    pct = int(100 * i / n)
    filled = "#" * (pct // 10)
    sys.stderr.write("\r%s%3d%%|%-10s| %d/%d [00:00<00:00, 99.0it/s%s]" % (prefix, pct, filled, i, n, postfix))
    sys.stderr.flush()


def step_pause():
    delay = float(os.environ.get("DOUBLE_STEP_S", "0") or 0)
    if delay:
        time.sleep(delay)


def fail_at(epoch):
    if os.environ.get("DOUBLE_FAIL_EPOCH") == str(epoch):
        raise RuntimeError("double: injected failure at epoch %d" % epoch)


def write_pids(*pids):
    path = os.environ.get("DOUBLE_PIDFILE")
    if path:
        with open(path, "a") as f:
            f.write(" ".join(str(p) for p in pids) + "\n")


def save(obj, path):
    with open(path, "w") as f:  # fails like upstream's shutil.move when the folder is missing
        json.dump({"double": True, **obj}, f)


def latest(pattern):
    found = glob.glob(pattern)
    found.sort(key=lambda f: int("".join(filter(str.isdigit, os.path.basename(f))) or 0))
    return found[-1] if found else None


class ProcessRaisedException(Exception):
    """As torch.multiprocessing.spawn raises it in the parent: the child's traceback inside."""


def _wrap(fn, queue, args):
    try:
        fn(*args)
    except KeyboardInterrupt:
        pass
    except Exception:
        queue.put(traceback.format_exc())
        sys.exit(1)


def spawn(fn, args):
    """torch.multiprocessing.spawn(fn, nprocs=1): the child runs fn(0, *args); its failure is
    re-raised here with its traceback (the child prints nothing itself)."""
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    child = ctx.Process(target=_wrap, args=(fn, queue, (0,) + tuple(args)))
    child.start()
    write_pids(os.getpid(), child.pid)
    child.join()
    if child.exitcode != 0:
        trace = queue.get() if not queue.empty() else "(no traceback)"
        raise ProcessRaisedException("\n\n-- Process 0 terminated with the following error:\n" + trace)


def idle_worker():
    """A DataLoader worker stand-in: lives until its parent ends it."""
    while True:
        time.sleep(1)


def start_workers():
    worker = mp.get_context("spawn").Process(target=idle_worker, daemon=True)
    worker.start()
    write_pids(os.getpid(), worker.pid)
    return worker
