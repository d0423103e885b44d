"""``segue plugins``: every plugin, its version, hooks and registrations."""

from __future__ import annotations

import argparse
import json
import sys

from segue.core.commands import plain_lines, to_terminal
from segue.core.plugins import Plugins, get_plugins


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plugins", help="list plugins, hooks and registrations")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plugins: Plugins = getattr(args, "plugins", None) or get_plugins()
    if args.json:
        json.dump(plugins.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print_table(plugins)
    return 0


def print_table(plugins: Plugins) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = []
    for info in plugins.info():
        name = info.name.removeprefix("segue.plugins.") if info.source == "builtin" else info.name
        registered = [f"{kind}: {', '.join(names)}" for kind, names in info.registered.items()]
        hooks = [h.removeprefix("segue_") for h in info.hooks]
        rows.append((name, info.version or "?", info.source, hooks, registered))
    notes = []
    for what, order in (
        ("prompt transformers", plugins.transformers()),
        ("track post-processors", plugins.processors()),
    ):
        if order:
            notes.append((f"{what} run in this order: " + " → ".join(order), None))
    notes += [(f"failed: {failure}", "red") for failure in plugins.failures]
    notes += [(f"info: {name} skipped: {reason}", None) for name, reason in plugins.skipped.items()]
    notes += [
        (f"info: {name} disabled by SEGUE_DISABLE_PLUGINS", None) for name in plugins.disabled
    ]
    if not to_terminal():
        # A pipe or a file: whole values (a long distribution name too), one line per plugin.
        print("segue plugins")
        print(
            "\n".join(
                plain_lines(
                    HEADERS,
                    ([*cells, ", ".join(hooks), "; ".join(reg)] for *cells, hooks, reg in rows),
                )
            )
        )
        for text, _style in notes:
            print(text)
        return
    console = Console(soft_wrap=False)
    table = Table(title="segue plugins", show_lines=False)
    # One hook per line, never cut inside a name; built-ins by their short name (which
    # SEGUE_DISABLE_PLUGINS takes too), so that the table fits 80 columns.
    # A long plugin or distribution name folds (never cut: nothing is lost on a terminal).
    longest_hook = max((len(h) for *_c, hooks, _r in rows for h in hooks), default=5)
    table.add_column("plugin", overflow="fold", max_width=16)
    table.add_column("version", overflow="fold", max_width=12)
    table.add_column("source", overflow="fold", max_width=16)
    table.add_column("hooks", no_wrap=True, min_width=longest_hook)
    table.add_column("registered", overflow="fold")
    for *cells, hooks, registered in rows:
        table.add_row(*cells, "\n".join(hooks), "\n".join(registered))
    console.print(table)
    for text, style in notes:
        console.print(text, markup=False, style=style)


HEADERS = ("plugin", "version", "source", "hooks", "registered")
