"""segue.core.analysis and segue.core.carving on real recordings (the Debian corpus).

Excerpts are cut from the installed packages at test time (tests/corpus.py); the ground
truth (tempo, beats, downbeats) comes from the pieces' MIDI files. benchmarks/analysis.py
runs every excerpt and every song; these tests hold the same targets on a few.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus import excerpt, f_measure, read, require_corpus, songs
from loop_checks import loop_report
from meter_corpus import rendered, require_renderer

from segue.core import analysis, carving

# Starts and middles of nine pieces (aligned with their MIDI); music006 at 430 s was read
# at double tempo and music008 at 95 s at 4/3 of it with the tempo preference at 120 BPM;
# music006 at 95 s had its beats on the off-beat before the chroma took only spectral
# peaks; music007 is written in 4/4 with every note on a triplet grid (12/8 in effect).
EXCERPTS = [
    (3, 0.0),
    (4, 95.0),
    (5, 250.0),
    (7, 0.0),
    (9, 430.0),
    (0, 0.0),
    (6, 430.0),
    (8, 95.0),
    (6, 95.0),
]
COMPOUND = {7}
SONGS = ["hr3-hell.ogg", "hr3-caves.ogg", "track16.ogg", "track4.ogg"]


@pytest.fixture(scope="module")
def analysed() -> list[tuple[object, analysis.Rhythm | None]]:
    require_corpus()
    out = []
    for song, start in EXCERPTS:
        e = excerpt(song, start)
        assert e is not None, f"music{song:03d} at {start} s is not aligned with its MIDI"
        x, sr = e.load()
        out.append((e, analysis.analyse(x, sr)))
    return out


@pytest.mark.timeout(600)  # the fixture cuts and aligns six excerpts with their MIDI
def test_tempo_octave_right_without_a_hint(analysed) -> None:
    for e, r in analysed:
        assert r is not None, e.name
        assert abs(r.bpm / e.bpm - 1) <= 0.01, (e.name, r.bpm, e.bpm)
        assert 0.0 <= r.tempo_confidence <= 1.0


def test_beats_and_downbeats_match_the_midi(analysed) -> None:
    scores = [f_measure(r.beats, e.beats) for e, r in analysed]
    assert np.mean(scores) >= 0.9, scores
    downbeats = [f_measure(r.downbeats, e.downbeats) >= 0.9 for e, r in analysed]
    assert sum(downbeats) >= 0.85 * len(downbeats), downbeats
    for e, r in analysed:
        assert r.beats_per_bar == 4, e.name
        assert r.meter == ("12/8" if int(e.name[5:8]) in COMPOUND else "4/4"), e.name


def test_stereo_48k_gives_the_same_grid(analysed) -> None:
    from segue.core.audio import resample

    e, _ = analysed[1]
    x, sr = e.load()
    r48 = analysis.analyse(resample(x, sr, 48000), 48000)
    assert r48 is not None
    assert abs(r48.bpm / e.bpm - 1) <= 0.01
    assert f_measure(r48.beats, e.beats) >= 0.9


@pytest.mark.parametrize(
    "meter,seed",
    [
        ("3/4", 0),
        ("3/4", 1),
        ("4/4", 6),
        ("6/8", 0),  # its eighths read as a waltz's beats at 185 BPM before
        ("6/8", 4),  # an organ's and a hi-hat's eighths: barely any onsets in the mix
        ("6/8", 5),  # its weaker second beat halved the tempo (bars read as beats)
        ("6/8", 7),  # read as 12/8 before
        ("6/8", 8),  # a string section's slow attacks, and a hi-hat
    ],
)
def test_meter_of_rendered_pieces(meter: str, seed: int) -> None:
    """Pieces written in 3/4, 6/8 and 4/4, rendered through a SoundFont (tests/meter_corpus.py;
    benchmarks/analysis.py measures twelve of each): the beat grid and the meter are heard.
    A 6/8 piece's beats are dotted quarters, two to a bar."""
    require_renderer()
    p = rendered(meter, seed)
    r = analysis.analyse(p.samples, 44100)
    assert r is not None
    assert abs(r.bpm / p.bpm - 1) <= 0.01, (r.bpm, p.bpm)
    assert r.meter == meter
    assert r.beats_per_bar == p.beats_per_bar and r.beat_unit == (8 if meter == "6/8" else 4)
    assert 0.0 <= r.meter_confidence <= 1.0
    # The grid goes on through the last chord's release, where the piece has no beats.
    end = p.beats[-1] + 30.0 / p.bpm
    assert f_measure(r.beats[r.beats < end], p.beats) >= 0.9
    assert f_measure(r.downbeats[r.downbeats < end], p.downbeats) >= 0.9


def test_no_steady_beat_in_a_drone() -> None:
    sr = 44100
    t = np.arange(20 * sr) / sr
    drone = 0.2 * np.sin(2 * np.pi * 110 * t) * (1 + 0.1 * np.sin(2 * np.pi * 0.13 * t))
    r = analysis.analyse(np.stack([drone, drone], axis=1).astype(np.float32), sr)
    assert r is None or r.beat_confidence < 0.3


@pytest.mark.parametrize("name", ["track6.ogg", "track16.ogg", "track24.ogg"])
def test_real_songs_with_compound_beats_read_compound_throughout(name: str) -> None:
    """Three drascula-music songs whose beats divide in three: their onsets folded over the
    beat fall two thirds into it and not at the half, in every register (a jig's or a
    shuffle's long-short lilt; docs/audio.md). The whole song and 30 s from its middle read
    compound beats at one tempo (track6 read as a waltz at three times its tempo before)."""
    require_corpus()
    path = next(p for p in songs() if p.name == name)
    x, sr = read(path)
    whole = analysis.analyse(x, sr)
    start = 0.45 * x.shape[0] / sr
    middle = analysis.analyse(x[round(start * sr) : round((start + 30.0) * sr)], sr)
    assert whole is not None and middle is not None
    assert whole.beat_unit == 8 and middle.beat_unit == 8, (whole.meter, middle.meter)
    assert whole.meter in ("6/8", "12/8") and whole.meter_confidence > 0.0
    assert abs(middle.bpm / whole.bpm - 1) <= 0.01, (middle.bpm, whole.bpm)


def test_a_real_song_whose_chords_change_in_threes_reads_3_4() -> None:
    """The middle of hyperrogue's hr3-crossroads: its chord changes repeat three and six
    beats apart and not four or eight (autocorrelation +0.47 and +0.25 against -0.13 and
    -0.29, the same through the song), as the whole song reads; 30 s of it read 4/4 before."""
    require_corpus()
    path = next(p for p in songs() if p.name == "hr3-crossroads.ogg")
    x, sr = read(path)
    start = round(0.45 * x.shape[0])
    r = analysis.analyse(x[start : start + 30 * sr], sr)
    assert r is not None and r.meter == "3/4", r.meter if r else None
    assert 0.0 < r.meter_confidence <= 1.0


def test_a_dotted_rhythm_is_not_a_compound_beat() -> None:
    """The middle of hyperrogue's hr-domina-mountain: on every beat an onset on it and one
    three quarters into it (a dotted eighth and a sixteenth), none at its thirds. Those
    pulses repeat at three times the beat rate too, but the beat divides in two."""
    require_corpus()
    path = next(p for p in songs() if p.name == "hr-domina-mountain.ogg")
    x, sr = read(path)
    start = round(0.45 * x.shape[0])
    r = analysis.analyse(x[start : start + 30 * sr], sr)
    assert r is not None and r.beat_unit == 4, r.meter if r else None


@pytest.mark.parametrize("name", SONGS)
def test_carved_song_loops_are_seamless_whole_bars(name: str) -> None:
    require_corpus()
    path = next(p for p in songs() if p.name == name)
    x, sr = read(path)
    feats = analysis.features(x, sr)
    rhythm = analysis.analyse(x, sr, feats)
    carved = carving.carve_checked(x, sr, rhythm, feats)
    assert carved.fallback is None, carved.fallback
    report = loop_report(carved, sr, rhythm)
    assert report.ok, (report.problems, report.seam)
    assert carved.bars >= 4
    assert carved.loop_start > 0  # the intro plays once as a lead-in
    # The lead-in is the song's own start, untouched; the outro is the song's end.
    assert np.array_equal(carved.samples[: carved.loop_start], x[: carved.loop_start])
    tail = carved.outro_end - carved.loop_end
    assert np.array_equal(
        carved.samples[carved.loop_end :], x[carved.loop_end : carved.loop_end + tail]
    )


def test_a_mid_song_excerpt_loops_too() -> None:
    require_corpus()
    e = excerpt(5, 95.0)
    assert e is not None
    x, sr = e.load()
    rhythm = analysis.analyse(x, sr)
    carved = carving.carve_checked(x, sr, rhythm)
    report = loop_report(carved, sr, rhythm)
    assert report.ok, (report.problems, report.seam)
    # Its loop starts on a beat of the MIDI's grid, too.
    assert np.min(np.abs(e.beats - carved.loop_start / sr)) <= 0.07


def test_a_song_too_short_becomes_a_crossfaded_whole_song_loop() -> None:
    require_corpus()
    path = next(p for p in songs() if p.name == "track12.ogg")  # 9 s: three bars and a tail
    x, sr = read(path)
    carved = carving.carve_checked(x, sr, analysis.analyse(x, sr))
    assert carved.fallback is not None
    assert carved.loop_start == 0 and carved.loop_end == carved.samples.shape[0]
    assert loop_report(carved, sr, None).ok


def test_stinger_from_a_song_trims_silence_and_fades_out() -> None:
    sr = 44100
    hit = np.zeros((sr, 2), np.float32)
    hit[int(0.3 * sr) :] = 0.5  # 0.3 s of silence, then a hit that is cut off hard
    out = carving.shape_stinger(hit, sr)
    assert out.shape[0] < hit.shape[0] - int(0.29 * sr)
    assert np.abs(out[:10]).max() == 0.0  # a few ms before the attack
    assert np.abs(out[-1]).max() < 1e-3  # faded, not cut
