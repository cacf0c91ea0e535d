"""What the engine's environment can do: package versions, CUDA devices and their memory, NLTK data.

Run by the ENGINE's interpreter with cwd = the checkout root and the checkout on PYTHONPATH (as
every engine script), never by the service: standard library only, and it must not import
gsv_service. It prints exactly one JSON object on stdout, as its last line; anything the imported
packages print goes to stderr. The service (gsv_service/probe.py) runs it with a timeout and reads
a bounded amount of its output.
"""

import importlib
import json
import os
import sys
import time
from typing import Any, Dict  # no builtin generics: any interpreter may run this

PACKAGES = ("torch", "torchaudio", "torchcodec", "transformers", "gradio", "numpy", "fastapi", "nltk")
NLTK_RESOURCES = ("taggers/averaged_perceptron_tagger_eng", "corpora/cmudict")
GIB = 1024 ** 3


def _error(e: BaseException) -> str:
    text = "%s: %s" % (type(e).__name__, e)
    return text.strip()[:500]


def probe_package(name: str, modules: Dict[str, Any]) -> Dict[str, Any]:
    sys.stderr.write("probe: importing %s\n" % name)  # the last such line names an import that hangs
    sys.stderr.flush()
    t0 = time.monotonic()
    try:
        mod = importlib.import_module(name)
    except BaseException as e:  # noqa: BLE001 - any import failure is the answer (even SystemExit)
        return {"version": None, "error": _error(e), "seconds": round(time.monotonic() - t0, 2)}
    modules[name] = mod
    version = getattr(mod, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version
            version = dist_version(name)
        except Exception:  # noqa: BLE001
            version = None
    return {"version": str(version) if version is not None else None, "error": None,
            "seconds": round(time.monotonic() - t0, 2)}


def probe_cuda(torch: Any) -> Dict[str, Any]:
    out = {"available": False, "devices": [], "error": None,
           "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}  # type: Dict[str, Any]
    if torch is None:
        out["error"] = "torch is not importable"
        return out
    try:
        out["available"] = bool(torch.cuda.is_available())
        if not out["available"]:
            return out
        for i in range(torch.cuda.device_count()):
            dev = {"index": i, "name": str(torch.cuda.get_device_name(i))}  # type: Dict[str, Any]
            try:
                free, total = torch.cuda.mem_get_info(i)
                dev.update(total_gib=round(total / GIB, 2), free_gib=round(free / GIB, 2))
            except Exception as e:  # noqa: BLE001 - a busy or broken device still gets listed
                dev["error"] = _error(e)
            out["devices"].append(dev)
    except Exception as e:  # noqa: BLE001
        out["error"] = _error(e)
    return out


def probe_nltk(nltk: Any) -> Dict[str, Any]:
    out = {"paths": [], "found": {}, "error": None}  # type: Dict[str, Any]
    if nltk is None:
        out["error"] = "nltk is not importable"
        return out
    try:
        out["paths"] = [str(p) for p in nltk.data.path][:50]
        for res in NLTK_RESOURCES:
            try:
                out["found"][res] = str(nltk.data.find(res))
            except LookupError:
                out["found"][res] = None
    except Exception as e:  # noqa: BLE001
        out["error"] = _error(e)
    return out


def main() -> None:
    real_stdout = os.dup(1)
    os.dup2(2, 1)  # whatever the packages print (C code included) goes to stderr
    t0 = time.monotonic()
    modules = {}  # type: Dict[str, Any]
    try:
        packages = {name: probe_package(name, modules) for name in PACKAGES}
        result = {
            "python": {"version": sys.version.split()[0], "executable": sys.executable,
                       "prefix": sys.prefix},
            "packages": packages,
            "cuda": probe_cuda(modules.get("torch")),
            "nltk": probe_nltk(modules.get("nltk")),
            "seconds": round(time.monotonic() - t0, 2),
        }
    finally:
        sys.stdout.flush()
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
