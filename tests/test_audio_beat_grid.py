"""segue.plugins.beat_grid: tempo and first beat from the audio, and the tempo check."""

from __future__ import annotations

import logging
import re

import meter_corpus
import numpy as np
import pytest
from audio_signals import SR, click_track, drum_loop, noise, pad, tone
from meter_corpus import rendered, require_renderer

from segue.core import audio
from segue.core.audio import TrackAudio
from segue.core.track import Track
from segue.plugins import beat_grid

TEMPI = [60, 66, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 170, 180]
DRUM_TEMPI = [60, 72, 88, 104, 120, 136, 152, 170, 180]


@pytest.mark.parametrize("bpm", TEMPI)
@pytest.mark.parametrize("offset", [0.0, 0.23])
def test_click_tracks_within_1_5_percent_and_first_beat(bpm, offset):
    grid = beat_grid.analyse(click_track(bpm, 8.0, offset=offset), SR)
    assert grid is not None
    assert grid.bpm == pytest.approx(bpm, rel=0.015)
    assert grid.first_beat_s == pytest.approx(offset % (60 / bpm), abs=0.012)


@pytest.mark.parametrize("bpm", DRUM_TEMPI)
@pytest.mark.parametrize("pattern", ["rock", "four", "sixteen"])
def test_drum_loops_within_1_5_percent(bpm, pattern):
    grid = beat_grid.analyse(drum_loop(bpm, 8.0, pattern=pattern, seed=bpm), SR)
    assert grid is not None, f"{pattern} at {bpm} BPM: no beat found"
    assert grid.bpm == pytest.approx(bpm, rel=0.015), f"{pattern} at {bpm} BPM"
    # Kicks build up over 10-20 ms: the onset the grid sees lags the first sample a little.
    assert grid.first_beat_s == pytest.approx(0.0, abs=0.025)


def test_a_long_track_and_48k():
    x = drum_loop(97, 60.0, sr=48000, seed=7)
    grid = beat_grid.analyse(x, 48000)
    assert grid is not None and grid.bpm == pytest.approx(97, rel=0.005)


@pytest.mark.parametrize(
    "signal",
    [pad(10.0), noise(10.0), tone(440.0, 10.0), np.zeros((SR * 4, 2), np.float32)],
    ids=["pad", "noise", "tone", "silence"],
)
def test_no_beat_in_pads_noise_tones_and_silence(signal):
    assert beat_grid.analyse(signal, SR) is None


def test_octave_match():
    assert beat_grid.octave_match(120.5, 120) == 120.5
    assert beat_grid.octave_match(60.2, 120) == pytest.approx(120.4)
    assert beat_grid.octave_match(241.0, 120) == pytest.approx(120.5)
    assert beat_grid.octave_match(126.0, 120) is None  # 5 % off
    assert beat_grid.octave_match(90.0, 120) is None


def _track(**changes) -> Track:
    base = Track(id="t1", mood="combat", variant=0, format="ogg", duration_s=8.0, bpm=None)
    return base.replace(**changes)


def _wav(tmp_path, x, sr=SR) -> TrackAudio:
    """The signal as the pipeline hands it over: decoded from a float WAV, once."""
    path = tmp_path / "work.wav"
    audio.write_float_wav(path, x, sr)
    samples, rate = audio.read(path)
    return TrackAudio(samples, rate, _track())


def _hook(track: Track, decoded: TrackAudio) -> Track | None:
    out = beat_grid.segue_process_track(decoded.replace(track=track))
    if out is None:
        return None
    assert out.samples is decoded.samples  # metadata only: the samples are passed on as they are
    return out.track


def test_hook_fills_bpm_and_first_beat_when_unknown(tmp_path):
    path = _wav(tmp_path, click_track(132, 8.0, offset=0.1))
    out = _hook(_track(), path)
    assert out.bpm == pytest.approx(132, rel=0.015)
    assert out.first_beat_s == pytest.approx(0.1, abs=0.012)
    assert out.extra["tempo_estimate"] == pytest.approx(132, rel=0.015)
    assert "tempo_warning" not in out.extra


def test_hook_reports_a_6_8_piece_in_dotted_quarters_two_to_a_bar(tmp_path):
    """A piece written in 6/8 (tests/meter_corpus.py): the clock's grid is its dotted
    quarters (``bpm``), bars of two (``beats_per_bar``) from its first downbeat, and the
    meter is named as the synth names its own (``extra.meter``)."""
    require_renderer()
    p = rendered("6/8", 4)
    decoded = _wav(tmp_path, p.samples, meter_corpus.SR)
    out = _hook(_track(duration_s=p.samples.shape[0] / meter_corpus.SR), decoded)
    assert out.bpm == pytest.approx(p.bpm, rel=0.01)
    assert out.beats_per_bar == 2
    assert out.extra["meter"] == "6/8" and out.extra["rhythm"]["meter"] == "6/8"
    assert out.first_beat_s == pytest.approx(0.0, abs=0.03)


def test_hook_takes_the_requested_octave(tmp_path):
    # A rock beat at 70 read at 140 or 70: the request says which one was meant.
    path = _wav(tmp_path, drum_loop(140, 8.0, seed=3))
    out = _hook(_track(extra={"requested_bpm": 70.0}), path)
    assert out.bpm == pytest.approx(70, rel=0.015)
    assert "tempo_warning" not in out.extra


def test_hook_warns_when_far_from_the_request(tmp_path, caplog):
    path = _wav(tmp_path, drum_loop(100, 8.0, seed=4))
    track = _track(bpm=120.0, extra={"requested_bpm": 120.0})
    with caplog.at_level(logging.WARNING, logger="segue.plugins.beat_grid"):
        out = _hook(track, path)
    assert out.bpm == 120.0  # the generator's tempo is kept; the warning says it is doubtful
    said = re.search(r"estimated tempo ([\d.]+) BPM", out.extra["tempo_warning"])
    assert said and float(said.group(1)) == pytest.approx(100, rel=0.015)
    assert "120" in out.extra["tempo_warning"]
    assert out.extra["tempo_estimate"] == pytest.approx(100, rel=0.015)
    assert any("tempo" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("requested", [96.0, 48.0, 192.0, 95.0])
def test_hook_accepts_the_request_within_4_percent_or_an_octave(tmp_path, requested):
    path = _wav(tmp_path, drum_loop(96, 8.0, seed=5))
    out = _hook(_track(extra={"requested_bpm": requested}), path)
    assert "tempo_warning" not in out.extra
    assert out.bpm == pytest.approx(requested, rel=0.02)


def test_hook_leaves_a_known_tempo_alone_without_a_request(tmp_path):
    path = TrackAudio(np.full((4, 2), np.nan, np.float32), SR, _track())  # never looked at
    track = _track(bpm=90.0)
    assert _hook(track, path) is None


def test_a_composed_grid_is_taken_as_a_fact_and_checked_against_the_request(caplog):
    # A generator that placed every note on its grid (the synth) is not measured: NaN
    # samples would fail any analysis.
    never_read = TrackAudio(np.full((4, 2), np.nan, np.float32), SR, _track())
    exact = {"exact_grid": True, "requested_bpm": 120.0}
    assert _hook(_track(bpm=120.0, extra=exact), never_read) is None
    assert _hook(_track(bpm=60.0, extra=exact), never_read) is None  # an octave down
    with caplog.at_level(logging.WARNING, logger="segue.plugins.beat_grid"):
        out = _hook(_track(bpm=100.0, extra=exact), never_read)
    assert out.bpm == 100.0 and "tempo_estimate" not in out.extra
    assert out.extra["tempo_warning"] == (
        "the generator's tempo 100 BPM is more than 4% from the requested 120 BPM"
    )
    assert any("100 BPM" in r.getMessage() for r in caplog.records)


def test_hook_with_no_beat_keeps_bpm_unknown_and_says_so(tmp_path):
    path = _wav(tmp_path, pad(8.0))
    out = _hook(_track(), path)
    assert out.bpm is None
    assert out.extra["tempo_warning"] == "no clear beat found"


def test_a_stinger_without_a_beat_is_not_warned_about(tmp_path):
    path = _wav(tmp_path, pad(8.0))
    out = _hook(_track(loop=False, extra={"requested_bpm": 120.0}), path)
    assert "tempo_warning" not in out.extra


def _few_hits(seed: int, seconds: float = 5.0) -> np.ndarray:
    """Nine decaying tones at random times: onsets, but no steady tempo."""
    rng = np.random.default_rng(seed)
    x = np.zeros((int(seconds * SR), 2), np.float32)
    n = int(0.3 * SR)
    env = np.exp(-np.arange(n) / SR * 12)
    for t in np.sort(rng.uniform(0, seconds - 0.5, 9)):
        i = int(t * SR)
        x[i : i + n] += (0.4 * env * np.sin(2 * np.pi * rng.uniform(200, 800) * np.arange(n) / SR))[
            :, None
        ]
    return x


@pytest.mark.parametrize("seed", [2, 5])
def test_a_stinger_with_an_unclear_tempo_is_not_warned_about(tmp_path, seed):
    decoded = _wav(tmp_path, _few_hits(seed))
    out = _hook(_track(loop=False, bpm=60.0, extra={"requested_bpm": 60.0}), decoded)
    assert out.extra["rhythm"]["tempo_confidence"] < beat_grid.ONE_SHOT_MIN_TEMPO_CONFIDENCE
    assert "tempo_warning" not in out.extra
    # The same audio as a loop is checked: its tempo is far from the request.
    out = _hook(_track(loop=True, bpm=60.0, extra={"requested_bpm": 60.0}), decoded)
    assert "tempo_warning" in out.extra


def test_a_stinger_with_a_clear_beat_far_from_the_request_is_warned_about(tmp_path):
    decoded = _wav(tmp_path, drum_loop(100, 8.0, seed=4))
    out = _hook(_track(loop=False, bpm=120.0, extra={"requested_bpm": 120.0}), decoded)
    assert "tempo_warning" in out.extra


@pytest.mark.parametrize("seconds", [0.001, 0.05, 0.3])
def test_very_short_audio_has_no_beat_and_no_error(seconds):
    x = noise(seconds, amp=0.3)
    if x.shape[0] == 0:
        x = np.full((1, 2), 0.1, np.float32)
    assert beat_grid.analyse(x, SR) is None
