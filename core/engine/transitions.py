"""Transition lookup: the most specific rule of the score's ``transitions`` wins, whole."""

from __future__ import annotations

from collections.abc import Sequence

from segue.core.score import Transition, TransitionRule

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
