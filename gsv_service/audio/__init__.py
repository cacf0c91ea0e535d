"""Built-in audio work (numpy, soundfile, the ffmpeg CLI): probing and conversion, the slicer,
spectral denoise and level analysis. Pure functions over arrays and paths: the steps run them
in child processes (gsv_service.jobs), never in the service's own threads."""

TARGET_SR = 32000  # what every GPT-SoVITS stage reads (5-wav32k, the web UI's slicer)
