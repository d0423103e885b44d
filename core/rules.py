"""Desired mood: which of the score's rules wins for a game state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segue.core.score import Rule


def ordered(rules: Sequence[Rule]) -> list[Rule]:
    """Rules in the order they are tried: highest priority first, then score order."""
    # sorted() is stable, so equal priorities keep the score's order.
    return sorted(rules, key=lambda rule: -rule.priority)


def desired_mood(rules: Sequence[Rule], state: Mapping[str, Any]) -> str | None:
    """The mood of the highest-priority rule whose ``when`` matches ``state``.

    Ties go to the rule written first; a rule without ``when`` always matches. ``None``
    when no rule matches (a score without a default rule).
    """
    for rule in ordered(rules):
        if rule.when is None or rule.when.matches(state):
            return rule.mood
    return None


def selectable_moods(rules: Sequence[Rule]) -> list[str]:
    """Every mood some state could select, in the order rules are tried.

    Rules tried after one without ``when`` can never win, so their moods are left out
    (unless an earlier rule names them too). Conditions are not analysed further.
    """
    moods: list[str] = []
    for rule in ordered(rules):
        if rule.mood not in moods:
            moods.append(rule.mood)
        if rule.when is None:
            break
    return moods
