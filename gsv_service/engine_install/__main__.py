import sys

from gsv_service.engine_install.cli import main

sys.exit(main())
