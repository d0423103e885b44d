"""``python -m segue.plugins.fal``: run the fal emulator."""

from segue.plugins.fal.emulator import main

raise SystemExit(main())
