"""``segue serve``: pregenerate what is missing, then serve the score.

Exit codes: 0 after a clean shutdown (Ctrl-C or SIGTERM: WebSockets closed with 1001,
on-demand generation given its grace period); 1 the server could not start (port in use);
2 bad input (the score's errors, one per line; a plan refused for its budget).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from segue.core.score import DEFAULT_SCORE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="pregenerate, then serve over WebSocket and HTTP")
    p.add_argument("score", nargs="?", default=DEFAULT_SCORE, metavar="SCORE")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (8765)")
    p.add_argument("--no-pregen", action="store_true", help="serve at once; generate on demand")
    p.add_argument("--generator", metavar="N", help="use generator N instead of the score's")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from segue.core.plugins import get_plugins
    from segue.core.score import load_score

    plugins = getattr(args, "plugins", None) or get_plugins(getattr(args, "strict_plugins", None))
    score = load_score(args.score)
    if not 0 <= args.port <= 65535:
        from segue.core.errors import ConfigError

        raise ConfigError(f"--port must be 0-65535, not {args.port}")
    from segue.core.pregen.pipeline import Pipeline

    pipeline = Pipeline(score, plugins, generator=args.generator)
    try:
        return asyncio.run(serve(args, score, plugins, pipeline))
    finally:
        # asyncio.run has waited for the generator's threads: what they left can go now.
        pipeline.remove_work()


def _say(text: str) -> None:
    print(f"segue: {text}", file=sys.stderr, flush=True)


async def serve(args: argparse.Namespace, score: Any, plugins: Any, pipeline: Any) -> int:
    from segue.core.commands.pregen import make_reporter
    from segue.core.pregen.progress import LogReporter
    from segue.core.server.app import create_app, start

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    pregen_task: asyncio.Task[Any] | None = None

    def on_signal() -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if pregen_task is not None and not pregen_task.done():
            pipeline.stop()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        if not args.no_pregen:
            pipeline.reporter = make_reporter(args)
            pregen_task = loop.create_task(pipeline.run())
            summary = await pregen_task
            if stop.is_set():
                _say("interrupted during pregeneration; the next start resumes it")
                return 130
            if summary.failed:
                _say(
                    f"{len(summary.failed)} track(s) failed to generate; their moods are "
                    "generated on demand when a session needs them"
                )
        # On-demand generation while serving logs plain lines, never a live display.
        pipeline.reporter = LogReporter()
        app = create_app(score, pipeline=pipeline, plugins=plugins)
        try:
            runner, port = await start(app, args.host, args.port)
        except OSError as exc:
            _say(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
            return 1
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
