"""Contract double of GPT_SoVITS/sv.py: the speaker model path is this module global."""
import os

sv_path = "GPT_SoVITS/pretrained_models/sv/pretrained_eres2netv2w24s4ep4.ckpt"


class SV:
    def __init__(self, device, is_half):
        if not os.path.exists(sv_path):  # upstream: torch.load(sv_path)
            raise FileNotFoundError(sv_path)
