"""Contract double of upstream's tools/my_utils.py: clean_path and load_audio (WAV via stdlib)."""

import os
import wave


def clean_path(path_str: str):
    if path_str.endswith(("\\", "/")):
        return clean_path(path_str[0:-1])
    path_str = path_str.replace("/", os.sep).replace("\\", os.sep)
    return path_str.strip(" '\n\"\u202a")


def load_audio(file, sr):
    """Frame count and the raw frames of a WAV file (upstream decodes with ffmpeg)."""
    file = clean_path(file)
    if os.path.exists(file) is False:
        raise RuntimeError("You input a wrong audio path that does not exists, please fix it!")
    with wave.open(file, "rb") as w:
        return w.getnframes(), w.getframerate(), w.readframes(w.getnframes())
