"""`python -m simulator.cli ...` is `v3sim ...`."""

import sys

from simulator.cli.main import main

sys.exit(main())
