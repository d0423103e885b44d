"""One reading of the keys a prompt states (``segue.core.prompts.stated_keys``): the
tempo/key transformer, ``segue validate`` and the synth take the same phrase for the same
key, and a mode word alone ("Dorian sea shanty") is that mode on its white-key tonic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segue.core.prompts import contradicting_keys, stated_key
from segue.core.request import GenerationRequest
from segue.core.score import load_score
from segue.plugins.synth import SynthGenerator
from segue.plugins.synth.composer import compose
from segue.plugins.synth.words import key_in_prompt, parse_key
from segue.plugins.tempo_key import segue_transform_prompt

# (prompt, the key it states or None, as written)
PHRASES = [
    ("Dorian sea shanty", "D dorian", "Dorian"),
    ("a phrygian desert march", "E phrygian", "phrygian"),
    ("lydian dream", "F lydian", "lydian"),
    ("a slow march in mixolydian", "G mixolydian", "mixolydian"),
    ("locrian dread", "B locrian", "locrian"),
    ("a dirge in harmonic minor", "A harmonic minor", "harmonic minor"),
    ("A dorian tune for the docks", "D dorian", "dorian"),  # "A" is the article
    ("a reel in A dorian", "A dorian", "A dorian"),
    ("Harp in e minor", "E minor", "e minor"),
    ("Gentle harp, 84 BPM, D major", "D major", "D major"),
    ("B-flat minor lament", "Bb minor", "B-flat minor"),
    ("calm harp in the key of G", "G major", "key of G"),
    ("F# mixolydian reel", "F# mixolydian", "F# mixolydian"),
    ("A major battle", None, None),
    ("a minor change of heart", None, None),
    ("major and minor chords", None, None),
    ("the key of Gold", None, None),
]


@pytest.mark.parametrize(("prompt", "key", "written"), PHRASES)
def test_core_and_the_synth_read_one_key(prompt: str, key: str | None, written: str) -> None:
    stated = stated_key(prompt)
    assert (stated.name if stated else None) == key
    if stated is None:
        assert key_in_prompt(prompt) is None
        return
    assert stated.match[0] == written
    # The synth plays the key core reads...
    assert key_in_prompt(prompt) == parse_key(key)
    assert compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=8)).key == (
        parse_key(key)
    )
    # ...the transformer finds the prompt saying it (nothing added, nothing replaced)...
    request = GenerationRequest(mood="m", variant=0, prompt=prompt, key=key)
    assert contradicting_keys(prompt, key) == []
    assert segue_transform_prompt(request=request) is None
    # ...and told another one, it puts it in the place of the phrase the synth read.
    other = segue_transform_prompt(request=request.replace(key="C# minor"))
    assert other is not None and written not in other.prompt
    assert key_in_prompt(other.prompt) == parse_key("C# minor")


def test_a_bare_mode_is_warned_of_when_the_moods_key_is_another(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(
        "segue: 1\nmoods:\n  sea:\n    prompt: Dorian sea shanty\n    key: E minor\n"
        "rules: [{mood: sea}]\n",
        encoding="utf-8",
    )
    assert list(load_score(path).warnings) == [
        f'{path}:4: warning: moods.sea.prompt: says "Dorian" but the mood\'s key is E minor: '
        "the key wins (the generator is asked for E minor)"
    ]


def test_segue_plan_says_which_key_a_bare_mode_is(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from segue.core.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(
        "segue: 1\ngenerator: {name: synth, soundfont: none}\nmoods:\n"
        "  sea:\n    prompt: Dorian sea shanty\n    duration_s: 8\n"
        "  dock:\n    prompt: Sea shanty\n    key: A dorian\n    duration_s: 8\n"
        "rules: [{mood: sea}]\n",
        encoding="utf-8",
    )
    gen = SynthGenerator({"soundfont": "none"}, tmp_path)
    bare = GenerationRequest(mood="sea", variant=0, prompt="Dorian sea shanty")
    assert gen.plan_notes(bare) == [
        'reads "Dorian" as the key D dorian (a mode alone is played on its white-key tonic; '
        "write e.g. 'in A dorian' or the mood's key for another)"
    ]
    assert gen.plan_notes(bare.replace(key="A dorian")) == []
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'sea: synth reads "Dorian" as the key D dorian' in out and "dock: synth reads" not in out
    assert main(["plan", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    notes = {r["mood"]: r["notes"] for r in doc["requests"]}
    assert notes["dock"] == [] and notes["sea"][0].startswith('reads "Dorian"')
