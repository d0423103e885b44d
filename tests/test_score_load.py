"""Loading a valid score builds the model right (defaults, moods, rules, events, transitions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from segue.core.errors import ScoreError
from segue.core.score import Transition, load_score, parse_score

SCORES = Path(__file__).parent / "scores"


def test_design_example_loads():
    score = load_score(SCORES / "design_example.yaml")
    assert score.title == "Ember Keep"
    assert score.path == (SCORES / "design_example.yaml").resolve()
    assert list(score.moods) == ["explore", "combat", "tension", "danger", "victory"]
    assert score.generator.name == "synth" and score.generator.options == {}
    assert score.cache.name == "disk"
    assert [s.name for s in score.storage] == ["local"]
    assert score.budget_usd == 25 and score.loudness_lufs == -16
    assert score.style.positive == ("cinematic fantasy game score", "seamless loop")
    assert score.style.negative == ("vocals",)
    combat = score.moods["combat"]
    assert combat.variants == 2 and combat.bpm == 140 and combat.duration_s == 60
    assert combat.composition_plan is not None
    assert [s["duration_ms"] for s in combat.composition_plan["sections"]] == [8000, 52000]
    assert score.moods["victory"].stinger and score.moods["victory"].duration_s == 8
    assert score.moods["explore"].key == "D major"
    assert [r.mood for r in score.rules] == ["danger", "combat", "tension", "explore"]
    assert score.rules[-1].when is None
    assert score.rules[0].when.matches({"in_combat": True, "player": {"health": 0.1}})
    assert score.events["boss_defeated"].stinger == "victory"
    assert score.events["boss_defeated"].at == "next_beat"
    t = score.transitions
    assert (t[1].from_mood, t[1].to_mood) == ("*", "combat")
    # A field a rule omits takes the built-in default, not the (*,*) rule's value.
    assert t[1].transition == Transition(at="next_beat", fade_ms=300)
    assert t[2].transition.debounce_ms == 1500 and t[2].transition.min_dwell_s == 0
    json.dumps(score.public())


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ScoreError) as info:
        load_score(tmp_path / "nope.yaml")
    assert info.value.errors == [
        f"{tmp_path / 'nope.yaml'}: cannot read score: no such file or directory"
    ]


def test_parse_score_minimal():
    score = parse_score("segue: 1\nmoods: {a: {prompt: x}}\nrules: [{mood: a}]\n", "s.yaml")
    assert score.moods["a"].duration_s == 60.0 and score.moods["a"].format == "ogg"
