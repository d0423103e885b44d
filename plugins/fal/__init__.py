"""The ``fal`` generator (Eleven Music and other fal music endpoints), the ``demucs`` stem
separator (fal's ``fal-ai/demucs``) and the local emulator of both."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from segue.core import hookimpl
from segue.core.registry import Register


def _factory(config: dict[str, Any], state_dir: Path) -> Any:
    from segue.plugins.fal.generator import FalGenerator

    return FalGenerator(config, state_dir)


def _separator_factory(config: dict[str, Any], state_dir: Path) -> Any:
    from segue.plugins.fal.separator import DemucsSeparator

    return DemucsSeparator(config, state_dir)


def _run_emulator(args: argparse.Namespace) -> int:
    from segue.plugins.fal.emulator import run_command

    return run_command(args)


@hookimpl
def segue_register_generators(register: Register) -> None:
    register("fal", _factory)


@hookimpl
def segue_register_stem_separators(register: Register) -> None:
    register("demucs", _separator_factory)


@hookimpl
def segue_register_commands(subparsers: Any) -> None:
    from segue.plugins.fal.emulator_args import add_arguments

    parser = subparsers.add_parser(
        "fal-emulator",
        help="serve a local emulator of fal's queue API (offline work and tests)",
        description="Serve fal's queue protocol over HTTPS on this machine, with real audio "
        "and optional fault injection; prints the environment variables to export.",
    )
    add_arguments(parser)
    parser.set_defaults(func=_run_emulator)
