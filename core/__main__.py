import sys

from segue.core.cli import main

sys.exit(main())
