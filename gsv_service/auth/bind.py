"""The start-up refusal: binding beyond loopback while no API key exists would hand the service to
anyone who can reach the address, so the server refuses to start unless told --insecure."""

from __future__ import annotations

import ipaddress

from gsv_service.settings import Settings

EXIT_REFUSED = 2


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to, treat it as reachable from outside


def any_active_key(settings: Settings) -> bool:
    from gsv_service.auth.keys import KeyStore
    from gsv_service.db import make_engine, migrate

    engine = make_engine(settings.db_url)
    try:
        migrate(engine)
        return KeyStore(engine).any_active()
    finally:
        engine.dispose()


def refusal(host: str, insecure: bool, settings: Settings) -> str | None:
    """Why the server must not start on `host`, or None."""
    if insecure or is_loopback(host) or any_active_key(settings):
        return None
    return (f"refusing to listen on {host}: the service has no API key, so anyone who can reach this "
            "address could use it. Create a key first:\n"
            "  python -m gsv_service keys create --name admin --scope admin\n"
            "(clients then send it as 'Authorization: Bearer <key>'), or listen on 127.0.0.1 only, or "
            "pass --insecure to start open anyway.")


def main(argv: list[str] | None = None) -> int:
    """`python -m gsv_service.auth.bind HOST [--insecure]`: start_service.sh checks before it starts
    the server (in the background with --daemon, where the server's own refusal would go unseen)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m gsv_service.auth.bind")
    p.add_argument("host")
    p.add_argument("--insecure", action="store_true")
    args = p.parse_args(argv)
    why = refusal(args.host, args.insecure, Settings())
    if why:
        print(why, file=sys.stderr)
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
