"""Desired mood: which of the score's rules wins for a game state.

``desired_mood(rules, state)`` answers it for any list of rules. A server asks it for
every state message of every session, always of the same score, so :class:`Ruleset`
does the per-score work once (rules sorted, conditions compiled to closures, the
transition table, the reachable moods) and every Director of that score shares it
(``ruleset_for(score)``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from segue.core.score import Rule

if TYPE_CHECKING:
    from segue.core.score import Score
    from segue.core.track import Track


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


def compile_rules(rules: Sequence[Rule]) -> Callable[[Mapping[str, Any]], str | None]:
    """``lambda state: desired_mood(rules, state)``, with the work done once.

    Rules after the first one without ``when`` can never win and are dropped; each
    condition's closure (``Condition.matcher``) is used where it has one, its
    ``matches`` otherwise (any object of the score's ``Condition`` protocol).
    """
    tests: list[tuple[Callable[[Any], bool] | None, str]] = []
    for rule in ordered(rules):
        when = rule.when
        if when is None:
            tests.append((None, rule.mood))
            break
        tests.append((getattr(when, "matcher", None) or when.matches, rule.mood))
    pairs = tuple(tests)
    slow = tuple(ordered(rules))

    def decide(state: Mapping[str, Any]) -> str | None:
        try:
            for test, mood in pairs:
                if test is None or test(state):
                    return mood
            return None
        except RecursionError:
            # Absurdly deep state: as desired_mood, where such a condition is no match.
            for rule in slow:
                if rule.when is None or rule.when.matches(state):
                    return rule.mood
            return None

    return decide


class Ruleset:
    """What every Director of one score shares: its decisions' fixed parts, built once."""

    __slots__ = (
        "__weakref__",
        "_variants",
        "decide",
        "events",
        "reachable",
        "transitions",
    )

    def __init__(self, score: Score) -> None:
        from segue.core.engine.transitions import TransitionTable

        # Not the score itself: ruleset_for holds rulesets, and must not keep scores alive.
        self.decide = compile_rules(score.rules)
        self.transitions = TransitionTable(score.transitions)
        self.events = score.events
        moods = selectable_moods(score.rules)
        for spec in score.events.values():
            if spec.stinger is not None and spec.stinger not in moods:
                moods.append(spec.stinger)
        self.reachable: tuple[str, ...] = tuple(moods)
        self._variants: dict[str, tuple[Any, dict[int, Any], list[int]]] = {}

    def variants(self, mood: str, tracks: Sequence[Track]) -> tuple[dict[int, Track], list[int]]:
        """``tracks`` by variant (the first of each) and the variants, in order.

        Remembered per mood while the same (immutable) tuple of tracks is passed: the
        server's track source returns one tuple per mood to every session.
        """
        hit = self._variants.get(mood)
        if hit is not None and hit[0] is tracks:
            return hit[1], hit[2]
        by_variant: dict[int, Track] = {}
        for track in tracks:
            by_variant.setdefault(track.variant, track)
        variants = list(by_variant)
        if type(tracks) is tuple:
            self._variants[mood] = (tracks, by_variant, variants)
        return by_variant, variants


def generation_order(score: Score) -> list[str]:
    """The score's moods in the order a server with nothing stored generates them.

    First the mood the rules pick for an empty state (what every new session hears), then
    the moods the rules can select, in the order rules are tried, and the events'
    stingers, then the moods nothing selects. Rules look at the state only, never at the
    mood playing, so every mood the rules can select is reachable from the first.
    """
    ruleset = ruleset_for(score)
    first = ruleset.decide({})
    order = [] if first is None else [first]
    for mood in (*ruleset.reachable, *score.moods):
        if mood not in order:
            order.append(mood)
    return order


# By identity of the (immutable) score, held weakly: a score that goes away takes its
# ruleset with it. (A Score holds dicts, so it cannot be a dict key itself.)
_rulesets: dict[int, tuple[weakref.ref[Any], Ruleset]] = {}


def ruleset_for(score: Score) -> Ruleset:
    """The shared Ruleset of ``score``."""
    key = id(score)
    hit = _rulesets.get(key)
    if hit is not None and hit[0]() is score:
        return hit[1]
    ruleset = Ruleset(score)
    try:
        ref = weakref.ref(score, _forgetter(key, _rulesets))
    except TypeError:  # an object that takes no weak references: not shared
        return ruleset
    _rulesets[key] = (ref, ruleset)
    return ruleset


def _forgetter(key: int, table: dict[int, Any]) -> Callable[[Any], None]:
    # The table is bound here, not looked up as a global: the callback may run while
    # the interpreter tears the module down.
    def forget(ref: weakref.ref[Any]) -> None:
        hit = table.get(key)
        if hit is not None and hit[0] is ref:
            del table[key]

    return forget
