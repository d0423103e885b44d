"""The score's ``intensity``, mood ``layers`` and event ``duck`` (docs/score.md)."""

from __future__ import annotations

import itertools

import pytest

from segue.core.errors import ScoreError
from segue.core.score import LAYER_EDGE, Duck, Intensity, Layer, parse_score

ISSUE_SCORE = """\
segue: 1
intensity: {key: threat, slew_per_s: 2.0}
moods:
  siege:
    prompt: Furious orchestral battle music
    layers:
      bass: {}                # always
      harmony: {}
      drums: {from: 0.4}      # from intensity 0.4 up
      melody: {from: 0.7}
rules:
  - {mood: siege}
events:
  radio_call: {duck: {depth_db: -12, hold_s: 3}}
"""


def test_the_issue_score_validates_with_its_layers_and_duck():
    score = parse_score(ISSUE_SCORE, "s.yaml")
    assert score.intensity == Intensity("threat", 2.0, "now", line=2)
    layers = score.moods["siege"].layers
    assert [(la.name, la.from_, la.to, la.line) for la in layers] == [
        ("bass", 0.0, 1.0, 7),
        ("harmony", 0.0, 1.0, 8),
        ("drums", 0.4, 1.0, 9),
        ("melody", 0.7, 1.0, 10),
    ]
    assert score.events["radio_call"].duck == Duck(-12.0, 3.0, 50, 500)
    public = score.public()
    assert public["intensity"] == {"key": "threat", "slew_per_s": 2.0, "at": "now"}
    assert {"key": "threat", "type": "number", "min": 0, "max": 1} in public["state_keys"]
    assert public["events"][0]["duck"]["hold_s"] == 3.0


def test_layer_gain_follows_its_window_and_curve():
    drums = Layer("drums", 0.4)
    assert drums.gain_at(0.0) == 0.0
    assert drums.gain_at(0.4 - LAYER_EDGE) == 0.0
    assert drums.gain_at(0.4 - LAYER_EDGE / 2) == pytest.approx(0.5)
    assert drums.gain_at(0.4) == 1.0
    assert drums.gain_at(1.0) == 1.0
    always = Layer("bass")
    assert always.gain_at(0.0) == always.gain_at(1.0) == 1.0
    pads = Layer("pads", 0.0, 0.5, ((0.0, 1.0), (0.5, 0.3)))
    assert pads.gain_at(0.25) == pytest.approx(0.65)
    assert pads.gain_at(0.5) == pytest.approx(0.3)
    assert pads.gain_at(0.5 + LAYER_EDGE) == 0.0
    # Between breakpoints the gain is linear: what clients' linear ramps reproduce.
    points = pads.breakpoints()
    for lo, hi in itertools.pairwise(points):
        mid = (lo + hi) / 2
        assert pads.gain_at(mid) == pytest.approx((pads.gain_at(lo) + pads.gain_at(hi)) / 2)


def test_duck_defaults_and_open_hold():
    text = ISSUE_SCORE.replace("{depth_db: -12, hold_s: 3}", "{attack_ms: 10}")
    assert parse_score(text, "s.yaml").events["radio_call"].duck == Duck(-12.0, None, 10, 500)


def test_curve_point_errors_name_the_point():
    text = ISSUE_SCORE.replace("melody: {from: 0.7}", "melody: {gain: [[0.2, 2]]}")
    with pytest.raises(ScoreError) as info:
        parse_score(text, "s.yaml")
    assert info.value.errors == [
        "s.yaml:10: moods.siege.layers.melody.gain[0]: "
        "must be [intensity, gain], each a number from 0 to 1"
    ]
