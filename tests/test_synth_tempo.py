"""Every variant of a mood is heard at its tempo, at the lengths a score asks for.

The other synth tests render 16 s loops; a score's loops are 30, 60, 120 s, whose sections
(and so their energy and drum patterns) differ. Each case here was heard at a double or a
half of its metadata's tempo before (``benchmarks/synth_tempo.py`` sweeps them all), and
is measured the tests' way (``audio_measure.tempo``, within 1.5 %).
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
