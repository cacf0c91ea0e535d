"""Should `./start_service.sh` run the installer? Exit 0 for yes, 1 for no (saying why).

Yes on the first start (no engine configured), and on every start while the engine is the one the
installer made (a re-run verifies it in seconds and repairs what is missing). No when the user
configured an engine of their own by hand (GSV_ROOT without the installer's marker): it is theirs,
and the doctor reports on it when the service starts."""

from __future__ import annotations

import sys

from gsv_service.engine_install.cli import configured_engine
from gsv_service.engine_install.source import MARKER


def main(argv: list[str]) -> int:
    if argv:  # installer options given: the user asked for an install
        return 0
    root, _python = configured_engine()
    if root is None or (root / MARKER).is_file():
        return 0
    print(f"engine: GSV_ROOT={root} (configured by hand, left as it is; ./start_service.sh --doctor checks it, "
          "--engine-only installs the service's own)")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
