"""Stub of transformers in the contract double's interpreter: importable, with a version; nothing else."""

from _double_stub import stub

__version__ = stub("transformers", "4.57.1")
