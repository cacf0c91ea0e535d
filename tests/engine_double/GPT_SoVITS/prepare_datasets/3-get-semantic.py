# Contract double of GPT_SoVITS/prepare_datasets/3-get-semantic.py (no SoVITS; fake tokens).
import json
import os
import traceback

inp_text = os.environ.get("inp_text")
exp_name = os.environ.get("exp_name")
i_part = os.environ.get("i_part")
all_parts = os.environ.get("all_parts")
opt_dir = os.environ.get("opt_dir")
pretrained_s2G = os.environ.get("pretrained_s2G")
s2config_path = os.environ.get("s2config_path")

if os.path.exists(pretrained_s2G):
    ...
else:
    raise FileNotFoundError(pretrained_s2G)

import _double  # noqa: E402
from tools.my_utils import clean_path  # noqa: E402

_double.start("semantic")
is_half = _double.is_half()
hubert_dir = "%s/4-cnhubert" % (opt_dir)
semantic_path = "%s/6-name2semantic-%s.tsv" % (opt_dir, i_part)
if os.path.exists(semantic_path) == False:
    os.makedirs(opt_dir, exist_ok=True)
    with open(s2config_path) as f:  # upstream: utils.get_hparams_from_file
        hps = json.load(f)
    assert "model" in hps and "data" in hps, "s2 config template without model/data"

    def name2go(wav_name, lines):
        hubert_path = "%s/%s.pt" % (hubert_dir, wav_name)
        if os.path.exists(hubert_path) == False:
            return
        _double.item_hook(wav_name)
        with open(hubert_path) as f:
            frames = json.load(f)["shape"][-1]
        lines.append("%s\t%s" % (wav_name, " ".join(str((i * 37) % 1024) for i in range(frames))))

    lines1 = []
    for line in _double.read_list(inp_text)[int(i_part) :: int(all_parts)]:
        try:
            wav_name, spk_name, language, text = line.split("|")
            name2go(os.path.basename(clean_path(wav_name)), lines1)
        except:  # noqa: E722
            print(line, traceback.format_exc())
    with open(semantic_path, "w", encoding="utf8") as f:
        f.write("\n".join(lines1))
