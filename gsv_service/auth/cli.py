"""`python -m gsv_service keys create|list|revoke`: manage API keys in the service's database
(the same settings as the server: GSV_DATABASE_URL or GSV_SQLITE_PATH, environment or .env)."""

from __future__ import annotations

import argparse
import json
import sys

from gsv_service.auth.keys import KeyProblem, KeyStore, describe
from gsv_service.auth.principal import Scope


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gsv_service keys", description=(
        "API keys. Scopes: read (GET only), run (everything on the key's own tasks), admin (every task)."))
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="create a key; it is printed once and stored only as a hash")
    c.add_argument("--name", required=True, help="who or what uses it, e.g. ci")
    c.add_argument("--scope", choices=[s.value for s in Scope], default=Scope.run.value)
    ls = sub.add_parser("list", help="every key (never the key itself: its first characters)")
    ls.add_argument("--json", action="store_true", help="as JSON")
    r = sub.add_parser("revoke", help="revoke a key by id or name (servers stop accepting it within seconds)")
    r.add_argument("key", help="the key's id or name (see list)")
    return p


def _store() -> KeyStore:
    from gsv_service.db import make_engine, migrate
    from gsv_service.settings import Settings

    engine = make_engine(Settings().db_url)
    migrate(engine)
    return KeyStore(engine)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    keys = _store()
    try:
        if args.command == "create":
            new = keys.create(args.name, Scope(args.scope))
            print(new.key)
            print(f"created key {new.name!r} (id {new.id}, scope {new.scope.value}); it is shown only now: "
                  "keep it. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.", file=sys.stderr)
        elif args.command == "list":
            rows = keys.list()
            if args.json:
                print(json.dumps(rows, default=str, indent=1))
            else:
                print("\n".join(describe(k) for k in rows) or "no keys: the service is open on loopback only")
        else:
            gone = keys.revoke(args.key)
            print(f"revoked key {gone['name']!r} (id {gone['id']})")
    except KeyProblem as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        keys.engine.dispose()
    return 0
