"""The ``segue`` command line."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from segue.core import __version__, logs
from segue.core.errors import (
    BudgetError,
    ConfigError,
    PluginError,
    ScoreError,
    SegueError,
    error_line,
)

if TYPE_CHECKING:
    from segue.core.plugins import Plugins

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

# Built-in sub-commands, by module; plugins add theirs with ``segue_register_commands``.
COMMANDS: tuple[str, ...] = ("init", "validate", "plan", "pregen", "serve", "tracks", "plugins")


STRICT_FLAG = "--strict-plugins"
LOG_JSON_FLAG = "--log-json"


def build_parser(
    with_plugin_commands: bool = True, plugins: Plugins | None = None
) -> argparse.ArgumentParser:
    """The ``segue`` parser; plugin sub-commands come from ``plugins`` (default: get_plugins())."""
    from segue.core.plugins import get_plugins

    parser = argparse.ArgumentParser(
        prog="segue", description="Adaptive soundtrack server for games."
    )
    parser.add_argument("--version", action="version", version=f"segue {__version__}")
    parser.add_argument(
        STRICT_FLAG,
        action="store_true",
        default=None,
        help="a plugin that fails to load is fatal (also SEGUE_STRICT_PLUGINS=1)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging (the server: connections, every state change and its decision);"
        " before or after the command",
    )
    parser.add_argument(
        LOG_JSON_FLAG,
        action="store_true",
        help="log lines as JSON objects, for machines; before or after the command",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"segue.core.commands.{name}")
        module.add_parser(subparsers)
    if with_plugin_commands:
        if plugins is None:
            plugins = get_plugins()
        # One implementation at a time, so a clash names the plugin that caused it.
        for impl in reversed(plugins.pm.hook.segue_register_commands.get_hookimpls()):
            try:
                impl.function(subparsers=subparsers)
            except (argparse.ArgumentError, ValueError) as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name}: segue_register_commands: {exc}"
                ) from None
            except Exception as exc:  # a bug in the plugin: one line naming it, exit 2
                text = error_line(exc)
                raise PluginError(
                    f"plugin {impl.plugin_name}: segue_register_commands raised {text}"
                ) from None
    return parser


def _split_flags(argv: list[str], flags: tuple[str, ...]) -> tuple[list[str], bool]:
    """Take ``flags`` out of ``argv`` wherever they are (before a ``--``); whether any was."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = any(a in flags for a in argv[:end])
    rest = [a for a in argv[:end] if a not in flags] + argv[end:]
    return rest, found


def _split_strict(argv: list[str]) -> tuple[list[str], bool]:
    """Take ``--strict-plugins`` out of ``argv`` wherever it is (before a ``--``)."""
    return _split_flags(argv, (STRICT_FLAG,))


def _split_logging(argv: list[str]) -> tuple[list[str], bool, bool]:
    """Take ``-v``/``--verbose`` and ``--log-json`` out of ``argv`` wherever they are
    (``segue serve -v`` as well as ``segue -v serve``): ``(rest, verbose, as_json)``."""
    argv, verbose = _split_flags(argv, ("-v", "--verbose"))
    argv, as_json = _split_flags(argv, (LOG_JSON_FLAG,))
    return argv, verbose, as_json


def main(argv: Sequence[str] | None = None) -> int:
    # Loading modules and plugins makes some 100,000 objects that all live on: collections
    # while they are made only walk them (0.05-0.1 s of every start). On at the command.
    gc.disable()
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while modules and plugins load, before a command runs
        print("segue: interrupted", file=sys.stderr)
        return 130
    finally:
        gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    argv, strict_flag = _split_strict(list(sys.argv[1:] if argv is None else argv))
    argv, verbose, as_json = _split_logging(argv)
    logs.configure(verbose, as_json)
    # Plugins are loaded once per process: here, before parsing (they may add sub-commands);
    # commands reuse this instance as ``args.plugins`` (or get_plugins()). Imported here,
    # not with the module, so that a Ctrl-C while they load meets main()'s handler.
    from segue.core.plugins import get_plugins

    try:
        plugins = get_plugins(strict=True if strict_flag else None)
        parser = build_parser(plugins=plugins)
    except PluginError as exc:
        print(f"segue: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args = parser.parse_args(argv)
    args.strict_plugins = plugins.strict
    args.plugins = plugins
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    gc.enable()  # `segue serve` keeps it off until it serves (see its module)
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
    except BrokenPipeError:  # `segue plan --json | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:  # the state folder cannot be written, a disk is full…
        print(f"segue: {os_error_text(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        if verbose:
            raise
        text = error_line(exc)
        # A plugin's bug where segue does not guard the call (a cache's get): name it.
        culprit = plugins.at_fault(exc)
        where = f"plugin {culprit}: " if culprit else ""
        print(
            f"segue: {where}unexpected error: {text} (run with -v for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def os_error_text(exc: OSError) -> str:
    """``file exists: /x/.segue/tracks`` rather than ``[Errno 17] File exists: …``."""
    if not exc.strerror:
        return " ".join(str(exc).split())
    text = exc.strerror[:1].lower() + exc.strerror[1:]
    if exc.filename is not None:
        text += f": {exc.filename}"
    return " ".join(text.split())
