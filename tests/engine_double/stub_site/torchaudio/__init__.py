"""Stub of torchaudio in the contract double's interpreter: importable, with a version; nothing else."""

from _double_stub import stub

__version__ = stub("torchaudio", "2.9.1+cpu")
