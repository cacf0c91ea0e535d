"""A stand-in for the two NLTK resources English G2P needs (g2p_en, imported by upstream's
text/english.py), for machines that cannot download them: NLTK's cmudict corpus rebuilt from the
checkout's own GPT_SoVITS/text/cmudict.rep (the same CMU dictionary), and an averaged perceptron
tagger with no weights that tags every word as a noun (upstream uses the tags only to pick between
a few homographs' readings). Standard library only.

    python tools/nltk_standin.py --root GPT-SoVITS --out DIR   # writes DIR/corpora, DIR/taggers

Point NLTK at DIR (the engine venv's <prefix>/nltk_data is searched by default). Each resource is
written both unpacked and as the .zip that g2p_en looks for before it tries to download.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import zipfile
from pathlib import Path

TAGGER = "averaged_perceptron_tagger_eng"
CMU_FIRST_ENTRY_LINE = 57  # cmudict.rep's header ends here (upstream's read_dict_new skips the same)


def _zip_folder(folder: Path) -> None:
    with zipfile.ZipFile(folder.with_suffix(".zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            z.write(p, p.relative_to(folder.parent).as_posix())


def write_cmudict(checkout: Path, out: Path) -> Path:
    src = checkout / "GPT_SoVITS" / "text" / "cmudict.rep"
    folder = out / "corpora" / "cmudict"
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with src.open(encoding="utf-8", errors="replace") as f, (folder / "cmudict").open("w", encoding="utf-8") as o:
        for i, line in enumerate(f, 1):
            parts = line.strip().split("  ", 1)
            if i < CMU_FIRST_ENTRY_LINE or len(parts) != 2 or line.startswith(";;;"):
                continue
            word = parts[0].lower()
            counts[word] = counts.get(word, 0) + 1
            o.write(f"{word} {counts[word]} {parts[1].replace(' - ', ' ').strip()}\n")
    (folder / "README").write_text("CMU Pronouncing Dictionary in NLTK's layout, rebuilt from GPT-SoVITS's "
                                   "text/cmudict.rep by gsv-service tools/nltk_standin.py.\n")
    _zip_folder(folder)
    return folder


def write_tagger(out: Path) -> Path:
    folder = out / "taggers" / TAGGER
    folder.mkdir(parents=True, exist_ok=True)
    # NLTK >= 3.9 loads the tagger from these three JSON files; with no weights every word gets
    # the first class.
    (folder / f"{TAGGER}.weights.json").write_text("{}")
    (folder / f"{TAGGER}.tagdict.json").write_text("{}")
    (folder / f"{TAGGER}.classes.json").write_text(json.dumps(["NN"]))
    (folder / "STAND-IN.txt").write_text("Not NLTK's tagger: tags every word NN (gsv-service "
                                         "tools/nltk_standin.py).\n")
    _zip_folder(folder)
    # g2p_en looks for the tagger under its pre-3.9 name before it imports; NLTK itself loads the one above.
    shutil.copyfile(folder.with_suffix(".zip"), folder.parent / "averaged_perceptron_tagger.zip")
    return folder


def write(checkout: Path, out: Path) -> Path:
    """Write both resources under `out` (replaced whole)."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write_cmudict(checkout, tmp)
    write_tagger(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="GPT-SoVITS checkout (for text/cmudict.rep)")
    ap.add_argument("--out", type=Path, required=True, help="the nltk_data folder to write")
    args = ap.parse_args(argv)
    print(write(args.root.resolve(), args.out.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
