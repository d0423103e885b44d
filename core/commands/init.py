"""``segue init [SCORE]``: write a short, commented starter score (never over an existing file)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from segue.core.commands import SCORE_HELP
from segue.core.errors import ConfigError
from segue.core.score import DEFAULT_SCORE

STARTER = """\
# A segue score: your game's musical moods, a prompt for each, rules that pick a mood
# from the game state, and how to move between moods. Every key: docs/score.md.
# `segue validate` checks this file, `segue plan` shows what will be generated,
# `segue serve` serves it (open http://127.0.0.1:8765/ to hear it).

segue: 1
title: My game

# `synth` makes music offline, fast and free; for production audio switch to
# `{name: fal}` with FAL_KEY set (docs/generators.md).
generator: synth

defaults: {duration_s: 30, format: ogg}

moods:
  explore:
    prompt: Calm exploration theme, soft strings and harp, hopeful and unhurried.
    bpm: 90
    key: D major
  combat:
    prompt: Driving battle music, taiko drums, low strings and brass stabs.
    bpm: 140
    key: D minor
  victory: # a stinger: a one-shot played over the music when an event fires
    prompt: Short triumphant brass fanfare.
    bpm: 120
    key: D major
    duration_s: 4
    stinger: true

# The highest priority whose `when` matches the state the game sends wins.
rules:
  - mood: combat
    priority: 10
    when: {in_combat: true}
  - mood: explore # no `when`: the default, and what a new session hears first

# Events the game sends; one may play a stinger.
events:
  enemy_defeated: {stinger: victory, at: next_beat}

# How to move between moods: on the next beat or bar, with what fade, and how long a
# mood must hold (min_dwell_s) or a change must persist (debounce_ms) first.
transitions:
  - {from: "*", to: "*", at: next_bar, fade_ms: 1500}
  - {from: "*", to: combat, at: next_beat, fade_ms: 300}
  - {from: combat, to: "*", at: next_bar, fade_ms: 3000, debounce_ms: 2000}
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("init", help="write a starter score to edit")
    p.add_argument(
        "score", nargs="?", default=DEFAULT_SCORE, metavar="SCORE", help=SCORE_HELP + " to write"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.score)
    path.parent.mkdir(parents=True, exist_ok=True)  # `segue init game/music.yaml`
    try:
        with path.open("x", encoding="utf-8") as f:  # "x": never over an existing score
            f.write(STARTER)
    except FileExistsError:
        raise ConfigError(
            f"{args.score} exists; not overwritten (edit it, or name a new file)"
        ) from None
    named = "" if args.score == DEFAULT_SCORE else f" {shlex.quote(args.score)}"
    print(f"wrote {args.score}: edit it, then `segue validate{named}` and `segue serve{named}`")
    return 0
