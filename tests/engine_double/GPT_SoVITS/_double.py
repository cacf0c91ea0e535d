"""Helpers shared by the contract double's scripts (the double only; upstream has no such module).

Importing this from a script needs GPT_SoVITS on sys.path, as upstream's scripts need it for
`import utils` / `from text.cleaner import ...`: the service must pass the same PYTHONPATH.
"""

import json
import os
import sys
import time

STAGE_ENV = ("inp_text", "inp_wav_dir", "exp_name", "opt_dir", "i_part", "all_parts", "is_half",
             "_CUDA_VISIBLE_DEVICES", "version", "bert_pretrained_dir", "cnhubert_base_dir", "sv_path",
             "pretrained_s2G", "s2config_path", "CUDA_VISIBLE_DEVICES", "hz", "gpt_path", "sovits_path",
             "bert_path", "cnhubert_base_path")


def start(stage):
    """What every double script does first: CUDA env as upstream, env log, injected crash."""
    if "_CUDA_VISIBLE_DEVICES" in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = os.environ["_CUDA_VISIBLE_DEVICES"]
    log = os.environ.get("DOUBLE_ENV_LOG")
    if log:
        seen = {k: os.environ[k] for k in STAGE_ENV if k in os.environ}
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"stage": stage, "pid": os.getpid(), "cwd": os.getcwd(),
                                "sys_path": sys.path, "env": seen}) + "\n")
    if os.environ.get("DOUBLE_CRASH") == stage:
        raise RuntimeError(f"double: injected crash of {stage}")


def is_half():
    """Upstream: eval(os.environ.get("is_half", "True")) and torch.cuda.is_available()."""
    value = eval(os.environ.get("is_half", "True"))  # noqa: S307 - the contract evaluates it
    assert isinstance(value, bool), "is_half must be True or False"
    return value and bool(os.environ.get("CUDA_VISIBLE_DEVICES"))


def item_hook(name):
    delay = float(os.environ.get("DOUBLE_ITEM_DELAY_S", "0") or 0)
    if delay:
        time.sleep(delay)
    if name in os.environ.get("DOUBLE_FAIL_ITEMS", "").split(","):
        raise RuntimeError(f"double: injected failure for {name}")


def fake_save(obj, path):
    """Stands in for torch.save: a small JSON file at the same path."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"double": True, **obj}, f)


def read_list(path):
    with open(path, "r", encoding="utf8") as f:
        return f.read().strip("\n").split("\n")


def require_file(path, what):
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"{what}: {path}")
