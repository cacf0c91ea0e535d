"""Stub of torch in the contract double's interpreter: a version and torch.cuda, nothing else."""

from _double_stub import stub

__version__ = stub("torch", "2.9.1+cpu")

from torch import cuda  # noqa: E402
