"""The installer's model phase: the plan per version as data, and downloads through the real
huggingface_hub client against a local stand-in for the hub (tests/fake_hub.py) on 127.0.0.1:
resume of a broken download, a wrong sha256 refused, unsafe archives refused, re-runs that touch
nothing, --models-from copies and the free-disk check."""

from __future__ import annotations

import hashlib
import io
import random
import re
import stat
import time
import zipfile
from pathlib import Path

import pytest

from gsv_service.engine_install import downloads, plan
from gsv_service.engine_install.downloads import DownloadError, install_models, missing_items, resolve_endpoint
from gsv_service.engine_install.presence import default_path, human_size
from tests.fake_hub import FakeHub

MiB = plan.MiB
WEIGHTS = 100 * 1024  # above presence's 64 KiB floor for weights files
V2PP = ["bert", "cnhubert", "v2ProPlus.s2G", "v2ProPlus.s2D", "s1v3", "sv", "g2pw", "nltk", "langdetect"]


def _bytes(seed: str, n: int = WEIGHTS) -> bytes:
    return random.Random(seed).randbytes(n)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


G2PW_FILES = {"g2pW.onnx": _bytes("onnx"), "POLYPHONIC_CHARS.txt": b"\xe4\xb8\xad\n", "MONOPHONIC_CHARS.txt": b"a\n",
              "config.py": b"model_source = 'bert'\n", "char_bopomofo_dict.json": b"{}",
              "bopomofo_to_pinyin_wo_tune_dict.json": b"{}"}
NLTK_FILES = {"taggers/averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.weights.json": b"{}" * 20,
              "corpora/cmudict/cmudict": b"HELLO  HH AH0 L OW1\n" * 50, "corpora/cmudict/README": b"cmudict\n"}


def _item_files(item: plan.ModelItem) -> dict[str, bytes]:
    """What the fake hub serves for an item: repo path -> content."""
    if item.kind == "folder":
        return {f"{item.path}/config.json": b'{"model_type": "%s"}' % item.key.encode(),
                f"{item.path}/pytorch_model.bin": _bytes(item.key)}
    if item.key == "g2pw":
        return {item.path: _zip({f"G2PWModel/{k}": v for k, v in G2PW_FILES.items()})}
    if item.key == "nltk":
        return {item.path: _zip({f"nltk_data/{k}": v for k, v in NLTK_FILES.items()})}
    return {item.path: _bytes(item.key)}


@pytest.fixture(autouse=True)
def _hf_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no user cache or token is touched
    for var in ("HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def hub():
    h = FakeHub()
    for item in plan.ITEMS:
        for path, data in _item_files(item).items():
            h.add(item.repo, path, data)
    with h:
        yield h


@pytest.fixture
def dirs(tmp_path) -> tuple[Path, Path]:
    checkout, venv = tmp_path / "engine" / "GPT-SoVITS", tmp_path / "engine" / "venv"
    checkout.mkdir(parents=True)
    venv.mkdir()
    return checkout, venv


def _install(items, dirs, hub=None, **kw):
    lines: list[str] = []
    kw.setdefault("endpoint", hub.url if hub else None)
    rep = install_models(items, *dirs, log=lines.append, progress=False, **kw)
    return rep, "\n".join(lines)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cdn_gets(hub: FakeHub, path: str) -> list[str | None]:
    return [r.range for r in hub.file_gets() if r.path.endswith("/" + path)]


# ---- the plan as data ----------------------------------------------------------------------------

def test_plan_for_v2proplus_names_its_files_paths_and_sizes():
    items = plan.model_plan(["v2ProPlus"])
    assert [i.key for i in items] == V2PP
    where = {i.key: (i.kind, i.repo, i.path, i.base, i.dest) for i in items}
    pm = plan.PRETRAINED
    assert where["v2ProPlus.s2G"] == ("file", plan.MAIN_REPO, "v2Pro/s2Gv2ProPlus.pth", "checkout",
                                      f"{pm}/v2Pro/s2Gv2ProPlus.pth")
    assert where["bert"] == ("folder", plan.MAIN_REPO, "chinese-roberta-wwm-ext-large", "checkout",
                             f"{pm}/chinese-roberta-wwm-ext-large")
    assert where["g2pw"] == ("zip", plan.EXTRAS_REPO, "G2PWModel.zip", "checkout", "GPT_SoVITS/text/G2PWModel")
    assert where["nltk"] == ("zip", plan.EXTRAS_REPO, "nltk_data.zip", "venv", "nltk_data")
    assert where["langdetect"] == ("file", plan.LANGID_REPO, "lid.176.bin", "checkout",
                                   f"{pm}/fast_langdetect/lid.176.bin")
    assert not any(i.path.startswith(("s2G488k", "s2D488k", "gsv-v2final")) for i in items)
    sizes = {i.key: i.size_hint // MiB for i in items}
    assert sizes == {"bert": 651, "cnhubert": 181, "v2ProPlus.s2G": 159, "v2ProPlus.s2D": 89, "s1v3": 148,
                     "sv": 103, "g2pw": 589, "nltk": 29, "langdetect": 126}
    assert plan.plan_size(items) == sum(sizes.values()) * MiB
    assert plan.model_plan() == items  # the task default


def test_plan_for_v1_and_several_versions():
    v1 = plan.model_plan(["v1"])
    assert [i.key for i in v1] == ["bert", "cnhubert", "v1.s2G", "v1.s2D", "v1.s1", "nltk", "langdetect"]
    assert {i.path for i in v1} >= {"s2G488k.pth", "s2D488k.pth"}
    both = plan.model_plan(["v2ProPlus", "v2", "v2ProPlus"])
    assert [i.key for i in both] == ["bert", "cnhubert", "v2.s2G", "v2.s2D", "v2.s1", "v2ProPlus.s2G",
                                     "v2ProPlus.s2D", "s1v3", "sv", "g2pw", "nltk", "langdetect"]
    with pytest.raises(plan.PlanError) as e:
        plan.model_plan(["v2ProPlus", "v5"])
    assert "v5" in str(e.value) and all(v in str(e.value) for v in plan.PLAN_VERSIONS)


# ---- downloads through huggingface_hub ------------------------------------------------------------

def test_downloads_everything_and_a_rerun_touches_nothing(hub, dirs):
    checkout, venv = dirs
    items = plan.model_plan(["v2ProPlus"])
    assert [i.key for i, _ in missing_items(items, checkout, venv)] == V2PP
    real = sum(len(d) for i in items for d in _item_files(i).values())

    rep, log = _install(items, dirs, hub)

    assert f"{human_size(real)} to download from {hub.url}" in log  # the hub's sizes, not the hints
    assert {k: r.how for k, r in rep.items.items()} == {
        **{k: "downloaded" for k in V2PP}, "g2pw": "unpacked", "nltk": "unpacked"}
    assert rep.total_bytes == real and rep.endpoint == hub.url
    for item in items:
        dest = default_path(item, checkout, venv)
        if item.kind == "file":
            assert dest.read_bytes() == _item_files(item)[item.path]
        elif item.kind == "folder":
            assert (dest / "pytorch_model.bin").read_bytes() == _bytes(item.key)
    g2pw = checkout / "GPT_SoVITS/text/G2PWModel"
    assert (g2pw / "g2pW.onnx").read_bytes() == G2PW_FILES["g2pW.onnx"] and not (g2pw / "G2PWModel").exists()
    assert (venv / "nltk_data/corpora/cmudict/cmudict").read_bytes() == NLTK_FILES["corpora/cmudict/cmudict"]
    assert not (checkout / downloads.STAGING).exists()  # no second copy of anything is left
    assert missing_items(items, checkout, venv) == []

    hub.requests.clear()
    t0 = time.monotonic()
    again, _ = _install(items, dirs, hub)
    assert time.monotonic() - t0 < 1.0
    assert {r.how for r in again.items.values()} == {"present"} and again.total_bytes == 0
    assert hub.requests == []  # verified on disk, not asked of the hub


def test_rerun_repairs_only_what_is_missing(hub, dirs):
    checkout, venv = dirs
    items = plan.model_plan(["v2ProPlus"])
    _install(items, dirs, hub)
    by = plan.BY_KEY
    default_path(by["s1v3"], checkout, venv).unlink()
    default_path(by["sv"], checkout, venv).write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:0\n")
    (default_path(by["bert"], checkout, venv) / "pytorch_model.bin").unlink()
    hub.requests.clear()

    rep, log = _install(items, dirs, hub)

    assert {k for k, r in rep.items.items() if r.how != "present"} == {"s1v3", "sv", "bert"}
    assert "a Git LFS pointer" in log
    fetched = {r.path.rsplit("/", 1)[-1] for r in hub.file_gets()}
    assert fetched == {"s1v3.ckpt", "pretrained_eres2netv2w24s4ep4.ckpt", "pytorch_model.bin"}  # not config.json
    assert missing_items(items, checkout, venv) == []


def _big_file(hub: FakeHub, item: plan.ModelItem) -> tuple[bytes, int]:
    """A file larger than the client's read chunk (huggingface_hub keeps only whole chunks of a
    broken response), cut after a chunk and a bit; returns the content and where it is cut."""
    from huggingface_hub import constants
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    data = _bytes("big", chunk + 2 * MiB)
    hub.add(item.repo, item.path, data)
    hub.cut_once[(item.repo, item.path)] = chunk + MiB
    return data, chunk + MiB


def _resumed_at(rng: str | None, cut: int) -> int:
    m = re.fullmatch(r"bytes=(\d+)-", rng or "")
    assert m and 0 < int(m[1]) <= cut, rng
    return int(m[1])


def test_a_broken_download_resumes_with_a_range_request(hub, dirs):
    checkout, venv = dirs
    item = plan.BY_KEY["s1v3"]
    data, cut = _big_file(hub, item)

    rep, _ = _install([item], dirs, hub)

    first, then = _cdn_gets(hub, item.path)
    assert first is None and _resumed_at(then, cut)
    assert rep.items["s1v3"].how == "downloaded"
    assert _sha(default_path(item, checkout, venv)) == hashlib.sha256(data).hexdigest()


def test_an_interrupted_download_resumes_on_the_next_run(hub, dirs):
    checkout, venv = dirs
    item = plan.BY_KEY["s1v3"]
    dest = default_path(item, checkout, venv)
    data, cut = _big_file(hub, item)
    hub.fail_next[(item.repo, item.path)] = [500] * 10  # the retries fail too: the run stops

    with pytest.raises(DownloadError, match="run the installer again to resume"):
        _install([item], dirs, hub)
    assert not dest.exists()
    [part] = (checkout / downloads.STAGING).rglob("*.part")
    kept = part.stat().st_size

    hub.requests.clear()
    hub.fail_next.clear()
    rep, log = _install([item], dirs, hub)

    assert [_resumed_at(r, cut) for r in _cdn_gets(hub, item.path)] == [kept]
    assert "already downloaded, resumed" in log and "resuming after" in log
    assert rep.items["s1v3"].bytes == len(data) - kept
    assert _sha(dest) == hashlib.sha256(data).hexdigest()


def test_a_file_that_does_not_match_its_sha256_is_refused(hub, dirs):
    checkout, venv = dirs
    good, bad = plan.BY_KEY["v2ProPlus.s2G"], plan.BY_KEY["s1v3"]
    hub.wrong_sha.add((bad.repo, bad.path))

    with pytest.raises(DownloadError) as e:
        _install([good, bad], dirs, hub)

    msg = str(e.value)
    assert f"{bad.repo}/{bad.path}" in msg and "sha256" in msg and "Run the installer again" in msg
    assert not default_path(bad, checkout, venv).exists()
    assert not list((checkout / downloads.STAGING).rglob("*.part"))  # the bad bytes are gone
    assert default_path(good, checkout, venv).read_bytes() == _item_files(good)[good.path]  # kept


def test_an_archive_with_unsafe_paths_is_refused(hub, dirs, tmp_path):
    checkout, venv = dirs
    item = plan.BY_KEY["g2pw"]
    hub.add(item.repo, item.path, _zip({"G2PWModel/g2pW.onnx": _bytes("x"), "G2PWModel/../../../evil.txt": b"x"}))

    with pytest.raises(DownloadError, match="unsafe paths"):
        _install([item], dirs, hub)

    assert not list(tmp_path.rglob("evil.txt"))
    assert not default_path(item, checkout, venv).exists()
    assert not list((checkout / downloads.STAGING).rglob("*.part"))


@pytest.mark.parametrize("member", ["/etc/evil", "C:/evil", "link"])
def test_unpack_refuses_absolute_paths_drives_and_links(tmp_path, member):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo(member)
        if member == "link":
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DownloadError, match="unsafe paths"):
        downloads.unpack_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_not_enough_free_disk_is_refused_before_downloading(hub, dirs, monkeypatch):
    checkout, venv = dirs
    items = plan.model_plan(["v2ProPlus"])
    monkeypatch.setattr(downloads, "free_bytes", lambda path: 100 * 10**6)

    with pytest.raises(DownloadError) as e:
        _install(items, dirs, hub)

    assert "100.0 MB free" in str(e.value) and "free some space" in str(e.value)
    assert hub.file_gets() == []
    assert len(missing_items(items, checkout, venv)) == len(items)


def test_hf_endpoint_is_read_when_called_and_mirrors_map_to_urls(hub, dirs, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # after huggingface_hub was imported
    rep, _ = _install([plan.BY_KEY["langdetect"]], dirs, endpoint=None)
    assert rep.endpoint == hub.url and rep.items["langdetect"].how == "downloaded"

    assert resolve_endpoint(mirror="hf-mirror") == "https://hf-mirror.com"
    assert resolve_endpoint("https://example.org/hub/") == "https://example.org/hub"
    monkeypatch.delenv("HF_ENDPOINT")
    assert resolve_endpoint() == "https://huggingface.co"
    with pytest.raises(DownloadError, match="hf-mirror"):
        resolve_endpoint("nowhere")


def test_an_endpoint_without_the_file_says_so(hub, dirs):
    del hub.repos[plan.LANGID_REPO]
    with pytest.raises(DownloadError, match="cannot list the model files") as e:
        _install([plan.BY_KEY["langdetect"]], dirs, hub)
    assert "--models-from" in str(e.value)


# ---- --models-from -------------------------------------------------------------------------------

def _models_folder(root: Path, items) -> Path:
    """A folder laid out like upstream's pretrained_models, G2PWModel/ unpacked, nltk_data as its zip."""
    for item in items:
        if item.key == "nltk":
            (root / "nltk_data.zip").write_bytes(_item_files(item)[item.path])
        elif item.key == "g2pw":
            for name, data in G2PW_FILES.items():
                (root / item.local / name).parent.mkdir(parents=True, exist_ok=True)
                (root / item.local / name).write_bytes(data)
        else:
            for path, data in _item_files(item).items():
                target = root / item.local / path[len(item.path) + 1:] if item.kind == "folder" else root / item.local
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
    return root


def test_models_from_copies_a_local_folder_without_network(dirs, tmp_path):
    checkout, venv = dirs
    items = plan.model_plan(["v2ProPlus"])
    src = _models_folder(tmp_path / "models", items)

    rep, log = _install(items, dirs, endpoint="http://127.0.0.1:9", models_from=src)  # nothing listens there

    assert {k: r.how for k, r in rep.items.items()} == {**{k: "copied" for k in V2PP}, "nltk": "unpacked"}
    assert f"to copy from {src}" in log
    assert missing_items(items, checkout, venv) == []
    sv = plan.BY_KEY["sv"]
    assert default_path(sv, checkout, venv).read_bytes() == (src / sv.local).read_bytes()
    assert (venv / "nltk_data/taggers/averaged_perceptron_tagger_eng").is_dir()
    assert not list(checkout.rglob(".*.copying"))
    again, _ = _install(items, dirs, endpoint="http://127.0.0.1:9", models_from=src)
    assert {r.how for r in again.items.values()} == {"present"}


def test_models_from_lacking_items_names_them_and_copies_nothing(dirs, tmp_path):
    checkout, venv = dirs
    items = plan.model_plan(["v2ProPlus"])
    src = _models_folder(tmp_path / "models", [i for i in items if i.key not in ("sv", "bert")])

    with pytest.raises(DownloadError) as e:
        _install(items, dirs, models_from=src)

    msg = str(e.value)
    assert "sv (" in msg and "bert (" in msg and "s1v3" not in msg
    assert len(missing_items(items, checkout, venv)) == len(items)
