"""Score warnings (docs/score.md, Errors): valid, but probably not meant; `segue validate` and
`segue plan` print them naming the line, and exit 0.

A prompt stating another tempo or key than its mood's `bpm`/`key`: the mood's fields win.
Rules that match nothing in a new session's empty state.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segue.core.cli import main
from segue.core.prompts import contradicting_tempos
from segue.core.request import GenerationRequest
from segue.core.score import load_score
from segue.plugins.synth.words import tempo_in_prompt
from segue.plugins.tempo_key import segue_transform_prompt

SCORE = """\
segue: 1
moods:
  calm:
    prompt: Slow harp at 400 BPM in A minor
    bpm: 90
    key: C major
  agreeing:
    prompt: Harp in D major at 84 bpm, modulating to A major
    bpm: 84
    key: D major
  modal:
    prompt: >-
      Dark strings in D minor,
      120 BPM
    key: D dorian
rules: [{mood: calm}]
"""

WARNINGS = [
    'score.yaml:4: warning: moods.calm.prompt: says "400 BPM" but the mood\'s bpm is 90: the '
    "bpm wins (the generator is asked for 90 BPM, the clock counts it)",
    'score.yaml:4: warning: moods.calm.prompt: says "A minor" but the mood\'s key is C major: '
    "the key wins (the generator is asked for C major)",
]


@pytest.fixture
def score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "score.yaml"
    path.write_text(SCORE, encoding="utf-8")
    return path


def test_the_score_carries_one_warning_per_contradiction(score: Path) -> None:
    assert list(load_score("score.yaml").warnings) == WARNINGS


def test_validate_prints_the_warnings_and_exits_0(
    score: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "score.yaml"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == WARNINGS
    assert out == "score.yaml: ok — 3 moods, 1 rule, 0 events, 0 transitions, 2 warnings\n"


def test_plan_warns_and_asks_the_generator_for_the_moods_tempo_and_key(
    score: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "score.yaml", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == WARNINGS
    doc = json.loads(out)
    assert doc["warnings"] == WARNINGS
    prompts = {r["mood"]: r["prompt"] for r in doc["requests"]}
    assert prompts["calm"].startswith("Slow harp at 90 BPM in C major")
    assert "400" not in prompts["calm"] and "A minor" not in prompts["calm"]
    assert prompts["agreeing"].startswith("Harp in D major at 84 bpm, modulating to A major")
    assert prompts["modal"].startswith("Dark strings in D minor, 120 BPM")


def test_a_score_without_contradictions_has_no_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parents[1] / "adaptive_score.yaml"
    assert load_score(example).warnings == ()


@pytest.mark.parametrize(
    ("rules", "warned"),
    [
        ("  - {mood: a, when: {x: 1}}\n  - {mood: a, when: {x: {gt: 2}}}\n", True),
        ("  - {mood: a, when: {x: 1}}\n  - {mood: a}\n", False),
        ("  - {mood: a, when: {boss: {exists: false}}}\n", False),
        ("  - {mood: a, when: {not: {x: 1}}}\n", False),
    ],
)
def test_rules_leaving_a_new_session_without_a_mood_are_warned_of(
    tmp_path: Path, rules: str, warned: bool
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"segue: 1\nmoods:\n  a: {{prompt: p}}\nrules:\n{rules}", encoding="utf-8")
    expected = [
        f"{path}:4: warning: rules: no rule matches the empty state of a new session, which "
        "hears nothing until one does: add a default rule without `when` (e.g. - {mood: a})"
    ]
    assert list(load_score(path).warnings) == (expected if warned else [])


def test_a_plans_global_styles_are_held_to_the_moods_bpm_too(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "segue: 1\nmoods:\n  a:\n    bpm: 90\n    composition_plan:\n"
        "      positive_global_styles: [dark, 400 BPM]\n      sections:\n"
        "        - {section_name: A, positive_local_styles: [], negative_local_styles: [],"
        " duration_ms: 8000, lines: []}\nrules: [{mood: a}]\n",
        encoding="utf-8",
    )
    assert list(load_score(path).warnings) == [
        f'{path}:6: warning: moods.a.composition_plan.positive_global_styles: says "400 BPM" '
        "but the mood's bpm is 90: the bpm wins (the generator is asked for 90 BPM, the clock "
        "counts it)"
    ]


@pytest.mark.parametrize(
    ("prompt", "said", "sent"),
    [
        ("Harp in e minor", "e minor", "Harp in C major"),
        ("Harp in f# minor, soft", "f# minor", "Harp in C major, soft"),
        ("Harp in eb Major", "eb Major", "Harp in C major"),
        ("Harp in c major", None, "Harp in c major"),  # the mood's key, in lowercase
        ("Harp on a minor theme", None, "Harp on a minor theme, C major"),  # English
    ],
)
def test_a_lowercase_key_in_a_prompt_is_held_to_the_moods_too(
    tmp_path: Path, prompt: str, said: str | None, sent: str
) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(
        f"segue: 1\nmoods:\n  a:\n    prompt: {prompt}\n    key: C major\nrules: [{{mood: a}}]\n",
        encoding="utf-8",
    )
    expected = [
        f'{path}:4: warning: moods.a.prompt: says "{said}" but the mood\'s key is C major: the '
        "key wins (the generator is asked for C major)"
    ]
    assert list(load_score(path).warnings) == (expected if said else [])
    request = GenerationRequest(mood="a", variant=0, prompt=prompt, key="C major")
    done = segue_transform_prompt(request=request)
    assert (done.prompt if done is not None else prompt) == sent


# The synth's reading of a prompt's tempo and the tempo/key transformer's are one pattern:
# what the transformer takes for the prompt's tempo is the tempo the synth plays.
TEMPO_PHRASES = [
    ("Slow harp, 84 BPM", 84.0),
    ("lo-fi at 92.5 bpm", 92.5),
    ("a march, 120 beats per minute", 120.0),
    ("drum and bass 174BPM", 174.0),
    ("at 90 BPM, later 140 BPM", 90.0),
    ("BPM unknown, fast", None),
    ("track 7, 3 beats to the bar", None),
    ("a 400 BPM blast", 400.0),
]


@pytest.mark.parametrize(("prompt", "tempo"), TEMPO_PHRASES)
def test_the_synth_and_the_transformer_read_the_same_tempo(
    prompt: str, tempo: float | None
) -> None:
    assert tempo_in_prompt(prompt) == tempo
    if tempo is None:
        return
    # The transformer finds the prompt saying the synth's tempo: nothing to replace.
    assert contradicting_tempos(prompt, tempo) == []
    request = GenerationRequest(mood="m", variant=0, prompt=prompt, bpm=tempo)
    assert segue_transform_prompt(request=request) is None
    # And told another one, it replaces the phrase the synth read.
    other = segue_transform_prompt(request=request.replace(bpm=61.0))
    assert other is not None and tempo_in_prompt(other.prompt) == 61.0
