"""One module per ``segue`` sub-command; each has ``add_parser(subparsers)`` and ``run(args)``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence

from segue.core.errors import ConfigError
from segue.core.score import DEFAULT_SCORE

SCORE_HELP = f"the score file (default: ./{DEFAULT_SCORE})"


def add_score_argument(parser: argparse.ArgumentParser) -> None:
    """The optional SCORE positional every score command takes, with its default said."""
    parser.add_argument("score", nargs="?", default=DEFAULT_SCORE, metavar="SCORE", help=SCORE_HELP)


def check_budget(budget_usd: float | None) -> None:
    """``--budget-usd``: dollars, 0 or more (``nan`` or ``inf`` is no budget to check)."""
    if budget_usd is not None and not (math.isfinite(budget_usd) and budget_usd >= 0):
        raise ConfigError(f"--budget-usd must be a number of dollars >= 0, not {budget_usd:g}")


def count(n: int, word: str) -> str:
    """``1 mood``, ``2 moods``: ``n`` and ``word``, plural unless ``n`` is 1."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def plain_lines(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A table as aligned plain lines, one per row, never cut or wrapped.

    What a listing prints when its output is not a terminal (a pipe, a file): rich would
    squeeze the table to 80 columns and fold its cells; these lines keep every value
    whole and on one line, for ``grep``, ``cut`` and ``column``. Newlines in a cell
    become spaces; columns are two spaces apart.
    """
    table = [list(headers)] + [[" ".join(str(cell).split()) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]


def to_terminal() -> bool:
    """Whether standard output is a terminal (a live table) rather than a pipe or file."""
    return sys.stdout.isatty()
