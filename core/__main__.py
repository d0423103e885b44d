"""``python -m segue.core``: the ``segue`` command line."""

import sys

from segue.core.cli import main

sys.exit(main())
