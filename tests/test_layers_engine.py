"""Intensity, layer ramps and ducks in the director: pure code, no sockets, no loop."""

from __future__ import annotations

import pytest

from segue.core.cue import Cue, Duck, Layers
from segue.core.engine.director import Director
from segue.core.engine.intensity import IntensityPath, read_intensity
from segue.core.score import Duck as DuckSpec
from segue.core.score import Layer, parse_score
from segue.core.track import Track

T0 = 1_764_000_000.0
LEAD = 0.2

SCORE = """\
segue: 1
intensity: {key: threat, slew_per_s: 2.0}
moods:
  siege:
    prompt: Furious orchestral battle music
    bpm: 120
    layers:
      bass: {}
      harmony: {}
      drums: {from: 0.4}
      melody: {from: 0.7}
  calm: {prompt: harp, bpm: 120, layers: {pads: {to: 0.5}}}
rules:
  - {mood: calm, when: {peace: true}}
  - {mood: siege}
events:
  radio_call: {duck: {depth_db: -12, hold_s: 3}}
  cutscene: {duck: {depth_db: -20, attack_ms: 100, release_ms: 800}}
"""


def track(mood: str) -> Track:
    return Track(
        id=mood, mood=mood, variant=0, format="ogg", duration_s=40.0, bpm=120.0, loop_end_s=32.0
    )


def director(text: str = SCORE) -> Director:
    score = parse_score(text, "s.yaml")
    return Director("room", score, lambda mood: (track(mood),), lead_s=LEAD)


def layers_of(outputs) -> list[Layers]:
    return [o for o in outputs if isinstance(o, Layers)]


def test_read_intensity_clamps_and_defaults():
    assert read_intensity({"threat": 0.5}, "threat") == 0.5
    assert read_intensity({"threat": 7}, "threat") == 1.0
    assert read_intensity({"threat": -1}, "threat") == 0.0
    assert read_intensity({"threat": "high"}, "threat") == 0.0
    assert read_intensity({"threat": True}, "threat") == 0.0
    assert read_intensity({}, "threat") == 0.0
    assert read_intensity({"enemy": {"threat": 0.25}}, "enemy.threat") == 0.25


def test_the_first_cue_carries_the_gains_at_its_start():
    d = director()
    out = d.start(T0)
    assert isinstance(out[0], Cue) and out[0].mood == "siege"
    (first,) = layers_of(out)
    assert first.mood == "siege" and first.start_at == out[0].start_at == T0 + LEAD
    assert first.ramp_ms == 0
    assert first.gains == {"bass": 1.0, "harmony": 1.0, "drums": 0.0, "melody": 0.0}


def test_a_jump_is_slewed_and_cut_where_layers_bend():
    d = director()
    d.start(T0)
    now = T0 + 10
    ramps = layers_of(d.update(now, {"threat": 1.0}))
    start = now + LEAD
    # 0 -> 1 at 2/s: drums fade in over 0.35..0.4, melody over 0.65..0.7; 25 ms each.
    assert [(round(r.start_at - start, 6), r.ramp_ms) for r in ramps] == [
        (0.175, 25),
        (0.325, 25),
    ]
    assert ramps[0].gains == {"bass": 1.0, "harmony": 1.0, "drums": 1.0, "melody": 0.0}
    assert ramps[1].gains == {"bass": 1.0, "harmony": 1.0, "drums": 1.0, "melody": 1.0}
    assert ramps[-1].intensity == 0.7
    # The path itself never moves faster than the slew.
    assert d.intensity(start + 0.25) == pytest.approx(0.5)
    assert d.intensity(start + 0.5) == 1.0


def test_a_change_mid_ramp_starts_from_where_the_music_is():
    d = director()
    d.start(T0)
    d.update(T0 + 10, {"threat": 1.0})
    # 0.3 s into the ramp the intensity is 0.6 (drums in, melody not yet); turn back.
    now = T0 + 10 + LEAD + 0.3 - LEAD
    ramps = layers_of(d.update(now, {"threat": 0.0}))
    assert d.intensity(now + LEAD) == pytest.approx(0.6)
    (down,) = ramps  # only the drums' edge lies between 0.6 and 0
    assert down.start_at == pytest.approx(now + LEAD + (0.6 - 0.4) / 2.0)
    assert down.ramp_ms == 25 and down.gains["drums"] == 0.0


def test_no_message_when_the_gains_do_not_change():
    d = director()
    d.start(T0)
    assert layers_of(d.update(T0 + 1, {"threat": 0.2})) == []  # below every edge
    assert layers_of(d.update(T0 + 2, {"threat": 0.2})) == []  # the same value
    assert layers_of(d.update(T0 + 3, {"other": 1})) == []


def test_quantised_changes_start_on_the_next_bar():
    text = SCORE.replace("slew_per_s: 2.0}", "slew_per_s: 2.0, at: next_bar}")
    d = director(text)
    d.start(T0)
    now = T0 + LEAD + 3.1  # bars of 2 s at 120 BPM: the next bar line is 4 s in
    (ramp, _) = layers_of(d.update(now, {"threat": 1.0}))
    bar = T0 + LEAD + 4.0
    assert ramp.start_at == pytest.approx(bar + 0.175)


def test_a_gain_curve_is_ramped_piecewise():
    path = IntensityPath(0.0, 1.0, T0)
    path.retarget(T0, 1.0)
    layer = Layer("pads", 0.0, 1.0, ((0.0, 0.0), (0.5, 1.0), (1.0, 0.2)))
    ramps = path.ramps("room", "m", (layer,), T0, initial=False)
    assert [(r.start_at - T0, r.ramp_ms, r.gains["pads"]) for r in ramps] == [
        (0.0, 500, 1.0),
        (0.5, 500, 0.2),
    ]


def test_a_cue_to_a_layered_mood_gets_its_gains_and_a_joiner_gets_them_too():
    d = director()
    d.start(T0)
    d.update(T0 + 1, {"threat": 1.0})
    out = d.update(T0 + 10, {"peace": True})
    cue = next(o for o in out if isinstance(o, Cue))
    (calm,) = layers_of(out)
    assert calm.mood == "calm" and calm.start_at == cue.start_at
    assert calm.gains == {"pads": 0.0}  # intensity 1 is above its window
    joined = d.layers_now(T0 + 10.05)
    assert [(j.mood, j.ramp_ms) for j in joined] == [("siege", 0), ("calm", 0)]
    assert joined[0].gains["melody"] == 1.0 and joined[0].start_at == T0 + 10.05


def test_scores_without_intensity_send_no_layers():
    text = "segue: 1\nmoods: {a: {prompt: x}}\nrules: [{mood: a}]\n"
    d = director(text)
    assert layers_of(d.start(T0)) == []
    assert layers_of(d.update(T0 + 1, {"threat": 1.0})) == []
    assert d.layers_now(T0 + 2) == [] and d.intensity(T0) is None


def test_ducks_start_hold_and_end():
    d = director()
    d.start(T0)
    spec = d.score.events["radio_call"].duck
    duck = d.duck(T0 + 5, spec, event="radio_call")
    assert duck == Duck(
        "room", -12.0, 50, 500, T0 + 5 + LEAD, T0 + 5 + LEAD + 0.05 + 3.0, "radio_call"
    )
    assert d.duck_now(T0 + 7) == duck
    assert d.duck_now(T0 + 5 + LEAD + 3.05 + 0.5) is None  # released
    # An open duck ends when asked, after the lead.
    open_duck = d.duck(T0 + 20, DuckSpec(-20, None, 100, 800))
    assert open_duck.end_at is None
    ended = d.end_duck(T0 + 22)
    assert ended is not None and ended.end_at == T0 + 22 + LEAD
    assert ended.start_at == open_duck.start_at
    assert d.end_duck(T0 + 23) is None  # nothing left to end


def test_a_snapshot_carries_the_intensity_path_and_the_duck():
    d = director()
    d.start(T0)
    d.update(T0 + 1, {"threat": 1.0})
    d.duck(T0 + 2, DuckSpec(-20, None, 100, 800), event="cutscene")
    other = director()
    other.restore(d.snapshot())
    assert other.intensity(T0 + 1.5) == d.intensity(T0 + 1.5) == pytest.approx(0.6)
    assert other.duck_now(T0 + 3) == d.duck_now(T0 + 3)
    assert other.layers_now(T0 + 1.3) == d.layers_now(T0 + 1.3)
