"""``segue plugins``: every plugin, its version, hooks and registrations."""

from __future__ import annotations

import argparse
import json
import sys

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

    console = Console(soft_wrap=False)
    table = Table(title="segue plugins", show_lines=False)
    # One hook per line, never cut inside a name; built-ins by their short name (which
    # SEGUE_DISABLE_PLUGINS takes too), so that the table fits 80 columns.
    table.add_column("plugin", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("hooks", no_wrap=True)
    table.add_column("registered")
    for info in plugins.info():
        registered = "\n".join(
            f"{kind}: {', '.join(names)}" for kind, names in info.registered.items()
        )
        hooks = "\n".join(h.removeprefix("segue_") for h in info.hooks)
        name = info.name.removeprefix("segue.plugins.") if info.source == "builtin" else info.name
        table.add_row(name, info.version or "?", info.source, hooks, registered)
    console.print(table)
    for what, order in (
        ("prompt transformers", plugins.transformers()),
        ("track post-processors", plugins.processors()),
    ):
        if order:
            console.print(f"{what} run in this order: " + " → ".join(order), markup=False)
    for failure in plugins.failures:
        console.print(f"failed: {failure}", markup=False, style="red")
    for name, reason in plugins.skipped.items():
        console.print(f"info: {name} skipped: {reason}", markup=False)
    for name in plugins.disabled:
        console.print(f"info: {name} disabled by SEGUE_DISABLE_PLUGINS", markup=False)
