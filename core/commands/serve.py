"""``segue serve``: pregenerate what is missing, then serve the score."""

from __future__ import annotations

import argparse

from segue.core.score import DEFAULT_SCORE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="pregenerate, then serve over WebSocket and HTTP")
    p.add_argument("score", nargs="?", default=DEFAULT_SCORE, metavar="SCORE")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--no-pregen", action="store_true", help="serve at once; generate on demand")
    p.add_argument("--generator", metavar="N", help="use generator N instead of the score's")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
