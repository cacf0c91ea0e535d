"""Stub of torchcodec in the contract double's interpreter: importable, with a version; nothing else."""

from _double_stub import stub

__version__ = stub("torchcodec", "0.8.1")
