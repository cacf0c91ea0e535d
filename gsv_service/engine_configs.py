"""Training configs for the engine, written from the checkout's own templates exactly as upstream's
web UI fills them (webui.py open1Ba / open1Bb), but with every output path inside the task."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gsv_service.engine import DevicePlan, Engine


@dataclass(frozen=True)
class TrainSettings:
    """What a training run was asked for, after task defaults and params were merged."""

    version: str
    exp_name: str
    batch_size: int
    epochs: int
    save_every_epoch: int
    if_save_latest: bool
    if_save_every_weights: bool
    pretrained_G: Path          # s2G for SoVITS, s1 for GPT
    pretrained_D: Path | None = None
    text_low_lr_rate: float = 0.4
    if_dpo: bool = False


def effective_batch_size(batch_size: int, plan: DevicePlan) -> int:
    """Without half precision the web UI halves the batch (minimum 1)."""
    return batch_size if plan.is_half else max(1, batch_size // 2)


def write_s2_config(engine: Engine, ts: TrainSettings, plan: DevicePlan, exp_dir: Path,
                    weight_dir: Path, out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(engine.s2_template(ts.version).read_text(encoding="utf-8"))
    if not plan.is_half:
        data["train"]["fp16_run"] = False
    train = data["train"]
    train.update(batch_size=effective_batch_size(ts.batch_size, plan), epochs=ts.epochs,
                 text_low_lr_rate=ts.text_low_lr_rate, pretrained_s2G=str(ts.pretrained_G),
                 pretrained_s2D=str(ts.pretrained_D or ""), if_save_latest=ts.if_save_latest,
                 if_save_every_weights=ts.if_save_every_weights, save_every_epoch=ts.save_every_epoch,
                 gpu_numbers=plan.gpu_numbers, grad_ckpt=False, lora_rank="32")
    data["model"]["version"] = ts.version
    data["data"]["exp_dir"] = data["s2_ckpt_dir"] = str(exp_dir)
    data["save_weight_dir"] = str(weight_dir)
    data["name"] = ts.exp_name
    data["version"] = ts.version
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data), encoding="utf-8")
    return data


def s1_output_dir(exp_dir: Path, version: str) -> Path:
    return exp_dir / f"logs_s1_{version}"


def write_s1_config(engine: Engine, ts: TrainSettings, plan: DevicePlan, exp_dir: Path,
                    weight_dir: Path, out: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(engine.s1_template(ts.version).read_text(encoding="utf-8"))
    if not plan.is_half:
        data["train"]["precision"] = "32"
    data["train"].update(batch_size=effective_batch_size(ts.batch_size, plan), epochs=ts.epochs,
                         save_every_n_epoch=ts.save_every_epoch,
                         if_save_every_weights=ts.if_save_every_weights,
                         if_save_latest=ts.if_save_latest, if_dpo=ts.if_dpo,
                         half_weights_save_dir=str(weight_dir), exp_name=ts.exp_name)
    data["pretrained_s1"] = str(ts.pretrained_G)
    data["train_semantic_path"] = str(exp_dir / "6-name2semantic.tsv")
    data["train_phoneme_path"] = str(exp_dir / "2-name2text.txt")
    data["output_dir"] = str(s1_output_dir(exp_dir, ts.version))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.dump(data, default_flow_style=False, allow_unicode=True), encoding="utf-8")
    return data


def s1_env(engine: Engine, plan: DevicePlan) -> dict[str, str]:
    """s1_train.py reads the GPUs from _CUDA_VISIBLE_DEVICES (comma list) and hz from the env.
    Lightning draws its progress with rich when rich is installed, and rich draws nothing until
    the end unless it writes to a terminal: tell it the log is one (plain, wide), as the web UI's
    console is, so progress can be followed."""
    visible = ",".join(d for d in plan.devices if d) if plan.cuda else ""
    return engine.env({"_CUDA_VISIBLE_DEVICES": visible, "hz": "25hz", "TTY_COMPATIBLE": "1",
                       "TTY_INTERACTIVE": "1", "NO_COLOR": "1", "COLUMNS": "400"})
