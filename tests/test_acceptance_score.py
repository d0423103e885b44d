"""Acceptance: scores written from docs/score.md as a game developer
reads them — every form the docs show validates and plans; broken ones of kinds the
fixtures in ``tests/scores/bad/`` do not cover give one ``FILE:LINE: path: message`` line
and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segue.core.cli import main
from segue.core.errors import ScoreError
from segue.core.plugins import Plugins
from segue.core.pregen.pipeline import build_cache
from segue.core.pregen.planning import build_plan, make_generator
from segue.core.pregen.sinks import build_sinks
from segue.core.score import parse_score
from segue.core.score_check import parse_key

EVERY_FORM = """\
segue: 1
title: "Valid: every form"
generator: {name: synth, seed: 2}
cache: {backend: disk, path: ../state/cache}
storage:
  - {sink: local, path: ../state/tracks}
  - {sink: local, path: ../state/replica}
budget_usd: 0.5
loudness_lufs: -14.5
style: {positive: [retro], negative: []}
defaults: {duration_s: 4, instrumental: false, variants: 2, format: wav}
moods:
  calm: {prompt: calm ambient pads, bpm: 60, key: f# Minor}
  plan_only:
    composition_plan:
      sections:
        - {section_name: A, positive_local_styles: [harp], negative_local_styles: [],
           duration_ms: 3000, lines: []}
        - {section_name: B, positive_local_styles: [], negative_local_styles: [drums],
           duration_ms: 3000, lines: ["la la"]}
    bpm: 120
    variants: 1
    format: flac
  fight: {prompt: "uptempo battle, 140 BPM", format: mp3, variants: 1, instrumental: true}
  sneak: {prompt: sneaking, key: "B\u266d dorian", format: opus, variants: 1}
  dirge: {prompt: a slow dirge, key: C#m, variants: 1}
  desert: {prompt: dunes, key: G harmonic minor, variants: 1}
  hit: {prompt: sting, stinger: true, duration_s: 3, variants: 1}
rules:
  - mood: fight
    priority: 100
    when:
      all:
        - {hp: {gt: 0, le: 100}}
        - any: [{state.mode: {eq: battle}}, {enemies: {ge: 3}}]
      not: {paused: true}
  - {mood: sneak, priority: 50,
     when: {stance: {in: [crouch, prone]}, zone: {not_in: [town]}, alarm: {exists: false}}}
  - {mood: plan_only, priority: 10, when: {zone: {ne: town}, level: {lt: 5}, name: {le: "m"}}}
  - {mood: calm, priority: -5}
events:
  hit_taken: {stinger: hit, at: now}
  door: {}
  chest:
transitions:
  - {from: "*", to: "*"}
  - {from: calm, to: "*", at: end, entry: same_position, fade: out, fade_ms: 0,
     min_dwell_s: 0.5, debounce_ms: 250}
  - {from: "*", to: fight, at: now, fade: none}
  - {from: sneak, to: fight, at: next_beat, entry: start, fade: in, fade_ms: 60000,
     min_dwell_s: 3600, debounce_ms: 600000}
  - {to: calm}
server: {tokens: [abc], origins: ["http://localhost"], lead_ms: 0, session_ttl_s: 1,
         max_frame_bytes: 256, rate_per_s: 0.1, burst: 1}
"""


def test_every_documented_form_validates_and_plans(tmp_path: Path) -> None:
    folder = tmp_path / "game"
    folder.mkdir()
    path = folder / "score.yaml"
    path.write_text(EVERY_FORM)
    score = parse_score(EVERY_FORM, str(path), path)
    assert score.moods["calm"].key == "F# minor"
    assert score.moods["sneak"].key == "Bb dorian"
    assert score.moods["dirge"].key == "C# minor"
    assert score.moods["desert"].key == "G harmonic minor"
    assert score.moods["plan_only"].duration_s == 6.0
    assert score.events["chest"].stinger is None
    assert [(t.from_mood, t.to_mood) for t in score.transitions][-1] == ("*", "calm")
    plugins = Plugins(load_entry_points=False)
    plan = build_plan(score, plugins, make_generator(score, plugins))
    assert [(p.request.mood, p.request.variant) for p in plan] == [
        ("calm", 0),
        ("calm", 1),
        ("plan_only", 0),
        ("fight", 0),
        ("sneak", 0),
        ("dirge", 0),
        ("desert", 0),
        ("hit", 0),
    ]
    prompts = {p.request.mood: p.request.prompt for p in plan}
    assert prompts["calm"] == "calm ambient pads, 60 BPM, F# minor, retro"
    assert prompts["dirge"] == "a slow dirge, C# minor, retro"
    assert prompts["fight"] == "uptempo battle, 140 BPM, instrumental, retro"
    # Relative cache and storage paths are from the score's folder, not the working one.
    cache = build_cache(score, plugins)
    try:
        assert Path(cache.path).resolve() == tmp_path / "state" / "cache"
    finally:
        cache.close()
    sinks = build_sinks(score, plugins)
    assert [s.folder.resolve() for s in sinks] == [
        tmp_path / "state" / "tracks",
        tmp_path / "state" / "replica",
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("C#m", "C# minor"),
        ("Ebm", "Eb minor"),
        ("am", "A minor"),
        ("Bb min", "Bb minor"),
        ("Fmaj", "F major"),
        ("g  Harmonic  Minor", "G harmonic minor"),
        ("C\u266f MINOR", "C# minor"),
        ("D", "D"),
    ],
)
def test_keys_as_the_generators_docs_write_them(text: str, key: str) -> None:
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["CM", "A M", "H major", "A harmonic major", "D dorian minor"])
def test_keys_that_stay_refused(text: str) -> None:
    assert parse_key(text) is None


HEAD = "segue: 1\nmoods:\n  explore: {prompt: calm}\n  win: {prompt: fanfare, stinger: true}\n"
RULES = "rules:\n  - {mood: explore}\n"

# (name, score text, the one error line after "FILE:")
BROKEN = [
    (
        "style_item_too_long",
        HEAD + RULES + f"style: {{positive: [{'x' * 201}]}}\n",
        "7: style.positive[0]: must be at most 200 characters (it has 201)",
    ),
    (
        "style_not_a_list",
        HEAD + RULES + "style: {positive: retro}\n",
        "7: style.positive: must be a list of strings",
    ),
    (
        "plan_31_sections",
        "segue: 1\nmoods:\n  explore:\n    composition_plan:\n      sections:\n"
        + "".join(
            f"        - {{section_name: s{i}, positive_local_styles: [], "
            "negative_local_styles: [], duration_ms: 3000, lines: []}\n"
            for i in range(31)
        )
        + RULES,
        "5: moods.explore.composition_plan.sections: must have at most 30 sections (it has 31)",
    ),
    (
        "plan_31_lines",
        "segue: 1\nmoods:\n  explore:\n    composition_plan:\n      sections:\n"
        "        - {section_name: a, positive_local_styles: [], negative_local_styles: [], "
        f"duration_ms: 3000, lines: [{', '.join(['la'] * 31)}]}}\n" + RULES,
        "6: moods.explore.composition_plan.sections[0].lines: "
        "must have at most 30 items (it has 31)",
    ),
    (
        "plan_section_name_empty",
        "segue: 1\nmoods:\n  explore:\n    composition_plan:\n      sections:\n"
        "        - {section_name: '', positive_local_styles: [], negative_local_styles: [], "
        "duration_ms: 3000, lines: []}\n" + RULES,
        "6: moods.explore.composition_plan.sections[0].section_name: must not be empty",
    ),
    (
        "plan_duration_is_text",
        "segue: 1\nmoods:\n  explore:\n    composition_plan:\n      sections:\n"
        "        - {section_name: a, positive_local_styles: [], negative_local_styles: [], "
        "duration_ms: '3000', lines: []}\n" + RULES,
        "6: moods.explore.composition_plan.sections[0].duration_ms: "
        "must be a whole number from 3000 to 120000",
    ),
    (
        "plan_is_a_list",
        "segue: 1\nmoods:\n  explore:\n    prompt: x\n    composition_plan: [a]\n" + RULES,
        "5: moods.explore.composition_plan: must be a composition plan (a mapping with sections)",
    ),
    (
        "prompt_4101_chars",
        f"segue: 1\nmoods:\n  explore:\n    prompt: {'x' * 4101}\n" + RULES,
        "4: moods.explore.prompt: must be at most 4100 characters (it has 4101)",
    ),
    (
        "prompt_blank",
        "segue: 1\nmoods: {a: {prompt: '  '}}\nrules: [{mood: a}]\n",
        "2: moods.a.prompt: must not be empty",
    ),
    (
        "when_all_not_a_list",
        HEAD + "rules:\n  - {mood: explore, when: {all: {a: 1}}}\n",
        "6: rules[0].when.all: `all` must be a non-empty list of conditions",
    ),
    (
        "when_any_empty",
        HEAD + "rules:\n  - {mood: explore, when: {any: []}}\n",
        "6: rules[0].when.any: `any` must be a non-empty list of conditions",
    ),
    (
        "when_not_a_list",
        HEAD + "rules:\n  - {mood: explore, when: {not: [{a: 1}]}}\n",
        "6: rules[0].when.not: must be a mapping of state keys to values, not a list",
    ),
    (
        "when_in_empty",
        HEAD + "rules:\n  - {mood: explore, when: {zone: {in: []}}}\n",
        "6: rules[0].when.zone.in: `in` takes a non-empty list of values",
    ),
    (
        "when_exists_text",
        HEAD + "rules:\n  - {mood: explore, when: {boss: {exists: maybe}}}\n",
        "6: rules[0].when.boss.exists: `exists` takes true or false, not a string",
    ),
    (
        "when_eq_mapping",
        HEAD + "rules:\n  - {mood: explore, when: {hp: {eq: {a: 1}}}}\n",
        "6: rules[0].when.hp.eq: must be a string, number, boolean or null, not a mapping",
    ),
    (
        "when_list_value",
        HEAD + "rules:\n  - {mood: explore, when: {zone: [a, b]}}\n",
        "6: rules[0].when.zone: a list is not a value to compare with; use {in: [...]}",
    ),
    (
        "when_infinite",
        HEAD + "rules:\n  - {mood: explore, when: {hp: {lt: .inf}}}\n",
        "6: rules[0].when.hp.lt: must be a finite number",
    ),
    (
        "when_nested_typo",
        HEAD
        + "rules:\n  - {mood: explore, when: {any: [{hp: {lt: 1}}, {not: {hp: {bewteen: 3}}}]}}\n",
        "6: rules[0].when.any[1].not.hp.bewteen: unknown operator 'bewteen'; a mapping value is an "
        "operator map (one of: eq, ne, lt, le, gt, ge, in, not_in, exists)",
    ),
    (
        "when_null",
        HEAD + "rules:\n  - {mood: explore, when: ~}\n",
        "6: rules[0].when: must be a mapping of state keys to values, not null",
    ),
    (
        "when_duplicate_key",
        HEAD + "rules:\n  - mood: explore\n    when:\n      hp: {lt: 1}\n      hp: {gt: 5}\n",
        "9: rules[0].when.hp: duplicate key 'hp' (first on line 8)",
    ),
    (
        "cache_two_names",
        HEAD + RULES + "cache: {backend: disk, name: disk}\n",
        "7: cache: give `backend` or `name`, not both",
    ),
    (
        "storage_list_number",
        HEAD + RULES + "storage: [local, 5]\n",
        "7: storage[1]: must be a storage sink name or a mapping with `sink` and its options",
    ),
    (
        "defaults_typo",
        HEAD + RULES + "defaults: {duraton_s: 30}\n",
        "7: defaults.duraton_s: unknown key 'duraton_s' (did you mean 'duration_s'?)",
    ),
    ("title_number", HEAD + RULES + "title: 42\n", "7: title: must be a string"),
    (
        "top_key_typo",
        HEAD + RULES + "mods: {}\n",
        "7: mods: unknown key 'mods' (did you mean 'moods'?)",
    ),
    (
        "event_at_end",
        HEAD + RULES + "events:\n  e: {stinger: win, at: end}\n",
        "8: events.e.at: must be one of: now, next_beat, next_bar",
    ),
    (
        "transition_at_typo",
        HEAD + RULES + "transitions: [{at: next bar}]\n",
        "7: transitions[0].at: must be one of: now, next_beat, next_bar, end "
        "(did you mean 'next_bar'?)",
    ),
    (
        "transition_bare_star",
        HEAD + RULES + "transitions: [{from: *, to: explore}]\n",
        "7: invalid YAML: expected alphabetic or numeric character, but found ',' "
        '(a bare * starts a YAML alias: write "*" in quotes)',
    ),
    (
        "prompt_with_colon",
        "segue: 1\nmoods:\n  explore:\n    prompt: Fanfare: brass and drums\n" + RULES,
        '4: invalid YAML: mapping values are not allowed here (quote a value that contains ": ")',
    ),
    (
        "version_float",
        "segue: 1.0\nmoods: {a: {prompt: x}}\nrules: [{mood: a}]\n",
        "1: segue: must be the schema version, 1",
    ),
    (
        "two_documents",
        "segue: 1\nmoods: {a: {prompt: x}}\nrules: [{mood: a}]\n---\nsegue: 1\n",
        "4: invalid YAML: expected a single document in the stream, but found another document",
    ),
    (
        "python_tag",
        "segue: 1\nmoods: {a: {prompt: x}}\n"
        "rules: [{mood: a, when: {x: !!python/object:os.system {}}}]\n",
        "3: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'",
    ),
    (
        "billion_laughs",
        "segue: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
        + "moods: {a: {prompt: x}}\nrules: [{mood: a}]\n",
        "7: invalid YAML: more than 200000 nodes once expanded",
    ),
    (
        "key_shorthand_major_capital",
        "segue: 1\nmoods: {a: {prompt: x, key: CM}}\nrules: [{mood: a}]\n",
        '2: moods.a.key: must be a key like "D major", "F# minor", "Bb dorian" or "C" '
        "(a note A-G with # or b, then a mode)",
    ),
]


@pytest.mark.parametrize(("name", "text", "error"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_score_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    text: str,
    error: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"{name}.yaml").write_text(text)
    with pytest.raises(ScoreError) as info:
        parse_score(text, f"{name}.yaml")
    assert info.value.errors == [f"{name}.yaml:{error}"]
    assert main(["validate", f"{name}.yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [f"{name}.yaml:{error}"]


def test_there_are_at_least_15_new_kinds() -> None:
    assert len({name for name, _, _ in BROKEN}) >= 15
