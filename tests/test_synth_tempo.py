"""Every variant of a mood is heard at its tempo, at the lengths a score asks for.

The other synth tests render 16 s loops; a score's loops are 30, 60, 120 s, whose sections
(and so their energy and drum patterns) differ. Each case here was heard at a double or a
half of its metadata's tempo before (``benchmarks/synth_tempo.py`` sweeps them all), and
is measured the tests' way (``audio_measure.tempo``, within 1.5 %). Slow half-time takes are
also measured as librosa's beat tracker reads them (``audio_measure.beat_tracker_tempo``, its
120 BPM prior): with silent beats 2 and 4 it read them at half the tempo.
"""

from __future__ import annotations

import audio_measure as am
import numpy as np
import pytest
from synth_prompts import PROMPTS

from segue.core.request import GenerationRequest
from segue.plugins.synth.render import render_request

SR = 44100


# The example score's stealth mood (shortened): a woodblock's off-beat clip-clop at 92 BPM
# was heard at twice the tempo.
STEALTH = (
    "Sneaking through the keep's cellars. Plucked pizzicato strings and muted marimba pick "
    "out a sly figure, a soft woodblock ticks like a clock, a breathy low clarinet creeps below."
)


@pytest.mark.parametrize(
    ("prompt", "variant", "seconds", "fields"),
    [
        (PROMPTS["folk"], 2, 30.0, {}),  # the driving feel on frame drums: heard at 64 BPM
        (PROMPTS["folk"], 2, 60.0, {}),
        (STEALTH, 0, 30.0, {"bpm": 92.0, "key": "E phrygian"}),
        (STEALTH, 1, 16.0, {"bpm": 92.0, "key": "E phrygian"}),
        # Frame drums at 68 BPM: their eighths were the beat heard (136).
        ("Dark dungeon crawl, slow and heavy, low brass and drums", 0, 16.0, {}),
    ],
    ids=[
        "folk-driving-30s",
        "folk-driving-60s",
        "stealth-straight-30s",
        "stealth-halftime-16s",
        "dungeon-slow-16s",
    ],
)
def test_every_length_is_heard_at_its_tempo(
    prompt: str, variant: int, seconds: float, fields: dict
) -> None:
    request = GenerationRequest(
        mood="m", variant=variant, prompt=prompt, duration_s=seconds, **fields
    )
    arr, x = render_request(request, SR)
    heard = am.tempo(x.astype(np.float64), SR)
    assert abs(heard - arr.bpm) / arr.bpm <= 0.015, f"{arr.bpm} BPM heard as {heard:.2f}"


# Slow half-time takes (variant 1): of calm moods on the soft kit, with nothing on beats 2
# and 4 but a faint shaker, read by a beat tracker at half the tempo (36 for 72 BPM); on
# other kits, with a ghost note three quarters of a beat before the backbeat and the
# downbeat (and the lo-fi kit's hats on 1 and 3 only), at 4/3 of it or twice (lo-fi 80 BPM
# read at 108, the frame drums' dungeon 68 at 89 at 16 s, at 136 at 30 and 60 s).
@pytest.mark.parametrize(
    ("prompt", "seconds"),
    [
        (PROMPTS["calm"], 30.0),
        ("Main menu theme, calm and inviting", 30.0),
        ("Sad piano solo, melancholic and slow", 16.0),
        ("Underwater level, dreamy and floating", 60.0),
        ("Lo-fi hip hop study beats, dusty keys", 30.0),
        ("Dark dungeon crawl, slow and heavy, low brass and drums", 16.0),
    ],
    ids=[
        "calm-30s",
        "menu-30s",
        "sad-piano-16s",
        "underwater-60s",
        "lofi-30s",
        "dungeon-16s",
    ],
)
def test_a_slow_halftime_take_is_tracked_at_its_tempo(prompt: str, seconds: float) -> None:
    request = GenerationRequest(mood="m", variant=1, prompt=prompt, duration_s=seconds)
    arr, x = render_request(request, SR)
    x = x.astype(np.float64)
    assert arr.bpm < 100 and arr.meter == "4/4"
    heard = am.tempo(x, SR)
    assert abs(heard - arr.bpm) / arr.bpm <= 0.015, f"{arr.bpm} BPM heard as {heard:.2f}"
    # The tracker's tempo is 60 / (a whole number of 23 ms frames): 3 % apart at 130 BPM.
    tracked = am.beat_tracker_tempo(x, SR)
    assert abs(tracked - arr.bpm) / arr.bpm <= 0.03, f"{arr.bpm} BPM tracked at {tracked:.1f}"


# Slow half-time takes as a tester measures them (the onset strength's mean over bands at
# the file's rate, librosa's default for ``beat_track`` and ``feature.tempo``): the soft
# kit's shaker on the and of 2 and of 4, as loud as beats 2 and 4, was read at twice the
# tempo (a judged grotto's 72 BPM at 148, the main menu's 74 at 152); now it ticks beats 2
# and 4 as firmly as its pickups into 3 and the bar.
@pytest.mark.parametrize(
    "prompt",
    [
        "Peaceful moonlit grotto, gentle ambient pads, soft harp and bells, instrumental",
        "Main menu theme, calm and inviting, instrumental",
    ],
    ids=["grotto", "menu"],
)
def test_a_slow_halftime_take_is_heard_at_its_tempo_by_a_testers_tracker(prompt: str) -> None:
    request = GenerationRequest(mood="m", variant=1, prompt=prompt, duration_s=30.0)
    arr, x = render_request(request, SR)
    x = x.astype(np.float64)
    assert arr.bpm < 100 and arr.meter == "4/4"
    for median in (True, False):
        tracked = am.beat_tracker_tempo(x, SR, median=median)
        assert abs(tracked - arr.bpm) / arr.bpm <= 0.03, f"{arr.bpm} BPM tracked at {tracked:.1f}"


# A lullaby in 6/8 at 66 BPM (the dotted quarter): its held pad's slow swells, as loud as
# the harp, filled the onset strength between the beats, and a tester's beat tracker
# (librosa's ``feature.tempo`` on ``onset_strength``'s mean over bands, at the file's own
# rate) read the eighths in pairs, at 3/2 of the tempo (99.4). A slow compound meter's held
# chords now sit under its plucked figures.
# A rocked lullaby's straight take (the lilt) under a tune that started notes on the
# beat's middle eighth or in quarter notes across it: a tester's tracker heard the eighths
# in pairs, at 3/2 of the tempo (a 60 s bedtime lullaby's 72 BPM read at 108). A rocked
# take's tune now keeps to its own eighths (the lilt's: the beat and its last eighth).
@pytest.mark.parametrize(
    ("prompt", "seconds", "medians"),
    [
        ("Soft lullaby for a sleeping child with music box and harp", 30.0, (True, False)),
        ("Gentle lullaby at bedtime with celesta and soft strings", 60.0, (False,)),
    ],
    ids=["pad-under-harp", "rocked-tune"],
)
def test_a_lullaby_is_tracked_at_its_dotted_quarter(
    prompt: str, seconds: float, medians: tuple[bool, ...]
) -> None:
    request = GenerationRequest(
        mood="m", variant=0, prompt=prompt + ", instrumental", duration_s=seconds
    )
    arr, x = render_request(request, SR)
    x = x.astype(np.float64)
    assert arr.meter == "6/8" and arr.bpm < 90
    for median in medians:
        tracked = am.beat_tracker_tempo(x, SR, median=median)
        assert abs(tracked - arr.bpm) / arr.bpm <= 0.03, f"{arr.bpm} BPM tracked at {tracked:.1f}"


# A jig's flowing take (variant 3) played the arpeggio, the chords and the high drum in
# quarter notes across the dotted quarter (three across each two beats), over a bass and a
# low drum on the beats: heard at their rate or half it (a 110 BPM jig at 165, the
# default's 128 at 96). Now its bass and low drum carry each dotted quarter with its chords,
# the arpeggio's quarter notes light between them and a sixteenth pickup into each beat.
@pytest.mark.parametrize("fields", [{}, {"bpm": 110.0}], ids=["128", "110"])
def test_a_jigs_flowing_take_is_heard_at_its_dotted_quarter(fields: dict) -> None:
    request = GenerationRequest(
        mood="m", variant=3, prompt=PROMPTS["jig"] + ", instrumental", duration_s=30.0, **fields
    )
    arr, x = render_request(request, SR)
    x = x.astype(np.float64)
    assert arr.meter == "6/8"
    heard = am.tempo(x, SR)
    assert abs(heard - arr.bpm) / arr.bpm <= 0.015, f"{arr.bpm} BPM heard as {heard:.2f}"
    tracked = am.beat_tracker_tempo(x, SR, median=False)
    assert abs(tracked - arr.bpm) / arr.bpm <= 0.03, f"{arr.bpm} BPM tracked at {tracked:.1f}"


# Drum and bass at 170: every take was heard at half (86) or 2/3 (112) of its tempo by a
# tester's tracker, its snares two beats apart (the backbeat on 2 and 4, ghosts on the a of
# 2 and of 4). Each take's snares now also fall a beat apart, and it is heard at its tempo
# by the tracker as librosa's ``beat_track`` reads it (the onset strength's median over
# bands at 22.05 kHz; its mean at 44.1 kHz, where the hats weigh more, still hears some
# takes at half).
@pytest.mark.timeout(900)  # four 30 s takes per prompt
@pytest.mark.parametrize(
    ("prompt", "bpm", "key"),
    [
        ("Rolling drum and bass along the motorway at night", 170.0, "A minor"),
        ("Neurofunk pursuit through the cyber labyrinth", 172.0, None),
    ],
    ids=["roller", "neurofunk"],
)
def test_drum_and_bass_takes_are_heard_at_their_tempo(
    prompt: str, bpm: float, key: str | None
) -> None:
    for variant in range(4):
        request = GenerationRequest(
            mood="m",
            variant=variant,
            prompt=prompt + ", instrumental",
            duration_s=30.0,
            bpm=bpm,
            key=key,
        )
        arr, x = render_request(request, SR)
        x = x.astype(np.float64)
        assert arr.bpm == bpm
        tracked = am.beat_tracker_tempo(x, SR)
        assert abs(tracked - bpm) / bpm <= 0.03, (
            f"take {variant}: {bpm} BPM tracked at {tracked:.1f}"
        )
