"""``segue serve``: serve the score at once, generating what is missing behind it.

The port is taken first (a port in use fails before any work), the plan's budget and the
generator's readiness are checked, then the server answers while the missing tracks are
generated in the background, the mood a new session hears first (see
``segue.core.server.warmup``): with the synth, its first track by a worker process forked
right after the port is taken, on the other core while the server starts
(``segue.core.pregen.headstart``). Until the server accepts, a thread answers
``/healthz`` (``segue.core.server.early``).

Exit codes: 0 after a clean shutdown (Ctrl-C or SIGTERM: WebSockets closed with 1001,
generation in flight given its grace period); 1 the server could not start (port in
use); 2 bad input (the score's errors, one per line; a plan refused for its budget).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from typing import Any

from segue.core.commands import add_score_argument

SETTLE_HEAP_AFTER_S = 1.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="serve over WebSocket and HTTP at once, generating what is missing"
    )
    add_score_argument(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (8765)")
    p.add_argument(
        "--no-pregen", action="store_true", help="generate only what sessions ask for, on demand"
    )
    p.add_argument("--generator", metavar="N", help="use generator N instead of the score's")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # No garbage collection while starting: what is made now lives on (settle_heap, once
    # serving, collects, freezes it and turns the collector back on).
    gc.disable()
    from segue.core.plugins import get_plugins
    from segue.core.score import load_score
    from segue.core.server.sockets import listen

    plugins = getattr(args, "plugins", None) or get_plugins(getattr(args, "strict_plugins", None))
    score = load_score(args.score)
    if not 0 <= args.port <= 65535:
        from segue.core.errors import ConfigError

        raise ConfigError(f"--port must be 0-65535, not {args.port}")
    # The port first: taken, it fails now, before anything is generated (or paid for).
    try:
        sockets = listen(args.host, args.port)
    except OSError as exc:
        _say(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return 1
    head = None
    early = None
    try:
        if not args.no_pregen:
            # The first track in a worker process, on the other core, while this one
            # imports and starts the server (segue.core.pregen.headstart).
            from segue.core.pregen import headstart

            head = headstart.start(score, plugins, args.generator, sockets)
        # /healthz answered while the server starts (after the fork: it is a thread).
        from segue.core.server.early import EarlyAnswers

        early = EarlyAnswers(sockets).start()
        from segue.core.pregen.pipeline import Pipeline

        pipeline = Pipeline(score, plugins, generator=args.generator)
        pipeline.head_start = head
        try:
            return asyncio.run(serve(args, score, plugins, pipeline, sockets, early))
        finally:
            # asyncio.run has waited for the generator's threads: what they left can go now.
            pipeline.remove_work()
    except BaseException:
        if head is not None:
            head.stop()  # a Ctrl-C before the server ran: the worker goes with it
        raise
    finally:
        if early is not None:
            for conn in early.stop():  # the server never ran: nobody answers them
                conn.close()
        for sock in sockets:
            sock.close()


def _say(text: str) -> None:
    print(f"segue: {text}", file=sys.stderr, flush=True)


async def check_plan(pipeline: Any, *, budget: bool = True) -> None:
    """Refuse a plan over budget, or a generator that is not ready (FAL_KEY…), before
    serving: the background generation would only fail later, one track at a time.
    ``budget=False`` (``--no-pregen``: only what sessions ask for is made, each request
    checked against the budget then) checks the generator alone."""
    from segue.core.errors import BudgetError

    dry = await pipeline.run(dry_run=True)
    if budget and dry.refused:
        raise BudgetError(dry.refused)
    preflight = getattr(pipeline.generator, "preflight", None)
    if dry.would_generate and preflight is not None:
        preflight()


async def serve(
    args: argparse.Namespace,
    score: Any,
    plugins: Any,
    pipeline: Any,
    sockets: list[Any],
    early: Any = None,
) -> int:
    from segue.core.pregen.progress import LogReporter
    from segue.core.server.app import create_app, settle_heap, start

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await check_plan(pipeline, budget=not args.no_pregen)
        # Generation while serving goes to the server's logs, never a live display.
        pipeline.reporter = LogReporter(logger=logging.getLogger("segue.generation"))
        app = create_app(
            score, pipeline=pipeline, plugins=plugins, generate_in_background=not args.no_pregen
        )
        # The early answers stop before the server accepts; what they kept, it serves.
        kept = early.stop() if early is not None else []
        runner, port = await start(app, sockets=sockets)
        for conn in kept:
            try:
                await loop.connect_accepted_socket(runner.server, conn)
            except OSError:  # gone meanwhile
                conn.close()
        if pipeline.head_start is not None:
            pipeline.head_start.serving()
        # Once the first requests (the client that waited for the port) are answered.
        loop.call_later(SETTLE_HEAP_AFTER_S, settle_heap)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(
            f"segue: serving {score.title!r} on http://{host}:{port}/ "
            f"(WebSocket ws://{host}:{port}/ws) — Ctrl-C to stop",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            _say("shutting down")
            await runner.cleanup()
        return 0
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await pipeline.aclose()
