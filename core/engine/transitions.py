"""Transition lookup: the most specific rule of the score's ``transitions`` wins, whole.

Also the outro a transition with ``exit: outro`` plays (``outro_region``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from segue.core.score import Transition, TransitionRule
from segue.core.track import Track

# An outro shorter than this is no ending to play: the track fades out instead.
MIN_OUTRO_S = 0.25

ANY = "*"
DEFAULT = Transition()
_RESOLVED_MAX = 65536


class TransitionTable:
    """Looks up how to move between two moods.

    Precedence, as in Godot's AudioStreamInteractive and Wwise's transition matrix:
    ``(from, to)`` > ``(from, *)`` > ``(*, to)`` > ``(*, *)`` > the built-in defaults
    (``Transition()``). A rule is used whole; fields it omits already hold the defaults.
    When two rules have the same (from, to) the later one in the score wins, as a later
    assignment to the same key of a table would.
    """

    def __init__(self, rules: Sequence[TransitionRule]) -> None:
        self._table: dict[tuple[str, str], Transition] = {}
        for rule in rules:
            self._table[(rule.from_mood, rule.to_mood)] = rule.transition
        # Every pair asked for, resolved: one dict lookup per decision after the first.
        self._resolved: dict[tuple[str | None, str], Transition] = {}

    def lookup(self, from_mood: str | None, to_mood: str) -> Transition:
        """The transition for leaving ``from_mood`` for ``to_mood``.

        ``from_mood=None`` means nothing is playing yet: only ``*`` sources match it.
        """
        key = (from_mood, to_mood)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolve(from_mood, to_mood)
            if len(self._resolved) >= _RESOLVED_MAX:  # only moods of the score, normally
                self._resolved.clear()
            self._resolved[key] = found
        return found

    def _resolve(self, from_mood: str | None, to_mood: str) -> Transition:
        keys: list[tuple[str, str]] = []
        if from_mood is not None:
            keys += [(from_mood, to_mood), (from_mood, ANY)]
        keys += [(ANY, to_mood), (ANY, ANY)]
        for key in keys:
            found = self._table.get(key)
            if found is not None:
                return found
        return DEFAULT


def outro_region(track: Track) -> tuple[float, float] | None:
    """The track's outro ``(start_s, end_s)``: the song's ending that loop carving keeps
    after the loop (``extra.loop.outro_start_s``/``outro_end_s``, docs/audio.md).

    None for a track with none to play: not a loop, not carved (the synth's loops), a
    whole-song loop (its outro is empty), or metadata that does not fit the file.
    """
    info = track.extra.get("loop") if track.loop else None
    if not isinstance(info, dict):
        return None
    try:
        start = float(info["outro_start_s"])
        end = float(info["outro_end_s"])
    except (KeyError, TypeError, ValueError):
        return None
    loop_end = track.loop_end_s if track.loop_end_s is not None else track.duration_s
    if not (math.isfinite(start) and math.isfinite(end)):
        return None
    if start < loop_end - 1e-3 or end > track.duration_s + 1e-3 or end - start < MIN_OUTRO_S:
        return None
    return start, min(end, track.duration_s)
