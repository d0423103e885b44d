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
