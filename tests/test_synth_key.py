"""Takes that a wide sweep (moods x variants x lengths) heard in another key, rendered in
memory and read back with the tests' key estimator (``audio_measure.key``): each is heard
in the key its metadata names, a mode on its own tonic (with the mode's third).

- The example score's explore mood (D major), its half-time take at 60 s: what every new
  user hears first. It read A major: the bass held the fifth under the tonic as long as
  the root (its third harmonic on the fifth too), and the tune sat on the third.
- The example's stealth mood (E phrygian), half-time at 16 s: read C major, the parent
  scale; bII carried the bass as long as i did.
- A desert mood (A harmonic minor), half-time at 16 s: read C major, the relative major;
  its tune opened the held tonic's second bar on the third again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import audio_measure as am
import numpy as np
import pytest

from segue.core.plugins import get_plugins
from segue.core.pregen.planning import build_plan, make_generator
from segue.core.request import GenerationRequest
from segue.core.score import load_score
from segue.plugins.synth.composer import compose
from segue.plugins.synth.render import render_request

SR = 44100
EXAMPLE = Path(__file__).resolve().parent.parent / "adaptive_score.yaml"
DESERT = "Desert caravan crossing the dunes, oud and hand percussion, mysterious"


def heard_as(key) -> tuple[int, str]:
    """A mode is heard on its own tonic, with its third (E phrygian: E minor)."""
    return key.tonic, "minor" if key.minor else "major"


@pytest.fixture(scope="module")
def example() -> dict[str, GenerationRequest]:
    """The example score's loop requests, as the pipeline builds them (prompt transformers
    included), by mood."""
    score = load_score(EXAMPLE)
    plugins = get_plugins()
    plan = build_plan(score, plugins, make_generator(score, plugins))
    return {p.request.mood: p.request for p in plan if not (p.request.stinger or p.request.variant)}


def heard(request: GenerationRequest) -> tuple[tuple[int, str], tuple[int, str]]:
    arr, x = render_request(request, SR)
    return am.key(x.astype(np.float64), SR), heard_as(arr.key)


@pytest.mark.parametrize(
    ("mood", "variant", "seconds"), [("explore", 1, 60.0), ("stealth", 1, 16.0)]
)
def test_the_example_scores_takes_are_heard_in_their_keys(example, mood, variant, seconds):
    request = dataclasses.replace(example[mood], variant=variant, duration_s=seconds)
    got, want = heard(request)
    assert got == want, (mood, variant, seconds)


def test_harmonic_minor_is_heard_on_its_tonic_not_the_relative_major():
    request = GenerationRequest(mood="m", variant=1, prompt=DESERT, duration_s=16.0)
    assert compose(request).key.mode == "harmonic minor"
    got, want = heard(request)
    assert got == want


# Lydian moods, in other words, on other tonics, a science-fiction mood's major (lydian) and
# under the score-wide style: the mode's pool once held V and vii (the parent scale's tonic
# and dominant chords) and half the takes were heard a fifth up (C lydian's driving and
# off-beat takes in G major, A lydian's in E major). Every take is heard on its own tonic,
# in major, by the constant-Q chroma's key finder (librosa's ``chroma_cqt`` weighing, as
# a listener's key finder hears a held bass).
LYDIAN = [
    "Glass temple bells in C lydian, luminous, instrumental",
    "Orbital station at dawn, hopeful sci-fi, instrumental",
    "Starship bridge, calm sci-fi, glowing consoles, instrumental",
    "Airy sky castle in A lydian, wondrous, instrumental, epic orchestral",
]


@pytest.mark.timeout(600)  # four 30 s takes rendered and measured, on a loaded machine
@pytest.mark.parametrize("prompt", LYDIAN)
def test_a_lydian_mood_is_heard_on_its_tonic_in_every_take(prompt: str) -> None:
    for variant in range(4):
        request = GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=30.0)
        arr, x = render_request(request, SR)
        assert arr.key.mode == "lydian", prompt
        got = am.key_cq(x.astype(np.float64), SR)
        assert got == heard_as(arr.key), (prompt, variant, got)


# The off-beat take (frame drums, 100-136 BPM) strikes its arpeggio loudest on the
# off-beats: there its pattern's fifth, struck every bar, was heard as the centre (a D
# dorian shanty's off-beat take in A minor, a D dorian moor tune's in D major, by
# librosa's chroma_cqt at 60 s). Its accented off-beats sound the chord's third instead.
OFFBEAT_KEYS = [
    "Windswept moor, a tune in D dorian. 110 BPM, D dorian, instrumental",
    "Old harbour work song in D dorian, instrumental",
    "Glass temple bells in C lydian, luminous, instrumental",
    "Caravan of wanderers, fiddle and tambourine. 108 BPM, D minor, instrumental",
]


@pytest.mark.parametrize("prompt", OFFBEAT_KEYS)
def test_the_off_beat_takes_accents_are_no_fifths(prompt: str, monkeypatch) -> None:
    import segue.plugins.synth.composer as composer

    plans = []
    draw = composer.plan_harmony

    def spy(*args, **kwargs):
        plans.append(draw(*args, **kwargs))
        return plans[-1]

    monkeypatch.setattr(composer, "plan_harmony", spy)
    arr = compose(GenerationRequest(mood="m", variant=3, prompt=prompt, duration_s=60.0))
    plan = plans[-1]
    arp = next(p for p in arr.parts if p.role == "arp")
    bpb, tonic = arr.beats_per_bar, arr.key.tonic
    fifths = [
        n.t
        for n in arp.notes
        if abs(n.t - round(n.t)) > 1e-6
        and int(n.t // bpb) not in plan.turns
        and round(n.p) % 12 == (tonic + plan.chords[int(n.t // bpb)].tones[2]) % 12
    ]
    assert not fifths, (prompt, fifths[:8])


# A player alone says the key with its tune only: its cadences fell on chord tones the
# relative or the dominant key share ("a trumpet by itself" in G was heard in B minor, "the
# viola alone" in E in G# minor, "a bassoon all by itself" in G in B minor and D major, by
# the constant-Q chroma's key finder and librosa's). Each phrase now ends on the tonic.
ALONE_KEYS = [
    ("A trumpet by itself at the fortress gate, proud, instrumental", None),
    ("The viola alone in the snowbound lodge, tender, 80 BPM, instrumental", 80.0),
    ("A bassoon all by itself in the old library, wry, 84 BPM, instrumental", 84.0),
]


@pytest.mark.timeout(600)  # four 30 s takes rendered and measured, on a loaded machine
@pytest.mark.parametrize(("prompt", "bpm"), ALONE_KEYS)
def test_a_player_alone_is_heard_in_its_key_in_every_take(prompt: str, bpm: float | None) -> None:
    for variant in range(4):
        request = GenerationRequest(
            mood="m", variant=variant, prompt=prompt, duration_s=30.0, bpm=bpm
        )
        arr, x = render_request(request, SR)
        assert {p.role for p in arr.parts if p.notes} == {"melody"}, prompt
        got = am.key_cq(x.astype(np.float64), SR)
        assert got == heard_as(arr.key), (prompt, variant, got, arr.key)
