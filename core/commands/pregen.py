"""``segue pregen``: generate what is missing, within budget, resumably."""

from __future__ import annotations

import argparse

from segue.core.score import DEFAULT_SCORE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pregen", help="generate the tracks that are missing")
    p.add_argument("score", nargs="?", default=DEFAULT_SCORE, metavar="SCORE")
    p.add_argument("--generator", metavar="N", help="use generator N instead of the score's")
    p.add_argument("--concurrency", type=int, metavar="K", help="requests at once")
    p.add_argument("--budget-usd", type=float, metavar="X", help="refuse plans that could cost more")
    p.add_argument("--dry-run", action="store_true", help="show what would be generated")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
