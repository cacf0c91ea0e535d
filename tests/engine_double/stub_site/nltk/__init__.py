"""Stub of nltk in the contract double's interpreter: nltk.data.path and nltk.data.find."""

from _double_stub import stub

__version__ = stub("nltk", "3.9.2")

from nltk import data  # noqa: E402
