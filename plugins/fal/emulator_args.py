"""The emulator's command-line options (kept light: the CLI builds its parser on every run)."""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8790


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--latency", type=float, default=3.0, metavar="S", help="seconds each run takes at least"
    )
    parser.add_argument(
        "--faults", default="", metavar="SPEC", help="fault injection (see docs/generators.md)"
    )
    parser.add_argument(
        "--key", default=None, help="the only key accepted (default: any non-empty key)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument(
        "--media-ttl", type=float, default=600.0, metavar="S", help="audio URLs expire after S s"
    )
    parser.add_argument("--ca-file", default=None, metavar="PATH", help="where to write the CA")
    parser.add_argument("--seed", type=int, default=0, help="seed for p= faults")
    parser.add_argument(
        "--no-synth", action="store_true", help="plain tones instead of segue's synth"
    )
    parser.add_argument(
        "--audio-dir",
        default=None,
        metavar="DIR",
        help="answer with real recordings from DIR (one per request, cut to length)",
    )
