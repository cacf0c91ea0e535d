#!/usr/bin/env bash
# Set up the test environment (first run) and run the whole test suite.
#   ./run_tests.sh [pytest args]
# Real-engine tests run when GSV_ROOT (and GSV_PYTHON) point at a GPT-SoVITS checkout; else they skip.
# Store tests also run on PostgreSQL when TEST_DATABASE_URL is set.
cd "$(dirname "$0")"
source ./scripts_common.sh
ensure_system_tools ffmpeg espeak-ng chromium
ensure_venv requirements-dev.txt
"$VENV/bin/ruff" check -q gsv_service tools || exit 1
"$VENV/bin/mypy" gsv_service || exit 1   # --strict (pyproject.toml)
exec "$VENV/bin/python" -m pytest -q "$@"
