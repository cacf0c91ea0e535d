"""Training progress parsing, on output captured from the real engine (s2_train.py with tiny models
on a CPU; PyTorch Lightning 2.6's bar for s1_train.py)."""

from __future__ import annotations

import pytest

from gsv_service.progress_parsers import S1Progress, S2Progress, SegmentReader

# s2_train.py, v2ProPlus, 8 utterances, batch 2 (real output, \r as tqdm writes it)
S2_REAL = (
    "[Gloo] Rank 0 is connected to 0 peer ranks. Expected number of connected peer ranks is : 0\n"
    "phoneme_data_len: 8\nwav_data_len: 96\n\n"
    "  0%|          | 0/96 [00:00<?, ?it/s]\r100%|██████████| 96/96 [00:00<00:00, 140150.78it/s]\n"
    "skipped_phone:  0 , skipped_dur:  0\ntotal left:  96\n"
    "INFO:spk:loaded pretrained /m/v2Pro/s2Gv2ProPlus.pth\n"
    "start training from epoch 1\n\n"
    "  0%|          | 0/48 [00:00<?, ?it/s]INFO:spk:Train Epoch: 1 [0%]\n"
    "INFO:spk:[7.940153121948242, 6.916681289672852, 0.20630235970020294, 195.85739135742188, 0.0, "
    "135.70785522460938, 0, 9.99875e-05]\n\n"
    "  2%|▏         | 1/48 [02:17<1:47:51, 137.69s/it]\r  4%|▍         | 2/48 [03:46<1:23:25, 108.81s/it]"
)


def _feed(parser, text: str) -> None:
    import re
    for seg in re.split(r"[\r\n]", text):
        if seg.strip():
            parser.feed(seg)


def test_s2_real_output_gives_epoch_step_and_losses():
    p = S2Progress(epochs=2)
    _feed(p, S2_REAL)
    fraction, message, m = p.report()
    assert (m["epoch"], m["iteration"], m["iterations_per_epoch"]) == (1, 2, 48)
    assert (m["step"], m["total_steps"]) == (2, 96)   # the dataset's own 96/96 bar is not an epoch
    assert m["losses"]["loss_mel"] == pytest.approx(195.857, abs=1e-3) and m["global_step"] == 0
    assert fraction == pytest.approx(2 / 96) and "epoch 1/2, step 2/96" in message


def test_s2_epoch_end_and_resume():
    p = S2Progress(epochs=3)
    _feed(p, "start training from epoch 2\n 50%|#####     | 24/48 [00:10<00:10,  2.00it/s]")
    assert p.report()[0] == pytest.approx((1 + 0.5) / 3)
    _feed(p, "INFO:spk:====> Epoch: 2\n")
    assert p.report()[2]["epoch"] == 3
    _feed(p, "100%|##########| 48/48 [00:10<00:00]\nINFO:spk:====> Epoch: 3\ntraining done\n")
    assert p.report()[0] == 1.0


def test_s1_lightning_tqdm_bar():
    """Lightning without rich: its TQDMProgressBar."""
    p = S1Progress(epochs=2)
    _feed(p, "Epoch 0:  50%|█████     | 12/24 [00:30<00:30,  0.40it/s, v_num=0, total_loss_step=612.0, "
             "lr_step=0.002, top_3_acc_step=0.0312]\rEpoch 1:  25%|██▌       | 6/24 [00:15<00:45,  0.40it/s, "
             "v_num=0, total_loss_step=580.5, lr_step=0.002, top_3_acc_step=0.0625, total_loss_epoch=600.0]")
    fraction, _, m = p.report()
    assert (m["epoch"], m["iteration"], m["step"], m["total_steps"]) == (2, 6, 30, 48)
    assert m["losses"] == {"total_loss": 580.5} and m["top_3_acc"] == 0.0625 and m["lr"] == 0.002
    assert fraction == pytest.approx(30 / 48)


# PyTorch Lightning 2.6 with rich installed (RichProgressBar), as s1_train.py draws it when rich
# believes it writes to a terminal (env from engine_configs.s1_env); captured raw.
S1_RICH_REAL = (
    "\x1b[?25l\r\x1b[2KEpoch 0/1                                           0/12 \x1b[2m0:00:00 • -:--:--\x1b[0m "
    "\x1b[2;4m0.00it/s\x1b[0m  \r\x1b[2KEpoch 1/1  ━━━━━━━━━━━━━━━━╸                        5/12 \x1b[2m0:00:00 • "
    "0:00:01\x1b[0m \x1b[2;4m18.97it/s\x1b[0m \x1b[3mtotal_loss_step: 0.162 lr_step: 0.002 top_3_acc_step: 0.500 "
    "total_loss_epoch: 0.505 lr_epoch: 0.002 top_3_acc_epoch: 0.500\x1b[0m"
)


def test_s1_rich_bar_through_the_segment_reader(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(S1_RICH_REAL + "\n", encoding="utf-8")
    p = S1Progress(epochs=2)
    for seg in SegmentReader(log).segments():
        p.feed(seg)
    fraction, message, m = p.report()
    assert (m["epoch"], m["iteration"], m["step"], m["total_steps"]) == (2, 5, 17, 24)
    assert m["losses"] == {"total_loss": 0.162} and m["top_3_acc"] == 0.5 and m["lr"] == 0.002
    assert fraction == pytest.approx(17 / 24) and "epoch 2/2" in message


def test_segment_reader_splits_on_carriage_returns_and_keeps_partial_tail(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"a\r b\npart")
    r = SegmentReader(log)
    assert r.segments() == ["a", " b"]
    with open(log, "ab") as f:
        f.write(b"ial\rnext\n")
    assert r.segments() == ["partial", "next"]
    assert SegmentReader(tmp_path / "missing.log").segments() == []
