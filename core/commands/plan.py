"""``segue plan``: every request after prompt transformers, with keys and costs."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from segue.core.commands import add_score_argument, check_budget, count, plain_lines, to_terminal
from segue.core.errors import BudgetError
from segue.core.generator import Generator
from segue.core.plugins import Plugins, get_plugins
from segue.core.pregen.planning import PlannedRequest
from segue.core.score import Score, load_score


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plan", help="list the generation requests and their cost")
    add_score_argument(p)
    p.add_argument("--generator", metavar="N", help="use generator N instead of the score's")
    p.add_argument(
        "--budget-usd", type=float, metavar="X", help="check against X, not the score's budget"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


@dataclass
class PlanState:
    """The plan, for each request whether its track is cached and stored, and the budget."""

    generator: Generator
    plan: list[PlannedRequest]
    cached: list[bool]
    budget_usd: float | None
    refused: str | None  # why `segue pregen` would refuse this plan for its budget


def plan_with_cache_state(
    score: Score, plugins: Plugins, generator_name: str | None, budget_usd: float | None = None
) -> PlanState:
    """The plan, what of it is stored, and whether the budget lets ``pregen`` run it."""
    from segue.core.pregen.pipeline import Pipeline  # numpy and audio: only when planning

    pipeline = Pipeline(score, plugins, generator=generator_name, budget_usd=budget_usd)
    try:
        plan = pipeline.plan()
        cached = [pipeline.stored(p.request) is not None for p in plan]
        refused = pipeline.budget_refusal()
    finally:
        asyncio.run(pipeline.aclose())
    return PlanState(pipeline.generator, plan, cached, pipeline.budget_usd, refused)


def plan_document(score: Score, state: PlanState) -> dict[str, Any]:
    """The ``--json`` document."""
    generator, plan, cached = state.generator, state.plan, state.cached
    requests = []
    for item, is_cached in zip(plan, cached, strict=True):
        r = item.request
        requests.append(
            {
                "mood": r.mood,
                "variant": r.variant,
                "prompt": r.prompt,
                "composition_plan": r.composition_plan,
                "duration_s": r.duration_s,
                "cache_key": r.cache_key,
                "cached": is_cached,
                "cost_usd": item.cost_usd,
                # The part of cost_usd that splits the song into its mood's layers.
                "separation_usd": item.separation_usd,
                "output_format": r.output_format,
                "bpm": r.bpm,
                "key": r.key,
                "stinger": r.stinger,
                "ignored_words": generator_says(generator, "ignored_words", r),
                "instruments": generator_says(generator, "instruments", r),
                "notes": generator_says(generator, "plan_notes", r),
            }
        )
    return {
        "score": str(score.path),
        "generator": generator.name,
        "model": getattr(generator, "model", None),
        "requests": requests,
        "totals": totals(plan, cached),
        "budget_usd": state.budget_usd,
        # `segue pregen`'s refusal of this plan, word for word (exit 2 then), or null.
        "refused": state.refused,
        # The score's warnings (`FILE:LINE: warning: path: message`), as `segue validate`.
        "warnings": list(score.warnings),
    }


def generator_says(generator: Generator, method: str, request: Any) -> list[str]:
    """The answer of the generator's optional ``method(request)`` (docs/plugins.md):
    ``ignored_words``, the prompt words it does not act on; ``instruments``, what the
    request will play, one entry per part ("tune: fiddle"); ``plan_notes``, what it reads
    where the score does not say (the key a bare "Dorian" stands for). None when it does
    not implement it."""
    answer = getattr(generator, method, None)
    return list(answer(request)) if callable(answer) else []


def mood_lines(generator: Generator, plan: list[PlannedRequest]) -> list[str]:
    """Under the table, for each mood and prompt: what it plays (and what another of its
    variants plays instead), the words the generator ignores, and its notes on them."""
    lines: list[str] = []
    played: dict[tuple[str, str], list[str]] = {}
    for item in plan:
        r, name = item.request, generator.name
        parts = generator_says(generator, "instruments", r)
        if (r.mood, r.prompt) in played:
            if parts != played[r.mood, r.prompt]:
                lines.append(f"{r.mood} (variant {r.variant}): {name} plays {'; '.join(parts)}")
            continue
        played[r.mood, r.prompt] = parts
        if parts:
            lines.append(f"{r.mood}: {name} plays {'; '.join(parts)}")
        if words := generator_says(generator, "ignored_words", r):
            lines.append(f"{r.mood}: {name} ignores the words: {', '.join(words)}")
        lines += [f"{r.mood}: {name} {note}" for note in generator_says(generator, "plan_notes", r)]
    return lines


def totals(plan: list[PlannedRequest], cached: list[bool]) -> dict[str, Any]:
    """Counts and costs of all the requests and of the missing ones.

    ``missing`` and the costs count each track once: requests with one cache key (two moods
    asking for the same audio) share one generation, as ``segue pregen`` makes it.
    """
    tracks = {p.key: p for p in plan}
    missing = {p.key: p for p, c in zip(plan, cached, strict=True) if not c}
    return {
        "requests": len(plan),
        "missing": len(missing),
        "cost_usd_missing": round(sum(p.cost_usd for p in missing.values()), 6),
        "cost_usd": round(sum(p.cost_usd for p in tracks.values()), 6),
    }


def run(args: argparse.Namespace) -> int:
    plugins: Plugins = getattr(args, "plugins", None) or get_plugins()
    check_budget(args.budget_usd)
    score = load_score(args.score)
    for line in score.warnings:  # as `segue validate` prints them (--json has them too)
        print(line, file=sys.stderr)
    state = plan_with_cache_state(score, plugins, args.generator, args.budget_usd)
    if args.json:
        json.dump(plan_document(score, state), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(score, state.generator, state.plan, state.cached)
    if state.refused:
        # The plan is shown whole; then what `segue pregen` would say, and its exit code (2).
        sys.stdout.flush()
        raise BudgetError(state.refused)
    return 0


KEY_CHARS = 12  # of the cache key, in the table (--json has it whole)


def _money(usd: float) -> str:
    return f"${usd:,.2f}"


HEADERS = ("mood", "var", "prompt (final)", "dur s", "cache key", "cached", "est. cost")


def table_rows(plan: list[PlannedRequest], cached: list[bool]) -> list[list[str]]:
    """One row of cells per request, in HEADERS order."""
    rows = []
    for item, is_cached in zip(plan, cached, strict=True):
        r = item.request
        prompt = r.prompt
        if r.composition_plan is not None:
            sections = count(len(r.composition_plan.get("sections", [])), "section")
            prompt = f"{prompt}\n[composition plan: {sections}]"
        rows.append(
            [
                r.mood,
                str(r.variant),
                prompt,
                f"{r.duration_s:g}",
                item.key[:KEY_CHARS],
                "yes" if is_cached else "no",
                _money(item.cost_usd)
                + (f" (+${item.separation_usd:.4f} stems)" if item.separation_usd else ""),
            ]
        )
    return rows


def print_table(
    score: Score, generator: Generator, plan: list[PlannedRequest], cached: list[bool]
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    title = f"{score.title} — {count(len(plan), 'request')}, generator {generator.name}"
    t = totals(plan, cached)
    footer = (
        f"requests: {t['requests']}   missing: {t['missing']}   "
        f"estimated cost of the missing: {_money(t['cost_usd_missing'])}   "
        f"of all: {_money(t['cost_usd'])}"
    )
    separation = sum({p.key: p.separation_usd for p in plan}.values())
    if separation:
        footer += f"   (stem separation: ${separation:.4f} of it)"
    rows = table_rows(plan, cached)
    if not to_terminal():
        # A pipe or a file: whole values, one line per request, the long prompt last.
        def prompt_last(cells: Sequence[str]) -> list[str]:
            return [*cells[:2], *cells[3:], cells[2]]

        print(title)
        print("\n".join(plain_lines(prompt_last(HEADERS), map(prompt_last, rows))))
        for line in mood_lines(generator, plan):
            print(line)
        print(footer)
        return
    console = Console()
    table = Table(title=title, show_lines=True)
    # The prompt wraps in what is left, long mood names fold; the other columns keep their
    # width. Together they fit 80 columns.
    table.add_column("mood", overflow="fold", max_width=10)
    table.add_column("var", justify="right", no_wrap=True)
    table.add_column("prompt (final)", overflow="fold", ratio=1, min_width=12)
    table.add_column("dur s", justify="right", no_wrap=True)
    table.add_column("cache key", no_wrap=True)
    table.add_column("cached", justify="center", no_wrap=True)
    table.add_column("est. cost", justify="right", no_wrap=True)
    for row, is_cached in zip(rows, cached, strict=True):
        table.add_row(
            Text(row[0]), *row[1:2], Text(row[2]), *row[3:], style="dim" if is_cached else None
        )
    console.print(table)
    for line in mood_lines(generator, plan):
        console.print(line, markup=False, highlight=False)
    console.print(footer, markup=False, highlight=False)
