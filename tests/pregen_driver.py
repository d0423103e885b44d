"""Run a ``segue`` sub-command (pregen, tracks) on a score spec with the faulty plugin.

``python pregen_driver.py SPEC.json pregen [--json ...]``: the command's own ``execute``,
with the score built from the spec and the plugins given the faulty generator, so a test
can run the real command in a real subprocess without installing a package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pregen_support

from segue.core.cli import EXIT_BAD_INPUT, EXIT_FAILURE, build_parser
from segue.core.errors import (
    BudgetError,
    ConfigError,
    PluginError,
    ScoreError,
    SegueError,
)


def run(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    score = pregen_support.build_score(spec_path.parent, spec)
    parser = build_parser(with_plugin_commands=False)
    args = parser.parse_args([*argv[1:], str(score.path)])
    module = sys.modules[args.func.__module__]
    # The same mapping of errors to exit codes as segue.core.cli.main.
    try:
        return module.execute(args, score, pregen_support.plugins())
    except ScoreError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ConfigError, BudgetError, PluginError) as exc:
        print(f"segue: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SegueError as exc:
        print(f"segue: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("segue: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
