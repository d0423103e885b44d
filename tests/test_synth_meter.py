"""The bar is heard where the metadata puts it: in 3/4 the low band (bass and low drums)
lands hardest on the written downbeat, in every variant.

A bar-quantised cue starts on the metadata's bar line; a listener counts "one" where the
chords change and, in a waltz's oom-pah-pah, where the bass and the low drum land hardest
(``audio_measure.low_accent_profile``: onset strength below 200 Hz at each beat, as
librosa's ``onset_strength(fmax=200)`` gives it, per beat of the bar; both cues together
in ``downbeat_profile``, checked on real music in tests/test_audio_measures_corpus.py).
The waltz's driving take played a 4/4 figure of two beats cut to three (bass and low drum
struck on beat 3 as on the downbeat, the bass's pickup masking the downbeat), and its
beat 3 was heard as "one" (the low band's accents 0.53 / 0.41 / 1.00).
"""

from __future__ import annotations

import audio_measure as am
import numpy as np
import pytest
from synth_prompts import PROMPTS

from segue.core.request import GenerationRequest
from segue.plugins.synth.arrangement import Arrangement
from segue.plugins.synth.composer import compose
from segue.plugins.synth.render import render_request

SR = 44100
BALLROOM = "Elegant ballroom waltz with strings, instrumental"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("prompt", "seconds", "seed"),
    [(BALLROOM, 30.0, 0), (BALLROOM, 30.0, 1), (PROMPTS["waltz"], 16.0, 0)],
    ids=["ballroom-30s", "ballroom-30s-seed1", "waltz-16s"],
)
@pytest.mark.parametrize("variant", [1, 2, 3])
def test_a_waltz_is_heard_from_its_written_downbeat(
    prompt: str, seconds: float, seed: int, variant: int
) -> None:
    req = GenerationRequest(
        mood="m", variant=variant, prompt=prompt, duration_s=seconds, params={"seed": seed}
    )
    arr, x = render_request(req, SR)
    assert arr.meter == "3/4"
    x = x.astype(np.float64)
    low = am.low_accent_profile(x, SR, arr.bpm, arr.beats_per_bar)
    loudest = int(np.argmax(low))
    assert loudest == 0, f"the low band lands hardest on beat {loudest + 1} ({np.round(low, 2)})"
    profile = am.downbeat_profile(x, SR, arr.bpm, arr.beats_per_bar)
    heard = am.heard_downbeat(x, SR, arr.bpm, arr.beats_per_bar)
    assert heard == 0, f"beat {heard + 1} heard as the downbeat ({np.round(profile, 2)})"


# The straight waltz struck the bass and the low drum on every beat (the bass walking
# root-fifth-root, a pumping synth bass in eighths), the low band's accent landed hardest on
# beat 3 (a ballroom waltz 0.89 / 0.77 / 1.00), and a listener counting from the low band
# heard "one" there. Now an oom-pah-pah: the bass and the low drum on the downbeat alone,
# the chords (and the arpeggio) on 2 and 3.
STRAIGHT_WALTZES = {
    "ballroom": ("A ballroom waltz under crystal chandeliers, strings and piano, elegant", 60.0),
    "gentle": ("Gentle waltz", 30.0),
    "village": ("Lively village dance waltz with fiddle", 30.0),
    "slow": ("A slow sad waltz, cello and piano", 30.0),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(STRAIGHT_WALTZES))
def test_a_straight_waltz_lands_on_its_downbeat(name: str) -> None:
    prompt, seconds = STRAIGHT_WALTZES[name]
    req = GenerationRequest(
        mood="m", variant=0, prompt=prompt + ", instrumental", duration_s=seconds
    )
    arr, x = render_request(req, SR)
    assert arr.meter == "3/4"
    low = am.low_accent_profile(x.astype(np.float64), SR, arr.bpm, arr.beats_per_bar)
    loudest = int(np.argmax(low))
    assert loudest == 0, f"the low band lands hardest on beat {loudest + 1} ({np.round(low, 2)})"


# The straight waltz (the beats alone) and the flowing one (running eighths over the root
# held) folded per bar 0.87-0.91 alike on soft-kit and frame-drum waltzes: every part struck
# the downbeat in both. Now the straight take's downbeat is the bass and the low drum alone
# (the oom), its chords, arpeggio and light drum on 2 and 3 (the pah-pah).
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("prompt", "seconds"),
    [(STRAIGHT_WALTZES["ballroom"][0], 30.0), ("Gentle waltz", 30.0)],
    ids=["ballroom-30s", "gentle-30s"],
)
def test_a_straight_and_a_flowing_waltz_differ_per_bar(prompt: str, seconds: float) -> None:
    takes = []
    for v in (0, 3):
        req = GenerationRequest(
            mood="m", variant=v, prompt=prompt + ", instrumental", duration_s=seconds
        )
        arr, x = render_request(req, SR)
        takes.append(x.astype(np.float64))
    bars = am.bar_onset_correlation(*takes, SR, arr.bpm, arr.beats_per_bar)
    steps = am.strength_correlation(*takes, SR, arr.bpm)
    assert bars <= 0.8, f"variants 0-3 folded per bar {bars:.2f}"
    assert steps <= 0.8, f"variants 0-3 per sixteenth {steps:.2f}"


# A lullaby, a barcarolle or a waltz by its plural or another of its names: "lullabies for
# the nursery", "a berceuse", "cradle songs", "waltzes at the ball" were a 4/4 piece at
# 100 BPM (only the singular words were read).
METER_NAMES = [
    ("Lullabies for the night nursery, harp", "6/8", True),
    ("A lullabye for the kittens, celesta", "6/8", True),
    ("A hushabye for the little wren, music box", "6/8", True),
    ("A berceuse for the sleeping child, piano", "6/8", True),
    ("Cradle songs by the fire, guitar", "6/8", True),
    ("A soft cradle song with music box", "6/8", True),
    ("Barcarolles on the canal, mandolin", "6/8", False),
    ("A barcarole for the gondolier, guitar", "6/8", False),
    ("Tarantellas in the square, mandolin", "6/8", False),
    ("A sicilienne, flute and harp", "6/8", False),
    ("Waltzes at the ball, strings", "3/4", False),
    ("Minuets for the court, harpsichord", "3/4", False),
]


@pytest.mark.parametrize(("prompt", "meter", "lullaby"), METER_NAMES)
def test_a_dance_or_a_lullaby_named_otherwise_keeps_its_meter(
    prompt: str, meter: str, lullaby: bool, tmp_path
) -> None:
    from segue.core.commands.plan import generator_says
    from segue.plugins.synth import SynthGenerator

    req = GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16.0)
    arr = compose(req)
    assert arr.meter == meter, (prompt, arr.meter)
    if lullaby:  # a lullaby's slow tempo too, and no word of it ignored
        assert arr.bpm <= 70, (prompt, arr.bpm)
    ignored = generator_says(SynthGenerator({}, tmp_path), "ignored_words", req)
    assert not {w for w in ignored if w.split()[0].startswith(("lull", "hush", "berc", "cradle"))}


# A compound meter's flowing take (variant 3) held each beat's note with a sixteenth pickup
# into the next, on the arpeggio and the high drum: a pickup at 5/6 of the beat cancels the
# beat's third harmonic, and a judge heard every jig's, tarantella's and 12/8 barcarolle's
# flowing take as a beat in two (librosa's onset strength, its third harmonic over the
# beat over its second and fourth: 0.46-0.65, the other takes 1.3-2.3), and its pickup,
# binned by eighths, folded with the straight take's lilt (0.86-0.90). Now the high drum
# strikes both eighths lightly before its pickup, over running eighths in the arpeggio.
COMPOUND_DRAWS = {
    "jig": (PROMPTS["jig"], None),
    "tarantella": ("A tarantella in the village square, mandolin and tambourine", None),
    "12/8": ("A barcarolle in 12/8 on the evening canal, harp and strings", 104.0),
    "jig-112": ("Irish jig in the pub, flute and guitar", 112.0),
}


def four_takes(prompt: str, bpm: float | None) -> tuple[Arrangement, dict[int, np.ndarray]]:
    """A prompt's four takes, 30 s each, and the last take's arrangement."""
    takes = {}
    for v in range(4):
        req = GenerationRequest(
            mood="m", variant=v, prompt=prompt + ", instrumental", duration_s=30.0, bpm=bpm
        )
        arr, x = render_request(req, SR)
        takes[v] = x.astype(np.float64)
    return arr, takes


def assert_tracked_at(x: np.ndarray, bpm: float) -> None:
    tracked = am.beat_tracker_tempo(x, SR, median=False)
    assert abs(tracked - bpm) / bpm <= 0.03, f"{bpm} BPM tracked at {tracked:.1f}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(COMPOUND_DRAWS))
def test_a_compound_flowing_take_divides_its_beat_in_three(name: str) -> None:
    prompt, bpm = COMPOUND_DRAWS[name]
    arr, takes = four_takes(prompt, bpm)
    assert arr.meter in ("6/8", "12/8") and arr.bpm >= 90, (arr.meter, arr.bpm)
    three = am.three_ratio(takes[3], SR, arr.bpm)
    assert three > 1.0, f"the flowing take's beat heard in two ({three:.2f})"
    assert_tracked_at(takes[3], arr.bpm)
    for u in range(3):
        a, b = takes[u], takes[3]
        eighths = am.strength_correlation(a, b, SR, arr.bpm, 3)
        bars = am.bar_onset_correlation(a, b, SR, arr.bpm, arr.beats_per_bar, True)
        assert eighths <= 0.8, f"variants {u}-3 per eighth {eighths:.2f}"
        assert bars <= 0.8, f"variants {u}-3 folded per bar {bars:.2f}"


# A slow 12/8 (rocked, below 90 BPM: a blues, a shuffle) played its flowing take as a music
# box's figure, each beat's note held and a firm sixteenth pickup into the next, on the
# arpeggio and the high skin: a judge heard a 12/8 blues' flowing take as a beat in two
# (0.54). Now the beat (a light skin on it) leads its two eighths, light, into the pickup.
ROCKED_DRAWS = {
    "blues-72": ("A tired 12/8 blues at the train station, piano and saxophone", 72.0),
    "shuffle-64": ("A slow 12/8 shuffle in the smoky bar, organ and guitar", 64.0),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(ROCKED_DRAWS))
def test_a_rocked_flowing_take_divides_its_beat_in_three(name: str) -> None:
    prompt, bpm = ROCKED_DRAWS[name]
    arr, takes = four_takes(prompt, bpm)
    assert arr.meter == "12/8" and arr.bpm < 90, (arr.meter, arr.bpm)
    three = am.three_ratio(takes[3], SR, arr.bpm)
    assert three > 1.0, f"the flowing take's beat heard in two ({three:.2f})"
    assert_tracked_at(takes[3], arr.bpm)
    for u in range(3):
        bars = am.bar_onset_correlation(takes[u], takes[3], SR, arr.bpm, arr.beats_per_bar, True)
        assert bars <= 0.8, f"variants {u}-3 folded per bar {bars:.2f}"


# A waltz's flowing take (variant 3) out of the middle tempi. Slow, its running eighths
# under the beats folded per bar like the oom-pah-pah (a wistful waltz at 85 BPM 0.84-0.89,
# a lonely one at 80 0.87); fast, above 140 BPM, where the driving take's gallop becomes
# eighths, its tune's and arpeggio's eighths were the driving take's (a carousel waltz at
# 150 0.87-0.98, a giddy one at 160 0.92-0.95). Now slow it hesitates (1, the and of 2, 3),
# and fast a sixteenth pickup leads into each beat (tune, arpeggio, the drum's tick).
FLOWING_WALTZES = {
    "slow-84": ("A slow sad waltz, cello and piano", 84.0),
    "lonely-80": ("A lonely waltz at the old piano, rain outside", 80.0),
    "giddy-160": ("A giddy waltz on the spinning ice, celesta and strings", 160.0),
    "whirling-168": ("A fast whirling waltz at the masked ball, strings", 168.0),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(FLOWING_WALTZES))
def test_a_slow_or_fast_flowing_waltz_differs_from_the_other_takes(name: str) -> None:
    prompt, bpm = FLOWING_WALTZES[name]
    arr, takes = four_takes(prompt, bpm)
    assert arr.meter == "3/4", arr.meter
    assert_tracked_at(takes[3], arr.bpm)
    for u in range(3):
        a, b = takes[u], takes[3]
        steps = am.strength_correlation(a, b, SR, arr.bpm)
        bars = am.bar_onset_correlation(a, b, SR, arr.bpm, arr.beats_per_bar)
        assert steps <= 0.8, f"variants {u}-3 per sixteenth {steps:.2f}"
        assert bars <= 0.8, f"variants {u}-3 folded per bar {bars:.2f}"
