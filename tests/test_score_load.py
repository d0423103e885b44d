"""Loading a valid score builds the model right (defaults, moods, rules, events, transitions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segue.core.errors import ScoreError
from segue.core.score import (
    EventSpec,
    PluginChoice,
    ServerOptions,
    Transition,
    load_score,
    parse_score,
)

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


# --- the example score ----------------------------------------------------------------

EXAMPLE = Path(__file__).parent.parent / "adaptive_score.yaml"


def desired(score, state):
    """The mood the rules give (highest priority whose `when` matches); for checking only."""
    matching = [r for r in score.rules if r.when is None or r.when.matches(state)]
    return max(matching, key=lambda r: r.priority).mood if matching else None


def test_example_score_validates_and_is_musically_complete():
    score = load_score(EXAMPLE)
    loops = [m for m in score.moods.values() if not m.stinger]
    stingers = [m for m in score.moods.values() if m.stinger]
    assert len(loops) >= 6 and len(stingers) >= 1
    for mood in loops:
        assert mood.bpm and mood.key and mood.prompt and len(mood.prompt) > 80, mood.name
        assert mood.duration_s >= 30
    for mood in stingers:
        assert mood.duration_s <= 10, mood.name
    assert any(m.composition_plan for m in score.moods.values())
    assert any(m.variants > 1 for m in score.moods.values())
    assert score.generator.name == "synth" and score.cache.name == "disk"
    assert [s.name for s in score.storage] == ["local"]
    ops = {t.op for r in score.rules if r.when for t in r.when.terms()}
    assert {"gt", "lt", "in", "exists"} <= ops
    read = set().union(*(r.when.keys() for r in score.rules if r.when))
    assert any("." in key for key in read)
    assert all(e.stinger in score.moods for e in score.events.values())


@pytest.mark.parametrize(
    ("state", "mood"),
    [
        ({}, "explore"),
        ({"zone": "village"}, "village"),
        ({"zone": "village", "enemies_near": 2}, "tension"),
        ({"alert_level": 2}, "tension"),
        ({"player": {"stance": "sneaking"}, "zone": "cellars"}, "stealth"),
        ({"player": {"stance": "sneaking"}, "zone": "village"}, "village"),
        ({"in_combat": True, "player": {"health": 0.9}}, "combat"),
        ({"in_combat": True, "player": {"health": 0.1}}, "danger"),
        ({"in_combat": True, "player": {"health": 0.1}, "boss": "wyrm"}, "boss"),
        ({"in_combat": False, "boss": "wyrm"}, "explore"),
    ],
)
def test_example_rules_choose_sensible_moods(state, mood):
    assert desired(load_score(EXAMPLE), state) == mood


def test_example_combat_plan_is_bar_aligned_and_sets_the_duration():
    combat = load_score(EXAMPLE).moods["combat"]
    bar_ms = 4 * 60_000 / combat.bpm
    sections = combat.composition_plan["sections"]
    assert all(s["duration_ms"] % bar_ms == 0 for s in sections)
    assert combat.duration_s == sum(s["duration_ms"] for s in sections) / 1000 == 57.6


def test_example_transitions_are_fast_into_combat_and_slow_out():
    t = {(r.from_mood, r.to_mood): r.transition for r in load_score(EXAMPLE).transitions}
    into = t[("*", "combat")]
    out = t[("combat", "*")]
    assert into.at == "next_beat" and into.fade_ms <= 500 and into.debounce_ms == 0
    assert out.fade_ms >= 2000 and out.debounce_ms >= 1000 and out.min_dwell_s > 0


def test_loading_twice_gives_the_same_model():
    assert load_score(EXAMPLE) == load_score(EXAMPLE)
    assert load_score(EXAMPLE).public() == load_score(EXAMPLE).public()


# --- the model ------------------------------------------------------------------------


def test_defaults_apply_and_moods_override(tmp_path):
    score = parse_score(
        "segue: 1\n"
        "defaults: {duration_s: 30, instrumental: false, variants: 3, format: flac}\n"
        "moods:\n"
        "  a: {prompt: x}\n"
        "  b: {prompt: y, duration_s: 12.5, instrumental: true, variants: 1, format: wav}\n"
        "rules: [{mood: a}]\n",
        "s.yaml",
    )
    a, b = score.moods["a"], score.moods["b"]
    assert (a.duration_s, a.instrumental, a.variants, a.format) == (30.0, False, 3, "flac")
    assert (b.duration_s, b.instrumental, b.variants, b.format) == (12.5, True, 1, "wav")
    assert a.bpm is None and a.key is None and not a.stinger
    assert score.budget_usd is None and score.loudness_lufs == -16.0
    assert score.title == "s"  # no title: the file's stem
    assert score.server == ServerOptions()


def test_plan_total_overrides_duration():
    score = parse_score(
        "segue: 1\nmoods:\n  a:\n    duration_s: 60\n    composition_plan:\n      sections:\n"
        "        - {section_name: A, positive_local_styles: [], negative_local_styles: [],"
        " duration_ms: 10000, lines: []}\n"
        "        - {section_name: B, positive_local_styles: [], negative_local_styles: [],"
        " duration_ms: 5500, lines: [la la]}\n"
        "rules: [{mood: a}]\n"
    )
    mood = score.moods["a"]
    assert mood.duration_s == 15.5 and mood.prompt is None
    # Global styles are filled in, so the plan has the API's full shape.
    assert mood.composition_plan["positive_global_styles"] == []
    assert mood.composition_plan["sections"][1]["lines"] == ["la la"]


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("D major", "D major"),
        ("f# Minor", "F# minor"),
        ("Bb minor", "Bb minor"),
        ("C", "C"),
        ("E  phrygian", "E phrygian"),
        ("A\u266d lydian", "Ab lydian"),
    ],
)
def test_keys_are_normalised(written, normal):
    score = parse_score(
        f"segue: 1\nmoods:\n  a: {{prompt: x, key: '{written}'}}\nrules: [{{mood: a}}]\n"
    )
    assert score.moods["a"].key == normal


def test_plugins_storage_list_and_server():
    score = parse_score(
        "segue: 1\n"
        "generator: {name: fal, model: fal-ai/elevenlabs/music, concurrency: 2}\n"
        "cache: {backend: redis, url: 'redis://127.0.0.1:6379/0'}\n"
        "storage:\n  - {sink: local, path: tracks}\n  - s3\n"
        "budget_usd: 0\n"
        "server: {tokens: [t1, t2], origins: ['http://localhost:8000'], lead_ms: 0,"
        " session_ttl_s: 60, max_frame_bytes: 4096, rate_per_s: 5, burst: 10}\n"
        "moods:\n  a: {prompt: x}\nrules: [{mood: a}]\n"
    )
    assert score.generator == PluginChoice(
        "fal", {"model": "fal-ai/elevenlabs/music", "concurrency": 2}
    )
    assert score.cache == PluginChoice("redis", {"url": "redis://127.0.0.1:6379/0"})
    assert score.storage == (PluginChoice("local", {"path": "tracks"}), PluginChoice("s3"))
    assert score.budget_usd == 0.0
    assert score.server == ServerOptions(
        tokens=("t1", "t2"),
        origins=("http://localhost:8000",),
        lead_ms=0,
        session_ttl_s=60.0,
        max_frame_bytes=4096,
        rate_per_s=5.0,
        burst=10,
    )
    assert "t1" not in json.dumps(score.public())
    # Options are plain data (not the loader's line-tracking types).
    assert type(score.generator.options) is dict


def test_events_and_transitions_model():
    score = parse_score(
        "segue: 1\nmoods:\n  a: {prompt: x}\n  b: {prompt: y}\n"
        "  win: {prompt: z, stinger: true, duration_s: 4}\n"
        "rules: [{mood: a}, {mood: b, when: {go: true}, priority: 2}]\n"
        "events:\n  won: {stinger: win, at: now}\n  ping: {}\n  pong:\n"
        "transitions:\n  - {to: b, at: end, entry: same_position, fade: none, fade_ms: 0}\n"
        "  - {from: b, min_dwell_s: 2.5, debounce_ms: 700, fade: out}\n"
    )
    assert score.events["won"] == EventSpec("won", "win", "now", line=8)
    assert score.events["ping"].stinger is None and score.events["ping"].at == "next_beat"
    assert "pong" in score.events
    first, second = score.transitions
    assert (first.from_mood, first.to_mood, first.line) == ("*", "b", 12)
    assert first.transition == Transition("end", "same_position", "none", 0, 0.0, 0)
    assert (second.from_mood, second.to_mood) == ("b", "*")
    assert second.transition == Transition(fade="out", min_dwell_s=2.5, debounce_ms=700)
    assert [r.priority for r in score.rules] == [0, 2]


def test_merge_keys_share_settings():
    # Unknown top-level keys are errors, so an anchor lives on a real mood:
    score = parse_score(
        "segue: 1\n"
        "moods:\n"
        "  a: &loop {prompt: x, bpm: 90, key: A minor, variants: 2}\n"
        "  b: {<<: *loop, prompt: y, bpm: 120}\n"
        "rules: [{mood: a}]\n"
    )
    b = score.moods["b"]
    assert (b.prompt, b.bpm, b.key, b.variants) == ("y", 120.0, "A minor", 2)


def test_public_view():
    score = parse_score(
        "segue: 1\ntitle: T\nmoods:\n  a: {prompt: x, bpm: 90}\n  b: {prompt: y}\n"
        "  s: {prompt: z, stinger: true, duration_s: 3}\n"
        "rules:\n"
        "  - {mood: b, when: {in_combat: true, player.hp: {lt: 0.5}, zone: {in: [crypt, keep]}}}\n"
        "  - {mood: b, when: {any: [{zone: town}, {level: {ge: 3}}], flag: {exists: true}}}\n"
        "  - {mood: b, when: {mixed: 1, not: {mixed: 'one'}}}\n"
        "  - {mood: a}\n"
        "events: {e: {stinger: s}}\n"
        "transitions: [{from: a, to: b, fade_ms: 10}]\n"
        "server: {tokens: [secret-token]}\n"
    )
    public = score.public()
    text = json.dumps(public)
    assert "secret-token" not in text
    assert public["title"] == "T"
    assert [m["name"] for m in public["moods"]] == ["a", "b", "s"]
    assert public["moods"][0] == {
        "name": "a",
        "prompt": "x",
        "bpm": 90.0,
        "key": None,
        "duration_s": 60.0,
        "variants": 1,
        "stinger": False,
        "format": "ogg",
        "instrumental": True,
        "has_plan": False,
    }
    assert public["rules"][0]["when"] == {
        "in_combat": True,
        "player.hp": {"lt": 0.5},
        "zone": {"in": ["crypt", "keep"]},
    }
    assert public["rules"][0]["keys"] == ["in_combat", "player.hp", "zone"]
    assert public["rules"][3] == {"mood": "a", "priority": 0, "when": None, "keys": []}
    assert public["events"] == [{"name": "e", "stinger": "s", "at": "next_beat"}]
    assert public["transitions"] == [
        {
            "from": "a",
            "to": "b",
            "at": "next_bar",
            "entry": "start",
            "fade": "cross",
            "fade_ms": 10,
            "exit": "fade",
            "min_dwell_s": 0.0,
            "debounce_ms": 0,
        }
    ]
    assert public["default_transition"]["fade_ms"] == 1000
    assert public["state_keys"] == [
        {"key": "flag", "type": "any"},
        {"key": "in_combat", "type": "bool"},
        {"key": "level", "type": "number"},
        {"key": "mixed", "type": "any"},
        {"key": "player.hp", "type": "number"},
        {"key": "zone", "type": "string", "values": ["crypt", "keep", "town"]},
    ]
