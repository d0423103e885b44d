"""The built-in prompt transformers (style, tempo_key, instrumental) and their order."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import pytest

from segue.core import hookimpl, prompts
from segue.core.plugins import Plugins
from segue.core.prompts import append_phrases, dedupe, plan_with_styles, says
from segue.core.request import GenerationRequest
from segue.core.score import PluginChoice, Score, Style
from segue.plugins import instrumental, style, tempo_key

PLAN = {
    "positive_global_styles": ["epic orchestral", "Cinematic fantasy game score"],
    "negative_global_styles": ["lo-fi"],
    "sections": [
        {
            "section_name": "Build",
            "positive_local_styles": ["taiko build-up"],
            "negative_local_styles": [],
            "duration_ms": 8000,
            "lines": [],
        }
    ],
}


def make_score(positive: tuple[str, ...] = (), negative: tuple[str, ...] = ()) -> Score:
    return Score(
        path=Path("adaptive_score.yaml"),
        title="t",
        generator=PluginChoice("synth"),
        cache=PluginChoice("memory"),
        storage=(PluginChoice("local"),),
        moods={},
        rules=(),
        events={},
        transitions=(),
        style=Style(positive, negative),
    )


EMBER = make_score(("cinematic fantasy game score", "seamless loop"), ("vocals",))


def req(prompt: str = "Gentle harp and flute", **changes: Any) -> GenerationRequest:
    base = GenerationRequest(mood="explore", variant=0, prompt=prompt, instrumental=False)
    return base.replace(**changes)


# --- helpers ------------------------------------------------------------------------------


def test_prompt_helpers() -> None:
    assert says("Warm Seamless  Loop, strings", "seamless loop")
    assert not says("loopy seamlessness", "seamless loop")
    assert append_phrases("", ["a", "b"]) == "a, b"
    assert append_phrases("Harp,  ", ["a"]) == "Harp, a"
    assert append_phrases("Harp.", ["a"]) == "Harp. a"
    assert append_phrases("Harp", []) == "Harp"
    assert dedupe(["A", "b", "a ", "B", ""]) == ["A", "b"]
    plan = {"positive_global_styles": ["Harp"], "sections": []}
    out = plan_with_styles(plan, ["harp", "lo-fi"], ["vocals"])
    assert out["positive_global_styles"] == ["Harp", "lo-fi"]
    assert out["negative_global_styles"] == ["vocals"]
    assert plan == {"positive_global_styles": ["Harp"], "sections": []}


def test_every_prompt_helper_is_documented_for_plugin_authors() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    public = [
        name
        for name, value in vars(prompts).items()
        if inspect.isfunction(value) and value.__module__ == prompts.__name__
        if not name.startswith("_")
    ]
    assert public and [name for name in public if f"`{name}(" not in doc] == []


# --- style ---------------------------------------------------------------------------------


def test_style_adds_positive_styles_and_an_avoid_sentence() -> None:
    out = style.segue_transform_prompt(req(), EMBER)
    assert out is not None
    assert out.prompt == (
        "Gentle harp and flute, cinematic fantasy game score, seamless loop. Avoid: vocals."
    )
    assert out.composition_plan is None


def test_a_stinger_is_not_asked_to_loop() -> None:
    out = style.segue_transform_prompt(
        req("Triumphant brass fanfare", stinger=True, composition_plan=copy.deepcopy(PLAN)), EMBER
    )
    assert out is not None
    assert out.prompt == "Triumphant brass fanfare, cinematic fantasy game score. Avoid: vocals."
    assert "seamless loop" not in out.composition_plan["positive_global_styles"]
    loop = style.segue_transform_prompt(req("Battle", composition_plan=copy.deepcopy(PLAN)), EMBER)
    assert loop is not None and "seamless loop" in loop.composition_plan["positive_global_styles"]


def test_style_does_not_repeat_what_the_prompt_says() -> None:
    out = style.segue_transform_prompt(req("A seamless loop of harp, no vocals"), EMBER)
    assert out is not None
    assert out.prompt == "A seamless loop of harp, no vocals, cinematic fantasy game score"
    again = style.segue_transform_prompt(req(out.prompt), EMBER)
    assert again is not None and again.prompt == out.prompt


def test_style_after_a_sentence_and_on_an_empty_prompt() -> None:
    out = style.segue_transform_prompt(req("Gentle harp."), make_score((), ("vocals", "choir")))
    assert out is not None and out.prompt == "Gentle harp. Avoid: vocals, choir."
    empty = style.segue_transform_prompt(req(""), EMBER)
    assert empty is not None
    assert empty.prompt == "cinematic fantasy game score, seamless loop. Avoid: vocals."


def test_style_goes_into_the_plan_deduplicated_without_touching_the_original() -> None:
    plan = copy.deepcopy(PLAN)
    request = req(composition_plan=plan)
    out = style.segue_transform_prompt(request, EMBER)
    assert out is not None and out.composition_plan is not None
    assert out.composition_plan["positive_global_styles"] == [
        "epic orchestral",
        "Cinematic fantasy game score",
        "seamless loop",
    ]
    assert out.composition_plan["negative_global_styles"] == ["lo-fi", "vocals"]
    assert out.composition_plan["sections"] == PLAN["sections"]
    assert plan == PLAN  # the score's mapping is not mutated
    assert request.composition_plan is plan


def test_no_style_no_change() -> None:
    assert style.segue_transform_prompt(req(), make_score()) is None
    assert style.segue_transform_prompt(req(), None) is None


# --- tempo_key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "bpm", "key", "expected"),
    [
        ("Harp", 84.0, "D major", "Harp, 84 BPM, D major"),
        ("Harp", 92.5, None, "Harp, 92.5 BPM"),
        ("Harp", None, "F# minor", "Harp, F# minor"),
        ("Harp in d major", 84.0, "D major", "Harp in d major, 84 BPM"),
        ("Harp in e minor", None, "D major", "Harp in D major"),  # lowercase: compared too
        # A tempo or key the prompt states against the mood's: the mood's wins, in its place.
        ("Harp at 120 bpm", 84.0, "D major", "Harp at 84 BPM, D major"),
        ("Harp in Eb minor", None, "D major", "Harp in D major"),
        ("Harp at 400 BPM in A minor", 90.0, "C major", "Harp at 90 BPM in C major"),
        ("From 80 BPM up to 160 BPM", 120.0, None, "From 120 BPM up to 120 BPM"),
        # One stated tempo or key agreeing is no contradiction (a modulation, a build).
        ("D major at 84 bpm, modulating to A major", 84.0, "D major", None),
        ("Harp, 84 BPM building to 120 BPM", 84.0, None, None),
        ("Strings in D minor", None, "D dorian", None),  # a mode: held to its tonic
        ("Strings in D major", None, "D", None),
        ("Horns in B-flat major", None, "Bb major", None),
        ("Horns in A# major", None, "Bb major", None),
        ("Horns in A-sharp minor", None, "Bb major", "Horns in Bb major"),
        ("Strings in A minor", None, "A aeolian", None),
        # "a major"/"a minor" in lowercase is English, not a key: the mood's key is added.
        ("a major battle", None, "C major", "a major battle, C major"),
        ("Harp, 84 beats per minute, Bb-major", 84.0, "Bb major", None),
        ("", 140.0, None, "140 BPM"),
        ("Harp", None, None, None),
    ],
)
def test_tempo_and_key_phrases(
    prompt: str, bpm: float | None, key: str | None, expected: str | None
) -> None:
    out = tempo_key.segue_transform_prompt(req(prompt, bpm=bpm, key=key))
    assert (out.prompt if out else None) == expected


def test_tempo_and_key_go_into_the_plan() -> None:
    plan = copy.deepcopy(PLAN)
    out = tempo_key.segue_transform_prompt(
        req("Battle", bpm=140, key="C minor", composition_plan=plan)
    )
    assert out is not None and out.composition_plan is not None
    assert out.composition_plan["positive_global_styles"][-2:] == ["140 BPM", "C minor"]
    assert plan == PLAN


def test_a_plans_styles_contradicting_the_mood_say_the_moods_tempo_and_key() -> None:
    plan = copy.deepcopy(PLAN)
    plan["positive_global_styles"] = ["epic orchestral", "400 BPM", "in A minor"]
    out = tempo_key.segue_transform_prompt(
        req("Battle, 140 BPM, C minor", bpm=140, key="C minor", composition_plan=plan)
    )
    assert out is not None and out.composition_plan is not None
    assert out.prompt == "Battle, 140 BPM, C minor"
    assert out.composition_plan["positive_global_styles"] == [
        "epic orchestral",
        "140 BPM",
        "in C minor",
    ]
    assert plan["positive_global_styles"] == ["epic orchestral", "400 BPM", "in A minor"]
    # Styles that agree somewhere (a build from the mood's tempo) are left as written.
    plan["positive_global_styles"] = ["140 BPM building to 170 BPM"]
    same = req("Battle, 140 BPM", bpm=140, composition_plan=plan)
    assert tempo_key.segue_transform_prompt(same) is None


# --- instrumental -------------------------------------------------------------------------


def test_instrumental_word() -> None:
    out = instrumental.segue_transform_prompt(req("Harp", instrumental=True))
    assert out is not None and out.prompt == "Harp, instrumental"
    assert instrumental.segue_transform_prompt(req("Harp", instrumental=False)) is None
    assert instrumental.segue_transform_prompt(req("Instrumental harp", instrumental=True)) is None
    planned = instrumental.segue_transform_prompt(
        req("Instrumental harp", instrumental=True, composition_plan=copy.deepcopy(PLAN))
    )
    assert planned is not None and planned.prompt == "Instrumental harp"
    assert planned.composition_plan is not None
    assert planned.composition_plan["positive_global_styles"][-1] == "instrumental"


# --- the chain -----------------------------------------------------------------------------


def test_builtin_order_and_the_full_prompt() -> None:
    plugins = Plugins(load_entry_points=False, disabled=())
    assert plugins.transformers()[0] == "segue.plugins.tempo_key"
    assert plugins.transformers()[-2:] == ["segue.plugins.instrumental", "segue.plugins.style"]
    out = plugins.transform(
        req("Gentle harp and flute", bpm=84, key="D major", instrumental=True), EMBER
    )
    assert out.prompt == (
        "Gentle harp and flute, 84 BPM, D major, instrumental, "
        "cinematic fantasy game score, seamless loop. Avoid: vocals."
    )


class Lofi:
    @hookimpl
    def segue_transform_prompt(self, request: GenerationRequest) -> GenerationRequest:
        return request.replace(prompt=append_phrases(request.prompt, ["lo-fi"]))


class First:
    @hookimpl(tryfirst=True)
    def segue_transform_prompt(self, request: GenerationRequest) -> GenerationRequest:
        return request.replace(prompt="Solo " + request.prompt)


class Last:
    @hookimpl(trylast=True)
    def segue_transform_prompt(self, request: GenerationRequest) -> GenerationRequest:
        return request.replace(prompt=request.prompt + " (v2)")


def test_third_party_transformers_run_where_docs_plugins_md_says() -> None:
    plugins = Plugins(
        load_entry_points=False,
        disabled=(),
        extra=[("lofi", Lofi()), ("first", First()), ("last", Last())],
    )
    assert plugins.transformers() == [
        "first",
        "segue.plugins.tempo_key",
        "lofi",
        "segue.plugins.instrumental",
        "segue.plugins.style",
        "last",
    ]
    out = plugins.transform(req("harp", bpm=84, instrumental=True), EMBER)
    assert out.prompt == (
        "Solo harp, 84 BPM, lo-fi, instrumental, cinematic fantasy game score, seamless loop. "
        "Avoid: vocals. (v2)"
    )
