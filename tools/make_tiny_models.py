"""Write randomly initialised pretrained models with the shapes a GPT-SoVITS checkout expects, so
the whole pipeline runs on a CPU in minutes: an installation smoke test (the voices it trains are
noise). Our own code: it builds the checkout's own classes at run time and saves their state in
the formats the checkout's loaders read.

Run it with the ENGINE's interpreter (it needs torch and transformers; the service never does):

    $GSV_PYTHON tools/make_tiny_models.py --root $GSV_ROOT [--out DIR] [--versions v2ProPlus v1 ...]
        [--g2pw-assets DIR]

Without --out the files land in the checkout's GPT_SoVITS/pretrained_models, where upstream and
the service look by default; with --out, start the service with GSV_PRETRAINED_DIR=DIR.
--g2pw-assets also writes a stand-in for Chinese G2P's G2PW model into the checkout (its path is
fixed upstream), which offline machines need for zh with v2 and later (tools/g2pw_standin.py).

What is tiny and what is not, and why:
- BERT (masked LM, 2 layers) keeps hidden size 1024: the GPT stage projects 1024-dim features;
  its vocabulary is small (each CJK character becomes [UNK], still one token per character).
- HuBERT keeps hidden size 768 and the standard convolutional front end (50 frames/s), 2 layers.
- SoVITS G/D, the ERes2NetV2 speaker model and the GPT keep their full size: upstream infers the
  SoVITS version from the G file's size, and loads GPT weights strictly into the template's
  architecture. G is saved in half precision like upstream's pretrained files, with the
  quantizer's `inited` buffers set (else semantic extraction starts a k-means initialisation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# What upstream's web UI puts on sys.path (users.pth); mirrors gsv_service.engine.SYS_PATH_DIRS.
SYS_PATH_DIRS = ("", "GPT_SoVITS/BigVGAN", "tools", "tools/asr", "GPT_SoVITS", "tools/uvr5",
                 "GPT_SoVITS/eres2net")
# Relative to pretrained_models; mirrors gsv_service.engine.PRETRAINED.
FILES = {
    "v1": ("s2G488k.pth", "s2D488k.pth", "s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt"),
    "v2": ("gsv-v2final-pretrained/s2G2333k.pth", "gsv-v2final-pretrained/s2D2333k.pth",
           "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"),
    "v2Pro": ("v2Pro/s2Gv2Pro.pth", "v2Pro/s2Dv2Pro.pth", "s1v3.ckpt"),
    "v2ProPlus": ("v2Pro/s2Gv2ProPlus.pth", "v2Pro/s2Dv2ProPlus.pth", "s1v3.ckpt"),
}
SV_FILE = "sv/pretrained_eres2netv2w24s4ep4.ckpt"
BERT_DIR, HUBERT_DIR = "chinese-roberta-wwm-ext-large", "chinese-hubert-base"


def _setup(root: Path) -> None:
    os.chdir(root)  # upstream modules resolve several paths against the checkout root
    for d in reversed(SYS_PATH_DIRS):
        sys.path.insert(0, str(root / d) if d else str(root))


def _vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + list("，。！？、；：“”‘’（）《》…—·")
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + letters + [f"##{c}" for c in letters]
            + punct)


def make_bert(out: Path) -> Path:
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    d = out / BERT_DIR
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.txt").write_text("\n".join(_vocab()) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(d / "vocab.txt"), do_lower_case=True, tokenize_chinese_chars=True)
    tok.save_pretrained(str(d))
    cfg = BertConfig(vocab_size=len(_vocab()), hidden_size=1024, num_hidden_layers=2, num_attention_heads=16,
                     intermediate_size=256, max_position_embeddings=512)
    BertForMaskedLM(cfg).save_pretrained(str(d))
    return d


def make_hubert(out: Path) -> Path:
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    d = out / HUBERT_DIR
    cfg = HubertConfig(hidden_size=768, num_hidden_layers=2, num_attention_heads=12, intermediate_size=768)
    HubertModel(cfg).save_pretrained(str(d))
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(str(d))
    return d


def _s2_hps(root: Path, version: str):
    import utils  # GPT_SoVITS/utils.py

    name = "s2.json" if version in ("v1", "v2") else f"s2{version}.json"
    hps = utils.get_hparams_from_file(str(root / "GPT_SoVITS" / "configs" / name))
    hps.model.version = version  # what the web UI writes before training
    return hps


def make_sovits(root: Path, out: Path, version: str) -> list[Path]:
    import torch
    from module.models import MultiPeriodDiscriminator, SynthesizerTrn

    hps = _s2_hps(root, version)
    g = SynthesizerTrn(hps.data.filter_length // 2 + 1, hps.train.segment_size // hps.data.hop_length,
                       n_speakers=hps.data.n_speakers, **hps.model)
    for name, buf in g.named_buffers():
        if name.endswith("inited"):
            buf.fill_(1)
    d = MultiPeriodDiscriminator(hps.model.use_spectral_norm, version=version)
    g_rel, d_rel, _ = FILES[version]
    paths = []
    for rel, net in ((g_rel, g), (d_rel, d)):
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"weight": {k: v.half() for k, v in net.state_dict().items()},
                    "info": "tiny random weights (tools/make_tiny_models.py)"}, str(p))
        paths.append(p)
    return paths


def make_sv(out: Path) -> Path:
    import torch
    from ERes2NetV2 import ERes2NetV2

    p = out / SV_FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ERes2NetV2(baseWidth=24, scale=4, expansion=4).state_dict(), str(p))
    return p


def make_gpt(root: Path, out: Path, version: str) -> Path:
    import torch
    import yaml
    from AR.models.t2s_lightning_module import Text2SemanticLightningModule

    name = "s1longer.yaml" if version == "v1" else "s1longer-v2.yaml"
    config = yaml.safe_load((root / "GPT_SoVITS" / "configs" / name).read_text(encoding="utf-8"))
    model = Text2SemanticLightningModule(config, out, is_train=False)
    p = out / FILES[version][2]
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weight": {k: v.half() for k, v in model.state_dict().items()}, "config": config,
                "info": "tiny random weights (tools/make_tiny_models.py)"}, str(p))
    return p


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size


def semantic_version_of(path: Path) -> str:
    """The version 3-get-semantic.py infers from the G file's size."""
    size = path.stat().st_size
    if size < 82978 * 1024:
        return "v1"
    if size < 100 * 1024 * 1024:
        return "v2"
    if size < 103520 * 1024:
        return "v1"
    return "v2" if size < 700 * 1024 * 1024 else "v3"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=os.environ.get("GSV_ROOT"), help="GPT-SoVITS checkout")
    ap.add_argument("--out", type=Path, help="default: ROOT/GPT_SoVITS/pretrained_models")
    ap.add_argument("--versions", nargs="+", default=["v2ProPlus"], choices=list(FILES))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--g2pw-assets", type=Path, help="also write a G2PW stand-in (Chinese G2P, v2 and "
                    "later) into ROOT/GPT_SoVITS/text/G2PWModel from this folder's POLYPHONIC_CHARS.txt, "
                    "MONOPHONIC_CHARS.txt and config.py; see tools/g2pw_standin.py")
    args = ap.parse_args(argv)
    if not args.root or not (Path(args.root) / "GPT_SoVITS").is_dir():
        ap.error("--root (or GSV_ROOT) must name a GPT-SoVITS checkout")
    root = Path(args.root).resolve()
    out = (args.out or root / "GPT_SoVITS" / "pretrained_models").resolve()
    _setup(root)
    import torch

    torch.manual_seed(args.seed)
    made = [make_bert(out), make_hubert(out)]
    if any("Pro" in v for v in args.versions):
        made.append(make_sv(out))
    for v in args.versions:
        made += make_sovits(root, out, v)
        made.append(make_gpt(root, out, v))
    if args.g2pw_assets:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import g2pw_standin

        made.append(g2pw_standin.write(args.g2pw_assets.resolve(), root))
    report = {str(p.relative_to(out) if p.is_relative_to(out) else p): _size(p) for p in made}
    g_versions = {v: semantic_version_of(out / FILES[v][0]) for v in args.versions}
    print(json.dumps({"out": str(out), "bytes": report, "semantic_stage_reads_G_as": g_versions}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
