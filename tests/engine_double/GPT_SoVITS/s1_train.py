"""Contract double of GPT_SoVITS/s1_train.py: same CLI, YAML keys, child process, Lightning-style
progress line and files; no model. See tests/engine_double/README.md."""
import argparse
import os
import sys

import yaml

import _double
import _double_train as dt


def fit(config):
    train = config["train"]
    ckpt_dir = os.path.join(config["output_dir"], "ckpt")
    items = dt.dataset(os.path.dirname(config["train_semantic_path"]), False)
    bs = max(min(train["batch_size"], len(items) // 4), 1)
    n = -(-len(items) // bs)
    newest = dt.latest(os.path.join(ckpt_dir, "*.ckpt"))
    start = 0
    if newest:
        start = int(os.path.basename(newest).split("-")[0].split("=")[1]) + 1
    print("ckpt_path:", newest)
    for epoch in range(start, train["epochs"]):
        dt.fail_at(epoch + 1)
        for i in range(n):
            dt.step_pause()
            dt.bar(i + 1, n, "Epoch %d: " % epoch,
                   ", v_num=0, total_loss_step=%.1f, lr_step=0.00200, top_3_acc_step=0.125" % (200.0 - epoch))
        sys.stderr.write("\n")
        if (epoch + 1) % train["save_every_n_epoch"] == 0:
            old = os.listdir(ckpt_dir) if train["if_save_latest"] else []
            dt.save({"epoch": epoch}, os.path.join(ckpt_dir, "epoch=%d-step=%d.ckpt" % (epoch, (epoch + 1) * n)))
            for name in old:
                os.remove(os.path.join(ckpt_dir, name))
            if train["if_save_every_weights"] == True:
                dt.save({"weight": "double", "config": config, "info": "GPT-e%s" % (epoch + 1)},
                        "%s/%s-e%s.ckpt" % (train["half_weights_save_dir"], train["exp_name"], epoch + 1))
    print("`Trainer.fit` stopped: `max_epochs=%d` reached." % train["epochs"])


def main():
    if "_CUDA_VISIBLE_DEVICES" in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = os.environ["_CUDA_VISIBLE_DEVICES"]
    parser = argparse.ArgumentParser()
    parser.add_argument("-c", "--config_file", type=str, default="configs/s1longer.yaml")
    args = parser.parse_args()
    _double.start("s1")
    with open(args.config_file) as f:
        config = yaml.load(f.read(), Loader=yaml.FullLoader)
    assert config["train"]["precision"] in ("32", "16-mixed", "bf16-mixed"), config["train"]["precision"]
    if config.get("pretrained_s1"):
        _double.require_file(config["pretrained_s1"], "pretrained_s1")  # upstream: torch.load
    os.makedirs(os.path.join(config["output_dir"], "ckpt"), exist_ok=True)
    worker = dt.start_workers()  # Lightning trains here; its DataLoader workers are children
    try:
        fit(config)
    finally:
        worker.terminate()


if __name__ == "__main__":
    main()
