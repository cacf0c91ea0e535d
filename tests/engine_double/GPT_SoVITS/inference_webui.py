"""Contract double of GPT_SoVITS/inference_webui.py: the env it reads at import, dict_language,
change_gpt_weights, the generators change_sovits_weights and get_tts_wav. No model: the audio is a
short tone. See tests/engine_double/README.md."""
import json
import os
import wave

import numpy as np

import _double

_double.start("infer")
version = model_version = os.environ.get("version", "v2")
gpt_path = os.environ.get("gpt_path", "")
sovits_path = os.environ.get("sovits_path", "")
cnhubert_base_path = os.environ.get("cnhubert_base_path", "GPT_SoVITS/pretrained_models/chinese-hubert-base")
bert_path = os.environ.get("bert_path", "GPT_SoVITS/pretrained_models/chinese-roberta-wwm-ext-large")
is_half = _double.is_half()


def i18n(text):
    return text


dict_language_v1 = {"中文": "all_zh", "英文": "en", "日文": "all_ja", "中英混合": "zh", "日英混合": "ja",
                    "多语种混合": "auto"}
dict_language_v2 = {"中文": "all_zh", "英文": "en", "日文": "all_ja", "粤语": "all_yue", "韩文": "all_ko",
                    "中英混合": "zh", "日英混合": "ja", "粤英混合": "yue", "韩英混合": "ko", "多语种混合": "auto",
                    "多语种混合(粤语)": "auto_yue"}
dict_language = dict_language_v1 if version == "v1" else dict_language_v2
for _path in (bert_path, cnhubert_base_path):  # upstream: from_pretrained / cnhubert.get_model()
    _double.require_file(_path, "pretrained model")


def change_sovits_weights(sovits_path, prompt_language=None, text_language=None):
    global vq_model, dict_language, model_version
    with open(sovits_path) as f:  # upstream: load_sovits_new
        saved = json.load(f)
    model_version = saved.get("config", {}).get("model", {}).get("version", version)
    dict_language = dict_language_v1 if model_version == "v1" else dict_language_v2
    vq_model = {"path": sovits_path}
    if model_version in {"v2Pro", "v2ProPlus"}:
        from sv import SV

        SV("cpu", is_half)
    yield {"__type__": "update"}


try:
    next(change_sovits_weights(sovits_path))
except:  # noqa: E722 - upstream swallows errors of this import-time load
    pass


def change_gpt_weights(gpt_path):
    global t2s_model
    with open(gpt_path) as f:
        t2s_model = json.load(f)


change_gpt_weights(gpt_path)


def get_tts_wav(ref_wav_path, prompt_text, prompt_language, text, text_language, how_to_cut="不切", top_k=20,
                top_p=0.6, temperature=0.6, ref_free=False, speed=1, if_freeze=False, inp_refs=None,
                sample_steps=8, if_sr=False, pause_second=0.3, use_cuda_graph=False):
    prompt_language, text_language = dict_language[prompt_language], dict_language[text_language]
    with wave.open(ref_wav_path, "rb") as w:
        seconds = w.getnframes() / w.getframerate()
    if seconds > 10 or seconds < 3:
        raise OSError("参考音频在3~10秒范围外，请更换！")
    n = int(32000 * max(0.5, 0.1 * len(text)))
    tone = (np.sin(np.arange(n) * 2 * np.pi * 220 / 32000) * 8000).astype(np.int16)
    yield 32000, tone
