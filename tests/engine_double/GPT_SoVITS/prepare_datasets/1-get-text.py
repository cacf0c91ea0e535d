# Contract double of GPT_SoVITS/prepare_datasets/1-get-text.py (no BERT, no G2P; fake features).
import os
import traceback

inp_text = os.environ.get("inp_text")
inp_wav_dir = os.environ.get("inp_wav_dir")
exp_name = os.environ.get("exp_name")
i_part = os.environ.get("i_part")
all_parts = os.environ.get("all_parts")
opt_dir = os.environ.get("opt_dir")
bert_pretrained_dir = os.environ.get("bert_pretrained_dir")
version = os.environ.get("version", None)

import _double  # noqa: E402 - needs GPT_SoVITS on sys.path, like upstream's `from text.cleaner ...`
from tools.my_utils import clean_path  # noqa: E402 - needs the checkout root on sys.path

_double.start("text")
is_half = _double.is_half()
LANGS = {"ZH": "zh", "zh": "zh", "JP": "ja", "jp": "ja", "JA": "ja", "ja": "ja", "EN": "en", "en": "en",
         "En": "en", "KO": "ko", "Ko": "ko", "ko": "ko", "yue": "yue", "YUE": "yue", "Yue": "yue"}


def clean_text(text, lan):
    """Fake G2P: one phone per non-space character. Blank text, as upstream: the English
    front-end returns no phones (the line is written with an empty phone column), the others raise."""
    chars = [c for c in text if not c.isspace()]
    if not chars and lan == "en":
        return [], [], ""
    if not chars:
        raise ValueError("double: no phones for empty text")
    return ["%s%d" % (lan, ord(c) % 97) for c in chars], [1] * len(chars), "".join(chars)


txt_path = "%s/2-name2text-%s.txt" % (opt_dir, i_part)
if os.path.exists(txt_path) == False:
    bert_dir = "%s/3-bert" % (opt_dir)
    os.makedirs(opt_dir, exist_ok=True)
    os.makedirs(bert_dir, exist_ok=True)
    _double.require_file(bert_pretrained_dir, "bert_pretrained_dir")
    todo, res = [], []
    for line in _double.read_list(inp_text)[int(i_part) :: int(all_parts)]:
        try:
            wav_name, spk_name, language, text = line.split("|")
            if language in LANGS:
                todo.append([wav_name, text, LANGS[language]])
            else:
                print(f"\033[33m[Waring] The {language = } of {wav_name} is not supported for training.\033[0m")
        except:  # noqa: E722 - upstream catches everything per line
            print(line, traceback.format_exc())
    for name, text, lan in todo:
        try:
            name = os.path.basename(clean_path(name))
            print(name)
            _double.item_hook(name)
            phones, word2ph, norm_text = clean_text(text, lan)
            path_bert = "%s/%s.pt" % (bert_dir, name)
            if os.path.exists(path_bert) == False and lan == "zh":
                _double.fake_save({"kind": "bert", "shape": [1024, len(phones)]}, path_bert)
            res.append([name, " ".join(phones), word2ph, norm_text])
        except:  # noqa: E722
            print(name, text, traceback.format_exc())
    opt = ["%s\t%s\t%s\t%s" % tuple(r) for r in res]
    with open(txt_path, "w", encoding="utf8") as f:
        f.write("\n".join(opt) + "\n")
