"""``segue validate [SCORE]``: parse and check a score."""

from __future__ import annotations

import argparse
import sys

from segue.core.commands import add_score_argument, count
from segue.core.score import load_score


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate", help="parse and check a score")
    add_score_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the warnings and a one-line summary and return 0; a bad score raises
    ScoreError (exit 2)."""
    score = load_score(args.score)
    counts = [
        count(len(score.moods), "mood"),
        count(len(score.rules), "rule"),
        count(len(score.events), "event"),
        count(len(score.transitions), "transition"),
    ]
    # Warnings (valid, but probably not meant) go to stderr, like errors; the exit stays 0.
    for line in score.warnings:
        print(line, file=sys.stderr)
    if score.warnings:
        counts.append(count(len(score.warnings), "warning"))
    print(f"{args.score}: ok — {', '.join(counts)}")
    return 0
