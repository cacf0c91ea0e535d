"""Contract double of GPT_SoVITS/s2_train.py: same CLI, config keys, child process, log lines and
files; no model. See tests/engine_double/README.md."""
import argparse
import json
import logging
import os
import sys

import _double
import _double_train as dt

logging.basicConfig(stream=sys.stdout, level=logging.INFO)  # upstream: utils.py at import


def get_hparams():
    parser = argparse.ArgumentParser()
    parser.add_argument("-c", "--config", type=str, default="./configs/s2.json")
    args = parser.parse_args()
    with open(args.config) as f:
        return json.load(f)


def run(rank, hps):
    logging.basicConfig(stream=sys.stdout, level=logging.INFO)
    exp_dir, train = hps["data"]["exp_dir"], hps["train"]
    version = hps["model"]["version"]
    logger = logging.getLogger(os.path.basename(exp_dir))
    os.makedirs(hps["s2_ckpt_dir"], exist_ok=True)
    logger.info(hps)
    items = dt.dataset(exp_dir, version in {"v2Pro", "v2ProPlus"})
    n = -(-len(items) // train["batch_size"])
    state = "%s/logs_s2_%s" % (exp_dir, version)
    last = dt.latest(os.path.join(state, "G_*.pth"))
    if last:
        with open(last) as f:
            epoch_str = json.load(f)["iteration"] + 1
        logger.info("loaded D")
    else:
        epoch_str = 1
        if train["pretrained_s2G"] and os.path.exists(train["pretrained_s2G"]):
            logger.info("loaded pretrained %s" % train["pretrained_s2G"])
    global_step = (epoch_str - 1) * n
    print("start training from epoch %s" % epoch_str)
    for epoch in range(epoch_str, train["epochs"] + 1):
        dt.fail_at(epoch)
        for batch_idx in range(n):
            dt.step_pause()
            if global_step % train["log_interval"] == 0:
                logger.info("Train Epoch: {} [{:.0f}%]".format(epoch, 100.0 * batch_idx / n))
                logger.info([3.1, 2.2, 1.3, 24.5, 0.6, 1.7] + [global_step, train["learning_rate"]])
            global_step += 1
            dt.bar(batch_idx + 1, n)
        sys.stderr.write("\n")
        if epoch % train["save_every_epoch"] == 0:
            tag = global_step if train["if_save_latest"] == 0 else 233333333333
            for kind in "GD":
                dt.save({"iteration": epoch}, os.path.join(state, "%s_%s.pth" % (kind, tag)))
            if train["if_save_every_weights"] == True:
                name = hps["name"] + "_e%s_s%s" % (epoch, global_step)
                dt.save({"weight": "double", "config": hps, "info": "%sepoch_%siteration" % (epoch, global_step)},
                        "%s/%s.pth" % (hps["save_weight_dir"], name))
                logger.info("saving ckpt %s_e%s:%s" % (hps["name"], epoch, "Success."))
        logger.info("====> Epoch: {}".format(epoch))


def main():
    hps = get_hparams()
    os.environ["CUDA_VISIBLE_DEVICES"] = hps["train"]["gpu_numbers"].replace("-", ",")
    _double.start("s2")
    for key in ("batch_size", "epochs", "text_low_lr_rate", "pretrained_s2G", "pretrained_s2D", "if_save_latest",
                "if_save_every_weights", "save_every_epoch", "fp16_run"):
        assert key in hps["train"], "train.%s missing from the config" % key
    dt.spawn(run, (hps,))  # upstream: mp.spawn(run, nprocs=n_gpus, args=(n_gpus, hps))
    print("training done")


if __name__ == "__main__":
    main()
