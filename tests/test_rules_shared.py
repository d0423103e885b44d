"""What Directors of one score share, and the hot path's shortcuts: same answers as the
plain code they replace."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

from segue.core.cue import Cue
from segue.core.engine import rules as rules_module
from segue.core.engine.clock import Grid
from segue.core.engine.director import Director, make_cue
from segue.core.engine.rules import desired_mood, ruleset_for
from segue.core.engine.transitions import TransitionTable
from segue.core.engine.variants import VariantPicker
from segue.core.score import Transition, load_score
from segue.core.track import Track

SCORE = Path(__file__).resolve().parent.parent / "adaptive_score.yaml"


def test_make_cue_is_the_cue_its_constructor_makes():
    track = Track(id="t", mood="m", variant=0, format="ogg", duration_s=4.0)
    args = (3, "s", "m", None, track, Transition(at="now"), 12.5, 0.25)
    fast, plain = make_cue(*args), Cue(*args)
    assert fast == plain
    assert type(fast) is Cue
    assert dataclasses.asdict(fast) == dataclasses.asdict(plain)
    assert hash(fast.transition) == hash(plain.transition)
    try:
        fast.seq = 4  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a made cue must stay frozen")


def test_directors_of_one_score_share_one_ruleset_and_it_goes_with_the_score():
    score = load_score(SCORE)
    a = Director("a", score, lambda m: ())
    b = Director("b", score, lambda m: ())
    assert a._ruleset is b._ruleset is ruleset_for(score)
    assert ruleset_for(load_score(SCORE)) is not a._ruleset  # another score object
    key = id(score)
    del a, b, score
    gc.collect()
    assert key not in rules_module._rulesets


def test_compiled_rules_agree_with_desired_mood():
    score = load_score(SCORE)
    decide = ruleset_for(score).decide
    states = [
        {},
        {"in_combat": True},
        {"in_combat": True, "player": {"health": 0.1}},
        {"in_combat": True, "player.health": 0.1},
        {"in_combat": 1, "enemies_near": 2},
        {"enemies_near": 0},
        {"enemies_near": True},
        {"zone": "crypt"},
    ]
    for state in states:
        assert decide(state) == desired_mood(score.rules, state), state


def test_resolved_transitions_match_a_fresh_table():
    score = load_score(SCORE)
    moods = [None, *score.moods, "nowhere"]
    table = TransitionTable(score.transitions)
    for frm in moods:
        for to in score.moods:
            first = table.lookup(frm, to)
            assert table.lookup(frm, to) is first  # remembered
            assert TransitionTable(score.transitions).lookup(frm, to) == first


def test_grid_of_is_from_track_remembered_per_track_object():
    track = Track(id="g", mood="m", variant=0, format="ogg", duration_s=8.0, bpm=96.0)
    grid = Grid.of(track)
    assert grid == Grid.from_track(track)
    assert Grid.of(track) is grid
    other = track.replace(bpm=120.0)  # same id, another object: its own grid
    assert Grid.of(other) == Grid.from_track(other) != grid


def test_one_variant_pick_matches_the_general_rotation():
    fast, general = VariantPicker(seed=5), VariantPicker(seed=5)
    for available in ([0], [0], [0, 1], [1], [0, 1], [0, 1, 2]):
        # A set takes the general path whatever its size.
        assert fast.pick("m", available) == general.pick("m", set(available))
