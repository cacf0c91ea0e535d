"""Getting upstream's code at the pinned commit: from a git remote, from a local git directory
(a mirror or a bare snapshot that may lack its largest files), or from a checkout folder that is
used in place or copied. Missing files of a snapshot are repaired from a PyPI wheel that carries
byte-identical copies, verified by their git blob id."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from gsv_service.engine import PINNED_FULL

DEFAULT_REMOTE = "https://github.com/RVC-Boss/GPT-SoVITS.git"
MARKER = ".gsv-engine.json"  # written into the checkout: where it came from, at which commit
# A wheel on PyPI that ships copies of upstream's two largest text files (>= 4 MiB), which some
# snapshots leave out; each copy is accepted only if its git blob id matches upstream's tree.
REPAIR_WHEEL = "gpt-sovits-cpufast==0.1.0"

How = Literal["cloned", "written from git objects", "in place", "copied", "present"]
Log = Callable[[str], None]


class SourceError(Exception):
    """The source cannot give the pinned code; the message says what to do."""


@dataclass
class Checkout:
    root: Path
    commit: str | None          # full hash, None when the folder has no git metadata or marker
    how: How
    source: str
    missing: list[str] = field(default_factory=list)   # tree paths absent after repair
    repaired: list[str] = field(default_factory=list)

    def at(self, commit: str) -> bool:
        """Whether the checkout is at `commit` (a full or abbreviated hash)."""
        return bool(self.commit and self.commit.startswith(commit[:12]))


def _git(*args: str, cwd: Path | None = None, check: bool = True,
         capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, check=check, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", "ssh://", "git://", "file://", "git@"))


def _git_dir(path: Path) -> Path | None:
    """The git directory of a bare repo or a working checkout, else None."""
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return path
    if (path / ".git").exists():
        return path / ".git"
    return None


def read_marker(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def checkout_commit(root: Path) -> str | None:
    """The commit of a checkout: git's HEAD, else what the installer recorded."""
    if (root / ".git").exists() and shutil.which("git"):
        r = _git("-C", str(root), "rev-parse", "HEAD", check=False)
        if r.returncode == 0:
            return r.stdout.strip()
    commit: str | None = read_marker(root).get("commit")
    return commit


def blob_id(path: Path) -> str:
    """git's object id of a file's content: sha1 of 'blob <size>\\0' + bytes."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str
    oid: str
    path: str


def _tree(git_dir: Path, commit: str) -> list[TreeEntry]:
    out = _git("--git-dir", str(git_dir), "ls-tree", "-r", "-z", commit).stdout
    entries = []
    for rec in out.split("\0"):
        if not rec:
            continue
        meta, path = rec.split("\t", 1)
        mode, kind, oid = meta.split()
        p = PurePosixPath(path)
        if p.is_absolute() or ".." in p.parts:
            raise SourceError(f"the source's tree has an unsafe path {path!r}; use another source")
        entries.append(TreeEntry(mode, kind, oid, path))
    return entries


def write_tree(git_dir: Path, commit: str, dest: Path) -> list[TreeEntry]:
    """Write the tree of `commit` into `dest` object by object (one `git cat-file --batch`),
    skipping objects the repository lacks. Returns the entries that could not be written."""
    entries = _tree(git_dir, commit)
    blobs = [e for e in entries if e.kind == "blob"]
    missing: list[TreeEntry] = []
    proc = subprocess.Popen(["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    try:
        for e in blobs:
            proc.stdin.write(f"{e.oid}\n".encode())
            proc.stdin.flush()
            header = proc.stdout.readline().decode().split()
            if len(header) < 2 or header[1] == "missing":
                missing.append(e)
                continue
            size = int(header[2])
            target = dest / e.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if e.mode == "120000":  # a symlink: its content is the target; keep it inside the tree
                link = proc.stdout.read(size).decode()
                resolved = (target.parent / link).resolve()
                if not resolved.is_relative_to(dest.resolve()):
                    raise SourceError(f"{e.path} links outside the checkout ({link})")
                target.symlink_to(link)
            else:
                with target.open("wb") as f:
                    left = size
                    while left:
                        chunk = proc.stdout.read(min(left, 1 << 20))
                        if not chunk:
                            raise SourceError(f"git cat-file ended early while writing {e.path}")
                        f.write(chunk)
                        left -= len(chunk)
                if e.mode == "100755":
                    target.chmod(0o755)
            proc.stdout.read(1)  # the newline after each object
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    return missing


def _resolve_commit(git_dir: Path, commit: str) -> str:
    r = _git("--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}",
             check=False)
    if r.returncode != 0:
        raise SourceError(f"{git_dir} does not contain commit {commit}; give a mirror or clone of "
                          "RVC-Boss/GPT-SoVITS that has it (git fetch there first)")
    return r.stdout.strip()


def repair_from_wheel(root: Path, missing: list[TreeEntry], python: str,
                      log: Log = print) -> tuple[list[str], list[str]]:
    """Fill files a snapshot lacks from REPAIR_WHEEL (downloaded with pip, no install), keeping a
    copy only when its git blob id equals upstream's. Returns (repaired, still missing)."""
    if not missing:
        return [], []
    log(f"  {len(missing)} file(s) missing from the source: {', '.join(e.path for e in missing)}; "
        f"trying the copies in the PyPI wheel {REPAIR_WHEEL}")
    with tempfile.TemporaryDirectory(prefix="gsv-repair-") as tmp:
        r = subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", REPAIR_WHEEL, "-d", tmp],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode != 0 or not wheels:
            log(f"  could not download {REPAIR_WHEEL}: {r.stdout.strip()[-300:]}")
            return [], [e.path for e in missing]
        repaired, still = [], []
        with zipfile.ZipFile(wheels[0]) as z:
            names = {n for n in z.namelist() if not n.endswith("/")}
            for e in missing:
                member = next((n for n in names if n == e.path or n.endswith("/" + e.path)), None)
                target = root / e.path
                if member is None:
                    still.append(e.path)
                    continue
                part = target.with_name(target.name + ".part")
                part.parent.mkdir(parents=True, exist_ok=True)
                with z.open(member) as src, part.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                if blob_id(part) == e.oid:
                    part.rename(target)
                    repaired.append(e.path)
                else:
                    part.unlink()
                    still.append(e.path)
    return repaired, still


def _write_marker(co: Checkout, how: str | None = None) -> None:
    data = {"commit": co.commit, "source": co.source, "how": how or co.how, "missing": co.missing,
            "repaired": co.repaired}
    (co.root / MARKER).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _from_git_dir(git_dir: Path, dest: Path, source: str, commit: str, python: str, log: Log) -> Checkout:
    commit = _resolve_commit(git_dir, commit)
    part = dest.with_name(dest.name + ".partial")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    log(f"  writing upstream @ {commit[:12]} from {git_dir} object by object")
    missing = write_tree(git_dir, commit, part)
    repaired, still = repair_from_wheel(part, missing, python, log)
    part.rename(dest)
    co = Checkout(dest, commit, "written from git objects", source, still, repaired)
    _write_marker(co)
    return co


def _clone(remote: str, dest: Path, source: str, commit: str, log: Log) -> Checkout:
    part = dest.with_name(dest.name + ".partial")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    log(f"  fetching {remote} @ {commit[:12]} (only that commit)")
    _git("init", "-q", str(part))
    _git("-C", str(part), "remote", "add", "origin", remote)
    r = _git("-C", str(part), "fetch", "-q", "--depth", "1", "origin", commit, check=False,
             capture=False)
    if r.returncode != 0:  # servers that refuse fetching a commit by id: the whole history then
        log("  the remote refused a fetch by commit id; fetching its branches")
        r = _git("-C", str(part), "fetch", "-q", "origin", check=False, capture=False)
        if r.returncode != 0:
            shutil.rmtree(part, ignore_errors=True)
            raise SourceError(f"git could not fetch {remote}; check the URL and the network, or pass "
                              "--engine-source with a local mirror or checkout")
    r = _git("-C", str(part), "-c", "advice.detachedHead=false", "checkout", "-q", commit,
             check=False)
    if r.returncode != 0:
        shutil.rmtree(part, ignore_errors=True)
        raise SourceError(f"{remote} has no commit {commit[:12]}: {r.stderr.strip()[-300:]}")
    part.rename(dest)
    co = Checkout(dest, checkout_commit(dest), "cloned", source)
    _write_marker(co)
    return co


def _copy_folder(src: Path, dest: Path, source: str, log: Log) -> Checkout:
    part = dest.with_name(dest.name + ".partial")
    shutil.rmtree(part, ignore_errors=True)
    log(f"  copying {src} to {dest}")
    shutil.copytree(src, part, symlinks=True)
    part.rename(dest)
    co = Checkout(dest, checkout_commit(dest), "copied", source)
    _write_marker(co)
    return co


def get_checkout(source: str | None, dest: Path, *, commit: str = PINNED_FULL, in_place: bool = False,
                 python: str = "python3", log: Log = print) -> Checkout:
    """Put upstream's code at `commit` into `dest` (or use `source` in place) and say how. An
    existing `dest` with a GPT_SoVITS folder is kept (its commit reported, not changed): re-runs
    repair, they do not re-fetch. A copied or in-place folder keeps the commit it has; the caller
    compares it with the one it wants (Checkout.at)."""
    source = source or DEFAULT_REMOTE
    dest = dest.resolve()
    if is_remote(source):
        if (dest / "GPT_SoVITS").is_dir():
            return _existing(dest, source, python, log)
        return _clone(source, dest, source, commit, log)
    src = Path(source).expanduser().resolve()
    if not src.is_dir():
        raise SourceError(f"--engine-source {source}: no such folder; give a git URL, a mirror, or a "
                          "GPT-SoVITS checkout folder")
    has_tree = (src / "GPT_SoVITS").is_dir()
    git_dir = _git_dir(src)
    if in_place or (has_tree and src == dest):
        if not has_tree:
            raise SourceError(f"{src} has no GPT_SoVITS folder, so it cannot be used in place; "
                              "drop --in-place to write the code out of its git objects")
        return _existing(src, source, python, log, how="in place")
    if (dest / "GPT_SoVITS").is_dir():
        return _existing(dest, source, python, log)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if has_tree:
        return _copy_folder(src, dest, source, log)
    if git_dir is None:
        raise SourceError(f"{src} is neither a git repository nor a GPT-SoVITS checkout")
    return _from_git_dir(git_dir, dest, source, commit, python, log)


def _existing(root: Path, source: str, python: str, log: Log, how: How = "present") -> Checkout:
    """A checkout already there: report its commit, and repair files missing from its tree."""
    commit = checkout_commit(root)
    marker = read_marker(root)
    co = Checkout(root, commit, how, marker.get("source", source), list(marker.get("missing", [])),
                  list(marker.get("repaired", [])))
    first_how = marker.get("how", how)
    git_dir = _git_dir(Path(source)) if not is_remote(source) and Path(source).is_dir() else None
    git_dir = git_dir or _git_dir(root)
    if co.missing and git_dir is not None and commit:
        entries = [e for e in _tree(git_dir, commit) if e.path in set(co.missing)]
        absent = [e for e in entries if not (root / e.path).is_file()]
        repaired, still = repair_from_wheel(root, absent, python, log)
        co.repaired += repaired
        co.missing = still
    if os.access(root, os.W_OK):
        _write_marker(co, first_how)
    return co
