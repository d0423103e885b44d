"""Desired mood by priority, transition lookup precedence, variant rotation (pure)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segue.core.conditions import compile_condition
from segue.core.engine.rules import desired_mood, generation_order, selectable_moods
from segue.core.engine.transitions import TransitionTable
from segue.core.engine.variants import VariantPicker
from segue.core.score import Rule, Transition, TransitionRule, load_score, parse_score


def rule(mood: str, when: dict | None = None, priority: int = 0) -> Rule:
    condition = None if when is None else compile_condition(when)
    return Rule(mood=mood, when=condition, priority=priority)


# The example score's rules, in the order written (the default first, on purpose).
RULES = [
    rule("explore"),
    rule("tension", {"enemies_near": {"gt": 0}}, 10),
    rule("combat", {"in_combat": True}, 20),
    rule("danger", {"in_combat": True, "player.health": {"lt": 0.3}}, 30),
]


@pytest.mark.parametrize(
    ("state", "mood"),
    [
        ({}, "explore"),
        ({"enemies_near": 0}, "explore"),
        ({"enemies_near": 2}, "tension"),
        ({"enemies_near": 2, "in_combat": True}, "combat"),
        ({"in_combat": True, "player": {"health": 0.9}}, "combat"),
        ({"in_combat": True, "player": {"health": 0.1}}, "danger"),
        ({"in_combat": False, "player": {"health": 0.1}}, "explore"),
        ({"in_combat": True, "player": {"health": "low"}}, "combat"),  # no ordering: no match
    ],
)
def test_highest_priority_match_wins(state, mood):
    assert desired_mood(RULES, state) == mood


def test_ties_go_to_the_rule_written_first():
    rules = [rule("a", {"x": 1}, 5), rule("b", {"x": 1}, 5), rule("c", None, 5)]
    assert desired_mood(rules, {"x": 1}) == "a"
    assert desired_mood(rules, {"x": 2}) == "c"
    assert desired_mood(list(reversed(rules)), {"x": 1}) == "c"


def test_no_rule_matches_gives_none():
    assert desired_mood([rule("a", {"x": 1})], {}) is None
    assert desired_mood([], {"x": 1}) is None


def test_selectable_moods_stop_at_an_unconditional_rule():
    assert selectable_moods(RULES) == ["danger", "combat", "tension", "explore"]
    shadowed = [rule("a"), rule("b", {"x": 1}), rule("c", {"y": 1}, 9)]
    assert selectable_moods(shadowed) == ["c", "a"]


def tr(frm: str, to: str, **fields) -> TransitionRule:
    return TransitionRule(from_mood=frm, to_mood=to, transition=Transition(**fields))


def test_transition_lookup_most_specific_wins():
    table = TransitionTable(
        [
            tr("*", "*", at="next_bar", fade_ms=2000, min_dwell_s=8),
            tr("*", "combat", at="next_beat", fade_ms=300),
            tr("combat", "explore", at="next_bar", fade_ms=4000, debounce_ms=1500),
            tr("combat", "*", at="end", fade_ms=1500),
        ]
    )
    assert table.lookup("combat", "explore").fade_ms == 4000  # (from, to)
    assert table.lookup("combat", "tension").fade_ms == 1500  # (from, *) beats (*, to)...
    assert table.lookup("combat", "combat").fade_ms == 1500  # ...even when (*, to) exists
    assert table.lookup("explore", "combat").fade_ms == 300  # (*, to)
    assert table.lookup("explore", "tension").fade_ms == 2000  # (*, *)
    # Used whole: (*, combat) omits min_dwell_s, so it is the default 0, not (*, *)'s 8.
    assert table.lookup("explore", "combat").min_dwell_s == 0.0
    assert table.lookup("explore", "tension").min_dwell_s == 8


def test_transition_lookup_from_nothing_and_defaults():
    table = TransitionTable([tr("explore", "*", fade_ms=10), tr("*", "combat", fade_ms=20)])
    assert table.lookup(None, "combat").fade_ms == 20
    assert table.lookup(None, "explore") == Transition()  # (explore, *) cannot match None
    assert table.lookup("tension", "explore") == Transition()
    assert TransitionTable([]).lookup("a", "b") == Transition()


def test_duplicate_transition_pairs_later_wins():
    table = TransitionTable([tr("a", "b", fade_ms=1), tr("a", "b", fade_ms=2)])
    assert table.lookup("a", "b").fade_ms == 2


# ---------------------------------------------------------------- variants


def test_one_variant_is_always_it():
    picker = VariantPicker(seed=1)
    assert [picker.pick("m", [3]) for _ in range(5)] == [3] * 5


def test_rotation_covers_every_variant_evenly_and_is_seeded():
    picker = VariantPicker(seed="s")
    picks = [picker.pick("combat", [0, 1, 2]) for _ in range(30)]
    assert Counter(picks) == {0: 10, 1: 10, 2: 10}  # a shuffle bag: each once per round
    again = VariantPicker(seed="s")
    assert [again.pick("combat", [0, 1, 2]) for _ in range(30)] == picks
    # Moods rotate independently: picks for one do not depend on another's.
    mixed = VariantPicker(seed="s")
    interleaved = []
    for _ in range(30):
        mixed.pick("explore", [0, 1])
        interleaved.append(mixed.pick("combat", [0, 1, 2]))
    assert interleaved == picks


def test_different_seeds_give_different_orders():
    def order(seed: int) -> tuple[int, ...]:
        picker = VariantPicker(seed=seed)
        return tuple(picker.pick("m", [0, 1, 2, 3]) for _ in range(8))

    assert len({order(s) for s in range(20)}) > 5


def test_pick_refuses_no_variants():
    with pytest.raises(ValueError, match="no variants"):
        VariantPicker(0).pick("m", [])


@settings(max_examples=200, deadline=None)
@given(
    seed=st.one_of(st.integers(), st.text(max_size=5)),
    pools=st.lists(
        st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True), min_size=1, max_size=40
    ),
)
def test_rotation_never_repeats_immediately(seed, pools):
    # The pool may change between picks (a new variant stored, one lost).
    picker = VariantPicker(seed)
    last = None
    for pool in pools:
        got = picker.pick("m", pool)
        assert got in pool
        if len(pool) > 1:
            assert got != last
        last = got


def test_generation_order_starts_with_what_a_new_session_hears() -> None:
    example = load_score(Path(__file__).resolve().parents[1] / "adaptive_score.yaml")
    # The default (empty state) first, then the rules' moods as tried, the stingers.
    assert generation_order(example) == [
        "explore",
        "boss",
        "danger",
        "combat",
        "stealth",
        "tension",
        "village",
        "victory",
        "defeat",
        "discovery",
    ]
    text = """\
segue: 1
moods:
  calm: {prompt: calm}
  busy: {prompt: busy}
  unused: {prompt: never selected}
  sting: {prompt: sting, stinger: true}
rules:
  - {mood: busy, when: {busy: true}}
  - {mood: calm, when: {busy: false}, priority: -1}
events:
  hit: {stinger: sting}
"""
    # No rule matches an empty state: nothing comes first; unused moods come last.
    assert generation_order(parse_score(text)) == ["busy", "calm", "sting", "unused"]
