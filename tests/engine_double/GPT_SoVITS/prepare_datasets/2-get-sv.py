# Contract double of GPT_SoVITS/prepare_datasets/2-get-sv.py (no ERes2NetV2; fake vectors).
import os
import traceback

inp_text = os.environ.get("inp_text")
inp_wav_dir = os.environ.get("inp_wav_dir")
i_part = os.environ.get("i_part")
all_parts = os.environ.get("all_parts")
opt_dir = os.environ.get("opt_dir")
sv_path = os.environ.get("sv_path")

import _double  # noqa: E402
from tools.my_utils import clean_path  # noqa: E402

_double.start("sv")
is_half = _double.is_half()
sv_cn_dir = "%s/7-sv_cn" % (opt_dir)
wav32dir = "%s/5-wav32k" % (opt_dir)
os.makedirs(sv_cn_dir, exist_ok=True)
os.makedirs(wav32dir, exist_ok=True)
_double.require_file(sv_path, "sv_path")  # upstream: torch.load(sv_path)


def name2go(wav_name):
    sv_cn_path = "%s/%s.pt" % (sv_cn_dir, wav_name)
    if os.path.exists(sv_cn_path):
        return
    _double.item_hook(wav_name)
    with open("%s/%s" % (wav32dir, wav_name), "rb"):  # upstream: torchaudio.load of 5-wav32k
        pass
    _double.fake_save({"kind": "sv", "shape": [1, 20480]}, sv_cn_path)


for line in _double.read_list(inp_text)[int(i_part) :: int(all_parts)]:
    try:
        wav_name, spk_name, language, text = line.split("|")
        name2go(os.path.basename(clean_path(wav_name)))
    except:  # noqa: E722
        print(line, traceback.format_exc())
