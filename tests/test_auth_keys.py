"""`python -m gsv_service keys create|list|revoke` against the real database (SQLite file, and
PostgreSQL when TEST_DATABASE_URL is set): the key is printed once and stored only as a hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import ROOT, server_env


def keys_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gsv_service", "keys", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def create_key(env: dict[str, str], cwd: Path, name: str, scope: str) -> str:
    r = keys_cli(env, cwd, "create", "--name", name, "--scope", scope)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _db_url(tmp_path: Path, db_url: str | None) -> str:
    return db_url or f"sqlite:///{tmp_path / 'service.db'}"


def test_create_list_revoke_store_only_a_hash(tmp_path, db_url):
    env = server_env(tmp_path, db_url)
    r = keys_cli(env, tmp_path, "create", "--name", "ci", "--scope", "run")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert key.startswith("gsv_") and len(key) > 40 and "\n" not in key
    assert "shown only now" in r.stderr
    admin = create_key(env, tmp_path, "ops", "admin")

    eng = create_engine(_db_url(tmp_path, db_url))
    with eng.connect() as c:
        rows = c.execute(text("SELECT name, scope, prefix, key_hash, revoked_at FROM api_keys ORDER BY name")).all()
    eng.dispose()
    assert [(n, s) for n, s, *_ in rows] == [("ci", "run"), ("ops", "admin")]
    assert rows[0].key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(rows[0].prefix) and len(rows[0].prefix) < len(key) // 2
    if db_url is None:  # the key is nowhere in the database's files, WAL included
        for f in tmp_path.glob("service.db*"):
            data = f.read_bytes()
            assert key.encode() not in data and admin.encode() not in data, f.name

    listed = json.loads(keys_cli(env, tmp_path, "list", "--json").stdout)
    assert {k["name"] for k in listed} == {"ci", "ops"}
    assert all(set(k) == {"id", "name", "scope", "prefix", "created_at", "revoked_at"} for k in listed)
    plain = keys_cli(env, tmp_path, "list").stdout
    assert "ci" in plain and key not in plain and admin not in plain

    dup = keys_cli(env, tmp_path, "create", "--name", "ci", "--scope", "read")
    assert dup.returncode == 1 and "already named 'ci'" in dup.stderr
    assert keys_cli(env, tmp_path, "revoke", "ci").returncode == 0
    again = keys_cli(env, tmp_path, "revoke", "ci")
    assert again.returncode == 1 and "no active key" in again.stderr
    ops_id = next(k["id"] for k in listed if k["name"] == "ops")
    assert keys_cli(env, tmp_path, "revoke", ops_id).returncode == 0
    states = {k["name"]: k["revoked_at"] for k in json.loads(keys_cli(env, tmp_path, "list", "--json").stdout)}
    assert states["ci"] and states["ops"]
    # the name is free again once revoked
    assert create_key(env, tmp_path, "ci", "read") != key


def test_bad_scope_and_no_command_are_usage_errors(tmp_path):
    env = server_env(tmp_path)
    r = keys_cli(env, tmp_path, "create", "--name", "x", "--scope", "root")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = subprocess.run([sys.executable, "-m", "gsv_service"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "keys" in r.stderr
