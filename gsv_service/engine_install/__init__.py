"""The engine installer: an upstream GPT-SoVITS checkout at the pinned commit, its own virtual
environment with the torch build that fits the machine, and the pretrained models.
Run `python -m gsv_service.engine_install --help`."""
