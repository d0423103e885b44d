"""Transition lookup: the most specific rule of the score's ``transitions`` wins, whole."""

from __future__ import annotations

from collections.abc import Sequence

from segue.core.score import Transition, TransitionRule

ANY = "*"
DEFAULT = Transition()


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

    def lookup(self, from_mood: str | None, to_mood: str) -> Transition:
        """The transition for leaving ``from_mood`` for ``to_mood``.

        ``from_mood=None`` means nothing is playing yet: only ``*`` sources match it.
        """
        keys: list[tuple[str, str]] = []
        if from_mood is not None:
            keys += [(from_mood, to_mood), (from_mood, ANY)]
        keys += [(ANY, to_mood), (ANY, ANY)]
        for key in keys:
            found = self._table.get(key)
            if found is not None:
                return found
        return DEFAULT
