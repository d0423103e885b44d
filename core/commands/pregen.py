"""``segue pregen``: generate what is missing, within budget, resumably.

Exit codes: 0 every planned track is stored; 1 some failed (or the budget stopped work
mid-run); 2 bad input, including a plan refused up front for its budget; 130 stopped by
Ctrl-C (SIGINT) or SIGTERM, after in-flight work was cancelled and a summary printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

from segue.core.commands import add_score_argument, check_budget
from segue.core.errors import BudgetError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pregen", help="generate the tracks that are missing")
    add_score_argument(p)
    p.add_argument("--generator", metavar="N", help="use generator N instead of the score's")
    p.add_argument("--concurrency", type=int, metavar="K", help="requests at once")
    p.add_argument(
        "--budget-usd", type=float, metavar="X", help="refuse plans that could cost more"
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be generated")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.add_argument(
        "--deadline-s", type=float, metavar="S", help="a request not done in S seconds is retried"
    )
    p.add_argument(
        "--max-attempts", type=int, default=5, metavar="N", help="attempts per track (default 5)"
    )
    p.add_argument(
        "--retry-base-s",
        type=float,
        default=1.0,
        metavar="S",
        help="first retry waits up to S seconds, doubling each time (default 1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from segue.core.plugins import get_plugins
    from segue.core.score import load_score

    plugins = getattr(args, "plugins", None) or get_plugins(getattr(args, "strict_plugins", None))
    score = load_score(args.score)
    return execute(args, score, plugins)


def make_reporter(args: argparse.Namespace) -> Any:
    from segue.core.logs import logging_json
    from segue.core.pregen.progress import LogReporter, RichReporter

    if logging_json():  # --log-json: progress lines are JSON log lines too, for machines
        return LogReporter(logger=logging.getLogger("segue.pregen"))
    if sys.stderr.isatty():
        return RichReporter()
    return LogReporter()


def _failed_summary(pipeline: Any, exc: BaseException) -> dict[str, Any]:
    """The JSON summary of a run that raised: what was spent, and why it stopped."""
    from segue.core.pregen.progress import PregenSummary

    summary = PregenSummary(budget_usd=getattr(pipeline, "budget_usd", None), interrupted=True)
    summary.spent_usd = float(getattr(pipeline, "_spent_run_usd", 0.0))
    try:
        summary.ledger_usd = pipeline.ledger_total() if pipeline is not None else float("nan")
    except Exception:  # the ledger's store is what failed: the summary still comes
        summary.ledger_usd = float("nan")
    out = summary.to_dict()
    if out["ledger_usd"] != out["ledger_usd"]:
        out["ledger_usd"] = None
    out["error"] = str(exc) or type(exc).__name__
    return out


def execute(args: argparse.Namespace, score: Any, plugins: Any) -> int:
    """Run pregeneration of ``score`` with ``plugins`` (the command, minus loading)."""
    from segue.core.errors import ConfigError
    from segue.core.pregen.pipeline import Pipeline

    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if args.max_attempts < 1:
        raise ConfigError("--max-attempts must be at least 1")
    check_budget(args.budget_usd)
    if args.deadline_s is not None and not args.deadline_s > 0:
        raise ConfigError(f"--deadline-s must be a number of seconds > 0, not {args.deadline_s:g}")
    reporter = None if args.dry_run else make_reporter(args)
    try:
        pipeline = Pipeline(
            score,
            plugins,
            generator=args.generator,
            concurrency=args.concurrency,
            budget_usd=args.budget_usd,
            reporter=reporter,
            deadline_s=args.deadline_s,
            max_attempts=args.max_attempts,
            backoff_base_s=args.retry_base_s,
        )
    except Exception as exc:
        if args.json:
            print(json.dumps(_failed_summary(None, exc), indent=2), flush=True)
        raise
    pipeline.idle_when_done = True  # the process ends with the run: nothing to keep

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        interrupts = 0

        def on_signal() -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1:
                print("segue: stopping (again to force)", file=sys.stderr, flush=True)
                pipeline.stop()
            else:
                raise KeyboardInterrupt

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        try:
            return await pipeline.run(dry_run=args.dry_run)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await pipeline.aclose()

    try:
        summary = asyncio.run(main())
    except (Exception, KeyboardInterrupt) as exc:
        if args.json:  # a JSON reader always gets its summary, saying what stopped the run
            print(json.dumps(_failed_summary(pipeline, exc), indent=2), flush=True)
        raise
    finally:
        # asyncio.run has waited for the generator's threads: what they left can go now.
        pipeline.remove_work()
    if args.dry_run:
        if args.json:
            print(json.dumps(summary.to_dict(), indent=2))
        else:
            for o in summary.outcomes:
                if o.state == "would_generate":
                    print(f"generate {o.mood}#{o.variant} {o.key[:12]} ${o.estimate_usd:.2f}")
                else:
                    print(f"stored   {o.mood}#{o.variant} {o.key[:12]}")
            print(summary.line())
        if summary.refused:
            raise BudgetError(summary.refused)
        return 0
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    return summary.exit_code()
