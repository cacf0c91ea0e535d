"""Shared by the stub packages of the contract double's interpreter (see ../README.md).

Each stub (torch, torchaudio, torchcodec, transformers, gradio, nltk, fastapi) imports with a
__version__ in the range the service works with, so the doctor's probe finds a healthy engine
environment (numpy is the real one: the double's inference uses it).
Knobs (environment variables, optional):
DOUBLE_STUB_VERSIONS  "torch=2.10.0,gradio=5.1.0": report these versions instead
DOUBLE_STUB_BROKEN    "torchcodec,nltk": importing these fails as a broken install does
"""

import os


def stub(name, version):
    broken = [n.strip() for n in os.environ.get("DOUBLE_STUB_BROKEN", "").split(",")]
    if name in broken:
        raise ImportError(f"double: {name} is broken on purpose (DOUBLE_STUB_BROKEN)")
    for pair in os.environ.get("DOUBLE_STUB_VERSIONS", "").split(","):
        key, _, value = pair.partition("=")
        if key.strip() == name and value.strip():
            return value.strip()
    return version
