"""Schemathesis against a live server with an API key: every phase (examples, coverage, fuzzing,
stateful), failing on any 5xx, an answer that does not fit its documented schema, an undocumented
status code or content type. Slow (minutes): runs only with GSV_TEST_SCHEMATHESIS=1.
GSV_TEST_SCHEMATHESIS_EXAMPLES sets the cases per operation (default 30)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer, server_env

pytestmark = [pytest.mark.skipif(os.environ.get("GSV_TEST_SCHEMATHESIS") != "1",
                                 reason="slow: set GSV_TEST_SCHEMATHESIS=1 to run"),
              pytest.mark.timeout(3600)]
CHECKS = ("not_a_server_error,response_schema_conformance,status_code_conformance,"
          "content_type_conformance,response_headers_conformance,use_after_free,ensure_resource_availability")


def _admin_key(env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "gsv_service", "keys", "create", "--name", "schemathesis",
                          "--scope", "admin"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path):
    env = server_env(tmp_path)
    key = _admin_key(env, tmp_path)
    srv = LiveServer(env, tmp_path).start()
    st = Path(sys.executable).with_name("st")
    try:
        run = subprocess.run(
            [str(st), "run", f"{srv.url}/openapi.json", "--phases", "examples,coverage,fuzzing,stateful",
             "--checks", CHECKS, "--max-examples", os.environ.get("GSV_TEST_SCHEMATHESIS_EXAMPLES", "30"),
             "--header", f"Authorization: Bearer {key}", "--workers", "2", "--request-timeout", "30",
             "--seed", "10", "--generation-database", "none", "--no-color", "--continue-on-failure",
             "--report", "junit", "--report-dir", str(tmp_path / "report")],
            cwd=tmp_path, capture_output=True, text=True, timeout=3300)
    finally:
        srv.stop()
    (Path(os.environ.get("GSV_TEST_SCHEMATHESIS_OUT", tmp_path)) / "schemathesis.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
