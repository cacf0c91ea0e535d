"""Putting the plan's pretrained files in place: downloaded from the Hugging Face Hub (or a mirror)
with huggingface_hub, or copied from a local folder for offline installs.

Items already present are skipped; the rest are announced with their size and checked against
free disk first. huggingface_hub's hf_hub_download checks only the size of what it receives, and
2.x deletes a partial download when it fails, so each file is fetched here with the client's own
pieces (get_hf_file_metadata, http_get) into a partial file under <checkout>/.gsv-download-cache
that a re-run resumes with a Range request; LFS files are then checked against the sha256 the hub
advertises (X-Linked-Etag) before they are moved into place."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from gsv_service.engine_install.plan import ModelItem
from gsv_service.engine_install.presence import Presence, check_path, default_path, human_size

DEFAULT_ENDPOINT = "https://huggingface.co"
MIRRORS = {"huggingface": DEFAULT_ENDPOINT, "hf-mirror": "https://hf-mirror.com"}
REVISION = "main"
STAGING = ".gsv-download-cache"  # under the checkout: partial downloads a re-run resumes
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_ATTEMPTS = 5  # tries of one download in a run, while each one gets further

How = Literal["present", "downloaded", "copied", "unpacked"]


class DownloadError(Exception):
    """Models cannot be put in place; the message says what to do. Finished items are kept."""


class BadArchive(DownloadError):
    """An archive that is damaged or holds unsafe paths: it is not unpacked, and not kept."""


@dataclass
class ItemResult:
    key: str
    how: How
    path: str
    bytes: int = 0          # fetched or copied in this run
    seconds: float = 0.0


@dataclass
class ModelsReport:
    items: dict[str, ItemResult] = field(default_factory=dict)
    endpoint: str | None = None  # None when nothing was downloaded
    total_bytes: int = 0


@dataclass(frozen=True)
class RemoteFile:
    repo: str
    path: str                # in the repo
    size: int | None
    sha256: str | None       # LFS files: what the hub's API says the content hashes to


def resolve_endpoint(endpoint: str | None = None, mirror: str | None = None) -> str:
    """The hub URL to use: a mirror name or URL, else `endpoint` (a name or URL), else $HF_ENDPOINT
    read now (huggingface_hub freezes it at import), else huggingface.co."""
    value = (mirror or endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip()
    if value in MIRRORS:
        return MIRRORS[value]
    if not value.startswith(("http://", "https://")):
        raise DownloadError(f"unknown mirror {value!r}: give a URL or one of {', '.join(MIRRORS)}")
    return value.rstrip("/")


def missing_items(items: Iterable[ModelItem], checkout: Path, venv: Path) -> list[tuple[ModelItem, Presence]]:
    """The items not in place at their default paths, with what was found there."""
    found = [(item, check_path(item, default_path(item, checkout, venv))) for item in items]
    return [(item, p) for item, p in found if not p.ok]


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def margin_bytes(need: int) -> int:
    """Room to leave beside what the models take: the filesystem and the OS need some too."""
    return max(256 * 1024 * 1024, need // 20)


def install_models(items: Iterable[ModelItem], checkout: Path, venv: Path, *, models_from: Path | None = None,
                   endpoint: str | None = None, mirror: str | None = None,
                   log: Callable[[str], None] = print, progress: bool = True) -> ModelsReport:
    """Put every item in place; a re-run verifies what is there and repairs only what is missing."""
    report = ModelsReport()
    todo: list[tuple[ModelItem, Path]] = []
    for item in items:
        t0 = time.monotonic()
        dest = default_path(item, checkout, venv)
        presence = check_path(item, dest)
        if presence.ok:
            report.items[item.key] = ItemResult(item.key, "present", str(dest), 0, round(time.monotonic() - t0, 3))
        else:
            log(f"  {item.key}: {presence.detail} at {dest}")
            todo.append((item, dest))
    if not todo:
        return report
    staging = checkout / STAGING
    fetch: _LocalSource | _HubSource
    if models_from is not None:
        fetch = _LocalSource(models_from, [i for i, _ in todo])
        what = f"to copy from {models_from}"
    else:
        report.endpoint = resolve_endpoint(endpoint, mirror)
        fetch = _HubSource(report.endpoint, staging, [i for i, _ in todo])
        what = f"to download from {report.endpoint}"
    planned = [fetch.needs(item, dest) for item, dest in todo]
    moved, disk = sum(n for n, _ in planned), [need for _, needs in planned for need in needs]
    log(f"  {len(todo)} item(s) missing: {human_size(moved)} {what}{fetch.resumed_note()}, about "
        f"{human_size(sum(n for _, n in disk))} on disk")
    check_disk(disk)
    with _progress_bars(progress and sys.stderr.isatty()):
        for item, dest in todo:
            t0 = time.monotonic()
            how, nbytes = fetch.put(item, dest, log)
            presence = check_path(item, dest)
            if not presence.ok:
                raise DownloadError(f"{item.key}: put at {dest} but it does not look right ({presence.detail}); "
                                    "delete it and run the installer again")
            report.items[item.key] = ItemResult(item.key, how, str(dest), nbytes, round(time.monotonic() - t0, 3))
            report.total_bytes += nbytes
            log(f"  {item.key}: {how}, {human_size(nbytes)} in {time.monotonic() - t0:.1f} s")
    shutil.rmtree(staging, ignore_errors=True)  # everything is in place: no partial is worth keeping
    return report


def check_disk(needs: Iterable[tuple[Path, int]]) -> None:
    """Refuse before writing when a filesystem lacks room for what goes on it, plus a margin."""
    by_dev: dict[int, list[Any]] = {}  # st_dev -> [an existing folder on it, bytes needed]
    for path, n in needs:
        anchor = _existing_ancestor(path)
        by_dev.setdefault(anchor.stat().st_dev, [anchor, 0])[1] += n
    for anchor, need in by_dev.values():
        free, spare = free_bytes(anchor), margin_bytes(need)
        if free < need + spare:
            raise DownloadError(f"the models need {human_size(need)} (and {human_size(spare)} to spare) on the "
                                f"disk of {anchor}, which has {human_size(free)} free; free some space or put "
                                "the engine on another disk (--engine-dir, --engine-venv)")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# ---- the hub -------------------------------------------------------------------------------------

class _HubSource:
    """Files of hub repos, listed up front (sizes and sha256 for the announcement and the disk check)."""

    def __init__(self, endpoint: str, staging: Path, items: list[ModelItem]) -> None:
        self.endpoint, self.staging = endpoint, staging
        self.files = _list_remote(endpoint, items)
        self.resumed = 0

    def _part(self, rf: RemoteFile) -> Path:
        # The expected hash in the name: a partial of another version of the file is never resumed.
        tag = f".{rf.sha256[:16]}" if rf.sha256 else ""
        return self.staging / rf.repo.replace("/", "--") / f"{rf.path}{tag}.part"

    def _have(self, rf: RemoteFile) -> int:
        part = self._part(rf)
        return part.stat().st_size if part.is_file() else 0

    def needs(self, item: ModelItem, dest: Path) -> tuple[int, list[tuple[Path, int]]]:
        """Bytes still to fetch (less what partials hold; folder files already placed count nothing),
        and what they take on which disk."""
        files = [rf for rf in self.files[item.key] if item.kind != "folder" or not _placed(rf, dest / _rel(item, rf))]
        have = sum(self._have(rf) for rf in files)
        self.resumed += have
        left = sum(rf.size or 0 for rf in files) - have
        if item.kind == "zip":  # the archive in staging, then about twice its size unpacked
            return left, [(self.staging, left), (dest, 2 * (files[0].size or 0))]
        return left, [(dest, left)]

    def resumed_note(self) -> str:
        return f" ({human_size(self.resumed)} already downloaded, resumed)" if self.resumed else ""

    def put(self, item: ModelItem, dest: Path, log: Callable[[str], None]) -> tuple[How, int]:
        files = self.files[item.key]
        if item.kind == "folder":
            got = 0
            for rf in files:
                target = dest / _rel(item, rf)
                if not _placed(rf, target):  # placed files were verified before they were moved there
                    part, n = self._fetch(rf, log)
                    _move(part, target)
                    got += n
            return "downloaded", got
        part, got = self._fetch(files[0], log)
        if item.kind == "zip":
            try:
                unpack_zip(part, dest)
            except BadArchive:
                part.unlink(missing_ok=True)  # a verified download kept only when the disk was full
                raise
            part.unlink()
            return "unpacked", got
        _move(part, dest)
        return "downloaded", got

    def _fetch(self, rf: RemoteFile, log: Callable[[str], None]) -> tuple[Path, int]:
        """Download one file into its partial (resuming it), verify it, return (path, bytes fetched)."""
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        name = f"{rf.repo}/{rf.path}"
        url = hf_hub_url(rf.repo, rf.path, revision=REVISION, endpoint=self.endpoint)
        try:
            meta = get_hf_file_metadata(url, token=False)  # the endpoint is in the URL
        except Exception as e:  # every client error becomes advice
            raise DownloadError(f"cannot get {name} from {self.endpoint}: {_brief(e)}; {_ADVICE}") from e
        size = meta.size if meta.size is not None else rf.size
        # For LFS files the hub's etag is the sha256 of the content; the listing's is the fallback.
        sha = meta.etag if meta.etag and _SHA256.match(meta.etag) else rf.sha256
        part = self._part(RemoteFile(rf.repo, rf.path, size, sha))
        part.parent.mkdir(parents=True, exist_ok=True)
        if size is not None and part.is_file() and part.stat().st_size > size:
            part.unlink()
        start = part.stat().st_size if part.is_file() else 0
        if start:
            log(f"  {name}: resuming after {human_size(start)}")
        self._download(meta.location, part, size, name, log)
        if sha:
            got = file_sha256(part)
            if got != sha:
                part.unlink()
                raise DownloadError(f"{name}: the downloaded file's sha256 is {got}, but {self.endpoint} says "
                                    f"{sha}; it was deleted. Run the installer again to download it afresh; if "
                                    f"this repeats, the endpoint serves a different file than it advertises: "
                                    f"use another --hf-endpoint or --models-from")
        return part, part.stat().st_size - start

    def _download(self, url: str, part: Path, size: int | None, name: str, log: Callable[[str], None]) -> None:
        """huggingface_hub's http_get appending to the partial. It retries broken connections itself
        in some versions only (and not after an HTTP error), so try again here while bytes keep coming."""
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]  # exported lazily

        for attempt in range(1, _ATTEMPTS + 1):
            have = part.stat().st_size if part.is_file() else 0
            try:
                with part.open("ab") as f:
                    http_get(url, f, resume_size=have, expected_size=size, headers=build_hf_headers(token=False),
                             displayed_filename=PurePosixPath(name).name)
                return
            except Exception as e:
                if size is not None and part.is_file() and part.stat().st_size > size:
                    part.unlink()  # more than the file holds: nothing to resume
                kept = part.stat().st_size if part.is_file() else 0
                if kept > have and attempt < _ATTEMPTS:
                    log(f"  {name}: broken after {human_size(kept)} ({_brief(e)}); resuming")
                    continue
                raise DownloadError(f"downloading {name} from {self.endpoint} failed: {_brief(e)}; run the "
                                    f"installer again to resume ({human_size(kept)} kept), or {_ADVICE}") from e


_ADVICE = ("check the network, or set --hf-endpoint / HF_ENDPOINT to a mirror (hf-mirror: https://hf-mirror.com), "
           "or copy the files with --models-from DIR")


def _brief(e: Exception) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _placed(rf: RemoteFile, target: Path) -> bool:
    return target.is_file() and rf.size is not None and target.stat().st_size == rf.size


def _rel(item: ModelItem, rf: RemoteFile) -> str:
    return rf.path[len(item.path.rstrip("/")) + 1:]


def _list_remote(endpoint: str, items: list[ModelItem]) -> dict[str, list[RemoteFile]]:
    """Every file each item needs, with sizes and LFS sha256 from the hub's API: a recursive tree
    listing per folder item, one paths-info call per repo for the single files."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=endpoint, token=False)
    out: dict[str, list[RemoteFile]] = {}
    singles: dict[str, list[ModelItem]] = {}
    try:
        for item in items:
            if item.kind != "folder":
                singles.setdefault(item.repo, []).append(item)
                continue
            listed = api.list_repo_tree(item.repo, path_in_repo=item.path, recursive=True, revision=REVISION,
                                        token=False)
            out[item.key] = [_remote(item.repo, e) for e in listed if isinstance(e, RepoFile)]
        for repo, group in singles.items():
            infos = api.get_paths_info(repo, [i.path for i in group], revision=REVISION, token=False)
            found = {e.path: _remote(repo, e) for e in infos if isinstance(e, RepoFile)}
            for item in group:
                out[item.key] = [found[item.path]] if item.path in found else []
    except Exception as e:
        raise DownloadError(f"cannot list the model files on {endpoint}: {_brief(e)}; {_ADVICE}") from e
    absent = [f"{i.repo}/{i.path}" for i in items if not out.get(i.key)]
    if absent:
        raise DownloadError(f"{endpoint} has no {', '.join(absent)}; is it a complete mirror of the hub? "
                            f"Use another --hf-endpoint or --models-from")
    return out


def _remote(repo: str, entry: Any) -> RemoteFile:  # a huggingface_hub RepoFile
    lfs = entry.lfs
    sha = (getattr(lfs, "sha256", None) or lfs.get("sha256")) if lfs else None
    return RemoteFile(repo, entry.path, entry.size, sha)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def _progress_bars(show: bool) -> Iterator[None]:
    """huggingface_hub's tqdm bars, off when asked or when stderr is not a terminal."""
    from huggingface_hub.utils import (  # type: ignore[attr-defined]  # lazily exported
        are_progress_bars_disabled, disable_progress_bars, enable_progress_bars)

    if show or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


# ---- placing files -------------------------------------------------------------------------------

def _move(src: Path, dest: Path) -> None:
    """Move a finished file into place, replacing what is there; one copy at any time."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        _copy_file(src, dest)  # another filesystem: copy beside dest, rename over it, drop the source
        src.unlink()


def _copy_file(src: Path, dest: Path) -> None:
    """Copy under a temporary name and rename: an interrupted copy never looks like the real file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.copying")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def _unsafe_member(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return p.is_absolute() or ".." in p.parts or (bool(p.parts) and ":" in p.parts[0])


def unpack_zip(archive: Path, dest: Path) -> int:
    """Unpack an archive into `dest`, over what is there (as upstream's `unzip -o`). An archive whose
    members all lie in one top folder (G2PWModel/, nltk_data/: upstream unzips them into dest's
    parent) has that folder's contents put at dest. Members with absolute paths, '..' or links are
    refused before anything is written. Returns the bytes unpacked."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if not i.filename.startswith("__MACOSX/")]
            bad = [i.filename for i in infos if _unsafe_member(i.filename)
                   or stat.S_ISLNK(i.external_attr >> 16)]
            if bad:
                raise BadArchive(f"{archive.name} holds unsafe paths ({', '.join(bad[:3])}); it was not "
                                    "unpacked. Get the archive from the official repo (--hf-endpoint) instead")
            parts = [PurePosixPath(i.filename.replace("\\", "/")).parts for i in infos]
            tops = {p[0] for p in parts if p}
            strip = 1 if len(tops) == 1 and all(len(p) > 1 for p, i in zip(parts, infos, strict=True) if not i.is_dir()) else 0
            files = [(i, p[strip:]) for i, p in zip(infos, parts, strict=True) if not i.is_dir() and p[strip:]]
            size = sum(i.file_size for i, _ in files)
            check_disk([(dest, size)])
            tmp = dest.parent / f".{dest.name}.unpacking"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                for info, rel in files:
                    out = tmp.joinpath(*rel)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                for _, rel in files:
                    _move(tmp.joinpath(*rel), dest.joinpath(*rel))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise BadArchive(f"{archive.name} is not a usable zip archive ({e}); it was not unpacked. Run the "
                         "installer again to download it afresh, or give a good copy to --models-from") from e
    return size


# ---- a local folder (--models-from) --------------------------------------------------------------

class _LocalSource:
    """Items laid out as upstream's pretrained_models (plan.py's `local`): files, folders, and for
    archives either the unpacked folder or the zip itself."""

    def __init__(self, root: Path, items: list[ModelItem]) -> None:
        self.root = root
        self.sources: dict[str, Path] = {}
        absent = []
        for item in items:
            src = self._find(item)
            if src is None:
                absent.append(f"{item.key} ({root / item.local}: {check_path(item, root / item.local).detail})")
            else:
                self.sources[item.key] = src
        if absent:
            raise DownloadError(f"--models-from {root} lacks {'; '.join(absent)}; lay it out like upstream's "
                                "pretrained_models (with G2PWModel/, nltk_data/, fast_langdetect/ beside) or "
                                "leave out --models-from to download")

    def _find(self, item: ModelItem) -> Path | None:
        cand = self.root / item.local
        if check_path(item, cand).ok:
            return cand
        if item.kind == "zip":
            for z in (cand.with_name(cand.name + ".zip"), self.root / PurePosixPath(item.path).name):
                if z.is_file() and zipfile.is_zipfile(z):
                    return z
        return None

    def needs(self, item: ModelItem, dest: Path) -> tuple[int, list[tuple[Path, int]]]:
        src = self.sources[item.key]
        if src.is_file() and item.kind == "zip":
            with zipfile.ZipFile(src) as zf:
                n = sum(i.file_size for i in zf.infolist())
        else:
            n = src.stat().st_size if src.is_file() else _tree_size(src)
        return n, [(dest, n)]

    def resumed_note(self) -> str:
        return ""

    def put(self, item: ModelItem, dest: Path, log: Callable[[str], None]) -> tuple[How, int]:
        src = self.sources[item.key]
        if src.is_file() and item.kind == "zip":
            return "unpacked", unpack_zip(src, dest)
        if src.is_file():
            _copy_file(src, dest)
            return "copied", src.stat().st_size
        copied = 0
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            target = dest / f.relative_to(src)
            if not (target.is_file() and target.stat().st_size == f.stat().st_size):
                _copy_file(f, target)
                copied += f.stat().st_size
        return "copied", copied


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
