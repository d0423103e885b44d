"""One module per ``segue`` sub-command; each has ``add_parser(subparsers)`` and ``run(args)``."""
