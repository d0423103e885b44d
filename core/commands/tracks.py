"""``segue tracks``: the stored tracks and the cost ledger."""

from __future__ import annotations

import argparse

from segue.core.score import DEFAULT_SCORE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tracks", help="list stored tracks")
    p.add_argument("score", nargs="?", default=DEFAULT_SCORE, metavar="SCORE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
