"""Stub of gradio in the contract double's interpreter: importable, with a version; nothing else."""

from _double_stub import stub

__version__ = stub("gradio", "4.44.1")
