# Contract double of GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py (no HuBERT; fake features).
import os
import traceback

inp_text = os.environ.get("inp_text")
inp_wav_dir = os.environ.get("inp_wav_dir")
exp_name = os.environ.get("exp_name")
i_part = os.environ.get("i_part")
all_parts = os.environ.get("all_parts")
opt_dir = os.environ.get("opt_dir")
cnhubert_base_dir = os.environ.get("cnhubert_base_dir")

import _double  # noqa: E402
from tools.my_utils import clean_path, load_audio  # noqa: E402

_double.start("hubert")
is_half = _double.is_half()
hubert_dir = "%s/4-cnhubert" % (opt_dir)
wav32dir = "%s/5-wav32k" % (opt_dir)
os.makedirs(opt_dir, exist_ok=True)
os.makedirs(hubert_dir, exist_ok=True)
os.makedirs(wav32dir, exist_ok=True)
_double.require_file(cnhubert_base_dir, "cnhubert_base_dir")  # upstream: cnhubert.get_model()


def name2go(wav_name, wav_path):
    hubert_path = "%s/%s.pt" % (hubert_dir, wav_name)
    if os.path.exists(hubert_path):
        return
    _double.item_hook(wav_name)
    frames, _sr, data = load_audio(wav_path, 32000)
    with open("%s/%s" % (wav32dir, wav_name), "wb") as f:
        with open(wav_path, "rb") as src:
            f.write(src.read())
    _double.fake_save({"kind": "hubert", "shape": [1, 768, max(1, frames // 640)]}, hubert_path)


for line in _double.read_list(inp_text)[int(i_part) :: int(all_parts)]:
    try:
        wav_name, spk_name, language, text = line.split("|")
        wav_name = clean_path(wav_name)
        if inp_wav_dir != "" and inp_wav_dir != None:
            wav_name = os.path.basename(wav_name)
            wav_path = "%s/%s" % (inp_wav_dir, wav_name)
        else:
            wav_path = wav_name
            wav_name = os.path.basename(wav_name)
        name2go(wav_name, wav_path)
    except:  # noqa: E722
        print(line, traceback.format_exc())
