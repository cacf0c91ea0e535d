"""The whole engine install on a fresh folder, then the real-engine tests on its result. Runs when
GSV_TEST_INSTALL=1 (tens of minutes and ~10 GB: torch and upstream's requirements); skipped otherwise.

1. installer: source (GSV_TEST_ENGINE_SOURCE: a git URL, a mirror or a checkout; default GitHub) and
   the engine venv, without models;
2. tiny models + offline stand-ins (tools/make_models_folder.py) served by a local hub that answers
   like Hugging Face's (tests/fake_hub.py), laid out as the plan's repos;
3. installer again with HF_ENDPOINT at that hub: the models phase downloads through huggingface_hub's
   client, the doctor is all green (no fail, no warn but GPU and disk ones);
4. a third run finds everything present in seconds and downloads nothing;
5. tests/test_real_engine.py against the installed engine.

GSV_TEST_INSTALL_DIR keeps the engine between runs (a re-run verifies instead of installing).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gsv_service.engine_install import plan
from gsv_service.engine_install.envfile import read_keys
from tests.fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = os.environ.get("GSV_TEST_VERSIONS", "v2ProPlus").split()
pytestmark = [pytest.mark.timeout(7200),
              pytest.mark.skipif(os.environ.get("GSV_TEST_INSTALL") != "1",
                                 reason="the full engine install runs with GSV_TEST_INSTALL=1")]


def _install(work: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GSV_", "HF_"))}
    env.update(PYTHONPATH=str(ROOT), HF_HOME=str(work / "hf-home"))
    r = subprocess.run([sys.executable, "-m", "gsv_service.engine_install", "--engine-dir", str(work / "GPT-SoVITS"),
                        "--engine-venv", str(work / "venv"), "--env-file", str(work / ".env"),
                        "--versions", ",".join(VERSIONS), *args],
                       env=env, cwd=work, capture_output=True, text=True, timeout=3600)
    print(r.stdout[-6000:], r.stderr[-3000:])
    report = json.loads((work / "install-report.json").read_text())
    return r, report


def _zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            z.write(p, p.relative_to(folder.parent).as_posix())
    return buf.getvalue()


def hub_from_folder(hub: FakeHub, models: Path, versions: list[str]) -> int:
    """Publish a --models-from folder under the plan's repos and paths, as the real hub has them."""
    n = 0
    for item in plan.model_plan(versions):
        src = models / item.local
        if item.kind == "file":
            hub.add(item.repo, item.path, src.read_bytes())
        elif item.kind == "folder":
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                hub.add(item.repo, f"{item.path}/{f.relative_to(src).as_posix()}", f.read_bytes())
        else:  # upstream's archives hold their folder: G2PWModel/..., nltk_data/...
            hub.add(item.repo, item.path, _zip_folder(src))
        n += 1
    return n


def test_fresh_install_to_a_trained_voice(tmp_path_factory):
    work = Path(os.environ.get("GSV_TEST_INSTALL_DIR") or tmp_path_factory.mktemp("install"))
    work.mkdir(parents=True, exist_ok=True)
    source = os.environ.get("GSV_TEST_ENGINE_SOURCE")
    r, rep = _install(work, *(["--engine-source", source] if source else []), "--skip-models", "--skip-doctor")
    assert r.returncode == 0, r.stderr
    phases = {p["name"]: p for p in rep["phases"]}
    assert rep["commit"].startswith("48b1a0169a28") and phases["venv"]["action"] in ("installed", "present")
    keys = read_keys(work / ".env")
    python = keys["GSV_PYTHON"]
    assert keys["GSV_ROOT"] == str(work / "GPT-SoVITS") and Path(python).is_file()

    models = work / "models-folder"
    if not (models / "fast_langdetect" / "lid.176.bin").is_file():
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_models_folder.py"), "--root", keys["GSV_ROOT"],
                        "--python", python, "--out", str(models), "--versions", *VERSIONS], check=True, timeout=1800)
    with FakeHub() as hub:
        assert hub_from_folder(hub, models, VERSIONS) == len(plan.model_plan(VERSIONS))
        r, rep = _install(work, "--hf-endpoint", hub.url)
        assert r.returncode == 0, r.stderr
        phases = {p["name"]: p for p in rep["phases"]}
        assert phases["models"]["action"] in ("installed", "present")
        assert rep["doctor"].startswith("doctor: "), rep["doctor"]
        assert " 0 fail" in rep["doctor"], rep["doctor"]
        for item in plan.model_plan(VERSIONS):
            base = Path(python).parents[1] if item.base == "venv" else work / "GPT-SoVITS"
            assert (base / item.dest).exists(), item.key

        gets = len(hub.file_gets())
        r, rep = _install(work, "--hf-endpoint", hub.url, "--skip-doctor")
        assert r.returncode == 0
        assert all(p["action"] == "present" for p in rep["phases"]), rep["phases"]
        assert sum(p["seconds"] for p in rep["phases"]) < 60
        assert len(hub.file_gets()) == gets  # nothing downloaded again

    env = {**os.environ, "GSV_ROOT": keys["GSV_ROOT"], "GSV_PYTHON": python,
           "GSV_TEST_TINY_DIR": str(work / "tiny-for-tests")}
    t = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "tests/test_real_engine.py", "tests/test_doctor.py"],
                       cwd=ROOT, env=env, timeout=7000)
    assert t.returncode == 0
