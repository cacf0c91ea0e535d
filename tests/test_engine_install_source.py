"""The installer's source phase, torch choice and .env writing, on small git repositories made
here (a real git: clone over file://, a bare copy with an object removed, folders copied or used
in place). No network: the repair wheel is a local file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gsv_service.engine_install import envfile, source
from gsv_service.engine_install.source import Checkout, SourceError, blob_id, get_checkout
from gsv_service.engine_install.torch_choice import choose_torch

BIG = "GPT_SoVITS/text/big.txt"


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path) -> tuple[Path, str, str]:
    """A tiny upstream: two commits; returns (repo, first commit, second commit)."""
    repo = tmp_path / "upstream"
    (repo / "GPT_SoVITS" / "text").mkdir(parents=True)
    (repo / "GPT_SoVITS" / "s2_train.py").write_text("print('train')\n")
    (repo / "go.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "go.sh").chmod(0o755)
    (repo / BIG).write_text("big file " * 1000)
    git("init", "-q", str(repo))
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "one", cwd=repo)
    first = git("rev-parse", "HEAD", cwd=repo)
    (repo / "GPT_SoVITS" / "s2_train.py").write_text("print('train v2')\n")
    git("commit", "-q", "-am", "two", cwd=repo)
    return repo, first, git("rev-parse", "HEAD", cwd=repo)


def test_clone_fetches_the_asked_commit_not_the_branch_head(upstream, tmp_path):
    repo, first, _ = upstream
    co = get_checkout(f"file://{repo}", tmp_path / "engine" / "co", commit=first, log=lambda m: None)
    assert co.how == "cloned" and co.commit == first and co.at(first[:12])
    assert (co.root / "GPT_SoVITS" / "s2_train.py").read_text() == "print('train')\n"
    assert json.loads((co.root / source.MARKER).read_text())["commit"] == first
    assert not (tmp_path / "engine" / "co.partial").exists()


def test_clone_of_an_unknown_commit_says_so_and_leaves_nothing(upstream, tmp_path):
    repo, _, _ = upstream
    dest = tmp_path / "co"
    with pytest.raises(SourceError, match="git could not fetch|has no commit"):
        get_checkout(f"file://{repo}", dest, commit="0" * 40, log=lambda m: None)
    assert not dest.exists() and not dest.with_name("co.partial").exists()


def test_bare_mirror_is_written_object_by_object_with_modes(upstream, tmp_path):
    repo, first, second = upstream
    bare = tmp_path / "mirror.git"
    git("clone", "-q", "--bare", str(repo), str(bare))
    co = get_checkout(str(bare), tmp_path / "co", commit=second, log=lambda m: None)
    assert co.how == "written from git objects" and co.commit == second and not co.missing
    assert (co.root / "GPT_SoVITS" / "s2_train.py").read_text() == "print('train v2')\n"
    assert os.access(co.root / "go.sh", os.X_OK)
    assert blob_id(co.root / BIG) == git("rev-parse", f"{second}:{BIG}", cwd=repo)


def _snapshot_without(repo: Path, tmp_path: Path, path: str) -> tuple[Path, str]:
    """A bare copy of `repo` with loose objects, minus the blob of `path` (like a snapshot that
    leaves out its largest files)."""
    bare = tmp_path / "snapshot.git"
    git("clone", "-q", "--bare", "--no-local", str(repo), str(bare))
    for pack in (bare / "objects" / "pack").glob("*.pack"):  # explode packs into loose objects
        tmp = pack.with_suffix(".moved")
        pack.rename(tmp)
        pack.with_suffix(".idx").unlink()
        subprocess.run(["git", "--git-dir", str(bare), "unpack-objects", "-q"], stdin=tmp.open("rb"), check=True)
        tmp.unlink()
    oid = git("--git-dir", str(bare), "rev-parse", f"HEAD:{path}")
    (bare / "objects" / oid[:2] / oid[2:]).unlink()
    return bare, oid


def _wheel(tmp_path: Path, name: str, content: bytes) -> Path:
    whl = tmp_path / "wheels" / f"{name}-0.1.0-py3-none-any.whl"
    whl.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr(f"{name}/{BIG}", content)
        info = f"{name}-0.1.0.dist-info"
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return whl


def test_a_blob_missing_from_a_snapshot_is_repaired_only_with_identical_bytes(upstream, tmp_path, monkeypatch):
    repo, _, second = upstream
    bare, _ = _snapshot_without(repo, tmp_path, BIG)
    good = (repo / BIG).read_bytes()

    monkeypatch.setattr(source, "REPAIR_WHEEL", str(_wheel(tmp_path, "wrongcopy", good + b"changed")))
    lines: list[str] = []
    bad = get_checkout(str(bare), tmp_path / "bad", commit=second, python=sys.executable, log=lines.append)
    assert not any("could not download" in line for line in lines), lines  # refused by content, not absent
    assert bad.missing == [BIG] and not bad.repaired and not (bad.root / BIG).exists()
    assert json.loads((bad.root / source.MARKER).read_text())["missing"] == [BIG]

    monkeypatch.setattr(source, "REPAIR_WHEEL", str(_wheel(tmp_path, "rightcopy", good)))
    co = get_checkout(str(bare), tmp_path / "co", commit=second, python=sys.executable, log=lambda m: None)
    assert co.repaired == [BIG] and not co.missing and (co.root / BIG).read_bytes() == good

    # a re-run over the checkout with the file still missing repairs it in place
    again = get_checkout(str(bare), bad.root, commit=second, python=sys.executable, log=lambda m: None)
    assert again.how == "present" and again.repaired == [BIG] and (bad.root / BIG).read_bytes() == good
    assert json.loads((bad.root / source.MARKER).read_text())["how"] == "written from git objects"


def test_checkout_folder_is_copied_or_used_in_place_and_its_commit_reported(upstream, tmp_path):
    repo, first, second = upstream
    copied = get_checkout(str(repo), tmp_path / "copy", commit=first, log=lambda m: None)
    assert copied.how == "copied" and copied.commit == second and not copied.at(first)
    assert (copied.root / "GPT_SoVITS" / "s2_train.py").is_file() and copied.root != repo

    inplace = get_checkout(str(repo), tmp_path / "unused", in_place=True, log=lambda m: None)
    assert inplace.how == "in place" and inplace.root == repo.resolve() and inplace.commit == second
    assert not (tmp_path / "unused").exists()


def test_existing_destination_is_kept_not_refetched(upstream, tmp_path):
    repo, first, second = upstream
    dest = tmp_path / "co"
    get_checkout(f"file://{repo}", dest, commit=first, log=lambda m: None)
    (dest / "GPT_SoVITS" / "local-note.txt").write_text("kept")
    co = get_checkout(f"file://{repo}", dest, commit=second, log=lambda m: None)
    assert co.how == "present" and co.commit == first and not co.at(second)
    assert (dest / "GPT_SoVITS" / "local-note.txt").read_text() == "kept"


@pytest.mark.parametrize("make, match", [
    (lambda p: p, "neither a git repository nor a GPT-SoVITS checkout"),
    (lambda p: p / "nope", "no such folder"),
])
def test_a_source_that_is_not_upstream_is_refused(tmp_path, make, match):
    (tmp_path / "src").mkdir()
    with pytest.raises(SourceError, match=match):
        get_checkout(str(make(tmp_path / "src")), tmp_path / "co", log=lambda m: None)


def test_a_symlink_out_of_the_tree_is_refused(tmp_path):
    repo = tmp_path / "evil"
    (repo / "GPT_SoVITS").mkdir(parents=True)
    (repo / "GPT_SoVITS" / "x.py").write_text("")
    (repo / "GPT_SoVITS" / "link").symlink_to("../../../../etc/passwd")
    git("init", "-q", str(repo))
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "x", cwd=repo)
    bare = tmp_path / "evil.git"
    git("clone", "-q", "--bare", str(repo), str(bare))
    with pytest.raises(SourceError, match="links outside the checkout"):
        get_checkout(str(bare), tmp_path / "co", commit=git("rev-parse", "HEAD", cwd=repo), log=lambda m: None)


# ---------- the torch build ----------

SMI = "| NVIDIA-SMI 570.86   Driver Version: 570.86   CUDA Version: {cuda} |\n@@gpus\nNVIDIA H200, 143771 MiB\n"


@pytest.mark.parametrize("smi, variant", [
    (SMI.format(cuda="12.8"), "cu128"), (SMI.format(cuda="13.0"), "cu128"), (SMI.format(cuda="12.6"), "cu126"),
    (SMI.format(cuda="12.7"), "cu126"), (SMI.format(cuda="12.2"), "cpu"), (None, "cpu"),
    ("NVIDIA-SMI has failed\n", "cpu"),
])
def test_torch_build_follows_the_drivers_cuda_version(smi, variant):
    choice = choose_torch(smi)
    assert choice.variant == variant
    assert choice.index_url.endswith("/" + variant)
    assert choice.reason  # printed to the user
    if variant == "cpu" and smi and "12.2" in smi:
        assert "update the NVIDIA driver" in choice.reason and choice.gpus == ("NVIDIA H200, 143771 MiB",)


def test_torch_index_override():
    assert choose_torch(SMI.format(cuda="12.8"), "pypi").index_url is None
    custom = choose_torch(None, "https://example.invalid/whl")
    assert custom.variant == "custom" and custom.index_url == "https://example.invalid/whl"


# ---------- .env ----------

def test_env_file_update_keeps_other_lines_and_replaces_ours(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# my settings\nGSV_TASK_ROOT=/data/tasks\nGSV_ROOT=/old\nexport GSV_ROOT=/older\n")
    env.chmod(0o600)
    changed = envfile.update_env_file(env, {"GSV_ROOT": "/new/GPT SoVITS", "GSV_PYTHON": "/e/bin/python"})
    assert set(changed) == {"GSV_ROOT", "GSV_PYTHON"}
    text = env.read_text()
    assert text.startswith("# my settings\nGSV_TASK_ROOT=/data/tasks\n")
    assert text.count("GSV_ROOT") == 1 and '"/new/GPT SoVITS"' in text
    assert envfile.read_keys(env) == {"GSV_TASK_ROOT": "/data/tasks", "GSV_ROOT": "/new/GPT SoVITS",
                                      "GSV_PYTHON": "/e/bin/python"}
    assert env.stat().st_mode & 0o777 == 0o600
    assert envfile.update_env_file(env, {"GSV_ROOT": "/new/GPT SoVITS"}) == []
    envfile.update_env_file(env, {"GSV_PYTHON": None})
    assert "GSV_PYTHON" not in envfile.read_keys(env)
    assert not list(tmp_path.glob(".env.*"))


def test_env_file_is_read_by_the_service_settings(tmp_path):
    from gsv_service.settings import Settings

    env = tmp_path / ".env"
    envfile.update_env_file(env, {"GSV_ROOT": "/x/GPT SoVITS", "GSV_PYTHON": "/x/venv/bin/python"})
    s = Settings(_env_file=env)
    assert s.engine_root == Path("/x/GPT SoVITS") and s.engine_python == "/x/venv/bin/python"


# ---------- the command line, end to end without venv and models ----------

def _install(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gsv_service.engine_install", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})


def test_cli_installs_source_and_records_it_in_env(upstream, tmp_path):
    repo, first, _ = upstream
    env = tmp_path / "svc.env"
    common = ["--engine-source", f"file://{repo}", "--engine-dir", str(tmp_path / "e" / "co"),
              "--engine-venv", str(tmp_path / "e" / "venv"), "--skip-venv", "--engine-python", sys.executable,
              "--skip-models", "--skip-doctor", "--env-file", str(env)]
    r = _install(*common, "--engine-commit", first, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert envfile.read_keys(env) == {"GSV_ROOT": str(tmp_path / "e" / "co"), "GSV_PYTHON": sys.executable}
    report = json.loads((tmp_path / "e" / "install-report.json").read_text())
    assert report["ok"] and report["commit"] == first
    assert [p["name"] for p in report["phases"]] == ["source", "env"]
    assert report["phases"][0]["action"] == "cloned" and report["phases"][0]["bytes_on_disk"] > 0

    again = _install(*common, "--engine-commit", first, cwd=tmp_path)
    assert again.returncode == 0 and "present" in again.stdout
    assert json.loads((tmp_path / "e" / "install-report.json").read_text())["phases"][1]["action"] == "present"


def test_cli_refuses_a_checkout_at_another_commit_and_writes_no_env(upstream, tmp_path):
    repo, _, _ = upstream
    env = tmp_path / "svc.env"
    r = _install("--engine-source", str(repo), "--engine-dir", str(tmp_path / "co"), "--skip-venv",
                 "--skip-models", "--skip-doctor", "--env-file", str(env), cwd=tmp_path)
    assert r.returncode == 1
    assert "not 48b1a0169a28" in r.stderr and "git -C" in r.stderr
    assert not env.exists()


def test_cli_rejects_unknown_versions(tmp_path):
    r = _install("--versions", "v2ProPlus,v9", cwd=tmp_path)
    assert r.returncode == 2 and "unknown model version(s) v9" in r.stderr and "v2ProPlus" in r.stderr
