"""Cache keys: a change that alters the audio changes the keys it affects, and only those;
a change that does not (rules, title, transitions, events, a mood's name) changes none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from segue.core.plugins import Plugins
from segue.core.pregen.planning import build_plan, make_generator
from segue.core.score import load_score

BASE = """\
segue: 1
title: Key Test
generator: fal
cache: memory
storage: local
budget_usd: 20
loudness_lufs: -16
style:
  positive: [cinematic fantasy game score]
  negative: [vocals]
defaults: {duration_s: 60, instrumental: true, variants: 1, format: ogg}
moods:
  explore:
    prompt: Gentle harp and flute over warm strings
    bpm: 84
    key: D major
  combat:
    prompt: Driving orchestral battle music
    bpm: 140
    variants: 2
    composition_plan:
      positive_global_styles: [epic orchestral]
      negative_global_styles: []
      sections:
        - {section_name: Build, positive_local_styles: [taiko], negative_local_styles: [], duration_ms: 20000, lines: []}
        - {section_name: Loop, positive_local_styles: [brass], negative_local_styles: [], duration_ms: 40000, lines: []}
  victory:
    prompt: Triumphant brass fanfare
    duration_s: 8
    stinger: true
    format: mp3
rules:
  - {mood: combat, when: {in_combat: true}, priority: 20}
  - {mood: explore}
events:
  boss_defeated: {stinger: victory}
transitions:
  - {from: "*", to: "*", at: next_bar, fade_ms: 2000}
"""  # noqa: E501

ALL = {("explore", 0), ("combat", 0), ("combat", 1), ("victory", 0)}


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    # Only the built-ins: an installed third-party transformer must not change these keys.
    return Plugins(load_entry_points=False, disabled=())


@pytest.fixture
def keys_of(tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAL_KEY", "key-test")  # configured, never used: nothing is sent
    counter = iter(range(1000))

    def keys(text: str) -> dict[tuple[str, int], str]:
        path = tmp_path / f"score{next(counter)}.yaml"
        path.write_text(text)
        score = load_score(path)
        generator = make_generator(score, plugins)
        try:
            plan = build_plan(score, plugins, generator)
        finally:
            asyncio.run(generator.aclose())
        return {(p.request.mood, p.request.variant): p.key for p in plan}

    return keys


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


AUDIO_CHANGES = {
    "prompt": (edit("Gentle harp and flute", "Gentle lute and flute"), {("explore", 0)}),
    "style positive": (
        edit("[cinematic fantasy game score]", "[cinematic fantasy game score, warm analog mix]"),
        ALL,
    ),
    "style negative": (edit("negative: [vocals]", "negative: [vocals, choir]"), ALL),
    "bpm": (edit("bpm: 84", "bpm: 90"), {("explore", 0)}),
    "key": (edit("key: D major", "key: D minor"), {("explore", 0)}),
    "duration": (edit("duration_s: 8", "duration_s: 6"), {("victory", 0)}),
    "default format": (
        edit("format: ogg}", "format: flac}"),
        {("explore", 0), ("combat", 0), ("combat", 1)},  # victory sets its own format
    ),
    "instrumental": (
        edit("    key: D major\n", "    key: D major\n    instrumental: false\n"),
        {("explore", 0)},
    ),
    "loudness": (edit("loudness_lufs: -16", "loudness_lufs: -14"), ALL),
    "plan section": (edit("[taiko]", "[taiko, war horns]"), {("combat", 0), ("combat", 1)}),
    "generator params": (
        edit("generator: fal", "generator: {name: fal, output_format: mp3_44100_192}"),
        ALL,
    ),
}


def test_the_synths_soundfont_is_in_every_key(keys_of) -> None:  # type: ignore[no-untyped-def]
    """docs/generators.md: the SoundFont's file name and a digest of its headers go into the
    cache key: numpy voices alone, the bundled TimGM6mb and ``auto`` (the best installed)
    give other keys, end to end through the plan."""
    from segue.plugins.synth.soundfont import bundled_soundfont, find_soundfont

    def synth(options: str) -> dict[tuple[str, int], str]:
        return keys_of(edit("generator: fal", f"generator: {{name: synth{options}}}"))

    none, bundled, auto = (
        synth(", soundfont: none"),
        synth(f", soundfont: {bundled_soundfont()}"),
        synth(""),
    )
    assert all(none[k] != bundled[k] for k in ALL)
    if find_soundfont() != bundled_soundfont():  # a Debian SoundFont is installed
        assert all(auto[k] != bundled[k] and auto[k] != none[k] for k in ALL)


@pytest.mark.parametrize("change", sorted(AUDIO_CHANGES))
def test_a_change_to_the_audio_changes_exactly_the_affected_keys(keys_of, change: str) -> None:  # type: ignore[no-untyped-def]
    text, affected = AUDIO_CHANGES[change]
    before, after = keys_of(BASE), keys_of(text)
    assert set(before) == set(after) == ALL
    changed = {k for k in ALL if before[k] != after[k]}
    assert changed == affected
    assert len(set(after.values())) == len(after)  # no two requests share a key


def test_adding_a_variant_adds_one_key_and_keeps_the_others(keys_of) -> None:  # type: ignore[no-untyped-def]
    before, after = keys_of(BASE), keys_of(edit("variants: 2", "variants: 3"))
    assert set(after) == ALL | {("combat", 2)}
    assert {k: after[k] for k in ALL} == before
    assert after[("combat", 2)] not in before.values()


NEUTRAL_CHANGES = {
    "title": edit("title: Key Test", "title: Ember Keep II"),
    "budget": edit("budget_usd: 20", "budget_usd: 5"),
    "a rule": edit(
        "priority: 20}", "priority: 25}\n  - {mood: explore, when: {calm: true}, priority: 5}"
    ),
    "transitions": edit("fade_ms: 2000}", "fade_ms: 500, min_dwell_s: 4}"),
    "events": edit(
        "  boss_defeated: {stinger: victory}",
        "  boss_defeated: {stinger: victory}\n  chest_opened: {stinger: victory}",
    ),
    "number spelling": edit("bpm: 84", "bpm: 84.0"),
    "plan key order": edit(
        "{section_name: Build, positive_local_styles: [taiko], negative_local_styles: []",
        "{negative_local_styles: [], positive_local_styles: [taiko], section_name: Build",
    ),
}


@pytest.mark.parametrize("change", sorted(NEUTRAL_CHANGES))
def test_a_change_that_does_not_alter_the_audio_keeps_every_key(keys_of, change: str) -> None:  # type: ignore[no-untyped-def]
    assert keys_of(NEUTRAL_CHANGES[change]) == keys_of(BASE)


def test_renaming_a_mood_keeps_its_keys(keys_of) -> None:  # type: ignore[no-untyped-def]
    renamed = BASE.replace("explore", "wander").replace("combat", "battle")
    assert "explore" not in renamed
    before, after = keys_of(BASE), keys_of(renamed)
    assert after[("wander", 0)] == before[("explore", 0)]
    assert after[("battle", 1)] == before[("combat", 1)]
    assert sorted(after.values()) == sorted(before.values())


def test_the_score_is_not_changed_by_planning(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAL_KEY", "key-test")
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    score = load_score(path)
    plan_before = repr(score.moods["combat"].composition_plan)
    generator = make_generator(score, plugins)
    try:
        first = [p.key for p in build_plan(score, plugins, generator)]
        second = [p.key for p in build_plan(score, plugins, generator)]
    finally:
        asyncio.run(generator.aclose())
    assert first == second
    assert repr(score.moods["combat"].composition_plan) == plan_before
