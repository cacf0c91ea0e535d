"""`python -m gsv_service COMMAND ...`: the service's command-line tools."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {"keys": ("gsv_service.auth.cli", "create, list and revoke API keys")}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        lines = [f"  {name:<6} {doc}" for name, (_, doc) in COMMANDS.items()]
        print("usage: python -m gsv_service COMMAND [...]\ncommands:\n" + "\n".join(lines), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    code: int = importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:])
    return code


if __name__ == "__main__":
    sys.exit(main())
