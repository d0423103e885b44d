"""The ``segue`` command line."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from segue.core import __version__
from segue.core.errors import (
    BudgetError,
    ConfigError,
    PluginError,
    ScoreError,
    SegueError,
)

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

# Built-in sub-commands, by module; plugins add theirs with ``segue_register_commands``.
COMMANDS: tuple[str, ...] = ("validate", "plan", "pregen", "serve", "tracks", "plugins")


def build_parser(with_plugin_commands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segue", description="Adaptive soundtrack server for games."
    )
    parser.add_argument("--version", action="version", version=f"segue {__version__}")
    parser.add_argument(
        "--strict-plugins",
        action="store_true",
        default=None,
        help="a plugin that fails to load is fatal (also SEGUE_STRICT_PLUGINS=1)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"segue.core.commands.{name}")
        module.add_parser(subparsers)
    if with_plugin_commands:
        from segue.core.plugins import Plugins

        # Plugin commands need the plugins loaded before parsing; failures are reported later.
        try:
            Plugins(strict=False).pm.hook.segue_register_commands(subparsers=subparsers)
        except PluginError:
            pass
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except ScoreError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
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
