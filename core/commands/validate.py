"""``segue validate [SCORE]``: parse and check a score."""

from __future__ import annotations

import argparse

from segue.core.score import DEFAULT_SCORE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate", help="parse and check a score")
    p.add_argument("score", nargs="?", default=DEFAULT_SCORE, metavar="SCORE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
