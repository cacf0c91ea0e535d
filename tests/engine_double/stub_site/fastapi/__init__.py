"""Stub of fastapi in the contract double's interpreter (upstream's gradio 4 web UI needs <0.116;
the double's scripts never import it, and the real one takes half a second to import)."""

from _double_stub import stub

__version__ = stub("fastapi", "0.115.14")
