"""segue.plugins.loop_points, segue.core.seams, and the order of the three post-processors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_signals import SR, drum_loop, tone
from loop_checks import loop_report

from segue.core import analysis, audio, carving, hookimpl, seams
from segue.core import audio as core_audio
from segue.core.audio import TrackAudio
from segue.core.plugins import Plugins
from segue.core.track import Track
from segue.plugins import loop_points


def _track(**changes) -> Track:
    base = Track(id="t1", mood="explore", variant=0, format="ogg", duration_s=0.0)
    return base.replace(**changes)


def _wav(tmp_path: Path, x: np.ndarray, name: str = "work.wav") -> np.ndarray:
    """The signal as the pipeline hands it over: decoded from a float WAV, once."""
    path = tmp_path / name
    audio.write_float_wav(path, x, SR)
    return audio.read(path)[0]


def _hook(track: Track, samples: np.ndarray) -> Track | None:
    out = _run(track, samples)
    return None if out is None else out.track


def _run(track: Track, samples: np.ndarray) -> TrackAudio | None:
    decoded = TrackAudio(samples, SR, track)
    out = loop_points.segue_process_track(decoded)
    if out is not None and track.loop and track.loop_end_s is not None:
        # A generator's own loop points: metadata only, the samples are passed on as they are.
        assert out.samples is decoded.samples
    return out


def test_loop_is_whole_bars_and_the_tail_is_the_outro(tmp_path):
    # 9.3 s at 120 BPM: four whole 2 s bars, then a tail.
    path = _wav(tmp_path, drum_loop(120, 9.3))
    out = _run(_track(bpm=120.0, loop_end_s=None), path)
    track = out.track
    assert track.loop_start_s == 0.0
    assert track.loop_end_s == pytest.approx(8.0)
    assert track.extra["loop"]["outro_start_s"] == pytest.approx(8.0)
    assert track.extra["loop"]["outro_end_s"] == pytest.approx(out.duration_s)
    assert track.extra["seam_ok"] is True
    # With nothing before the loop start, the tail after the end is crossfaded into it.
    assert not np.array_equal(out.samples[:100], path[:100])
    assert np.array_equal(out.samples[SR : 8 * SR], path[SR : 8 * SR])


def test_loop_starts_on_the_first_beat_and_counts_bars_from_it(tmp_path):
    x = np.concatenate([np.zeros((round(0.3 * SR), 2), np.float32), drum_loop(100, 11.7, seed=2)])
    path = _wav(tmp_path, x)
    track = _track(bpm=100.0, first_beat_s=0.3, beats_per_bar=3)
    out = _hook(track, path)
    bar = 3 * 60 / 100
    assert (out.loop_start_s - 0.3) / bar == pytest.approx(round((out.loop_start_s - 0.3) / bar))
    bars = (out.loop_end_s - out.loop_start_s) / bar
    assert bars == pytest.approx(round(bars), abs=1e-4) and 4 <= round(bars) <= 6


def test_a_file_of_whole_bars_loops_at_its_end(tmp_path):
    x = drum_loop(128, 4 * 4 * 60 / 128)  # exactly four bars
    out = _hook(_track(bpm=128.0), _wav(tmp_path, x))
    assert out.loop_end_s == pytest.approx(x.shape[0] / SR, abs=1e-6)
    assert out.extra["seam_ok"] is True


def test_without_a_tempo_the_whole_file_loops_crossfaded_and_says_so(tmp_path):
    out = _run(_track(), _wav(tmp_path, tone(220, 2.5)))
    track = out.track
    assert track.loop_start_s == 0.0 and track.loop_end_s == pytest.approx(out.duration_s)
    assert out.duration_s < 2.5  # the tail went into the crossfade at the start
    assert "no steady beat" in track.extra["loop"]["fallback"]


def _phrase_song(bars: int = 10, accent: int = 3) -> np.ndarray:
    """A song of four-bar phrases at 120 BPM (2 s bars; chords A, F#, D, E, each beat
    struck), the phrase's ``accent``-th bar struck hard on its downbeat; a one-bar swell
    in and a fade over its last bar and a half."""
    bar, beat = 2.0, 0.5
    n = round(bars * bar * SR)
    x = np.zeros(n)
    hit = round(0.03 * SR)
    click = np.random.default_rng(7).standard_normal(hit) * np.exp(-np.arange(hit) / (0.004 * SR))
    for b in range(bars):
        a, e = round(b * bar * SR), round((b + 1) * bar * SR)
        t = np.arange(e - a) / SR
        f = (220.0, 185.0, 146.8, 164.8)[b % 4]
        envelope = 0.5 + 0.5 * np.exp(-(t % beat) / 0.15)
        x[a:e] += 0.1 * envelope * sum(np.sin(2 * np.pi * f * r * t) for r in (1, 1.25, 1.5))
        if b % 4 == accent:
            x[a : a + hit] += 0.6 * click
    swell, fade = round(bar * SR), round(1.5 * bar * SR)
    x[:swell] *= np.linspace(0.2, 1.0, swell)
    x[-fade:] *= np.cos(np.linspace(0.0, np.pi / 2, fade)) ** 2
    return np.stack([x, x], axis=1).astype(np.float32)


def test_a_loop_starting_on_the_phrase_accent_gives_way_to_one_as_good(tmp_path):
    """The best loop by musical distance starts on the phrase's struck downbeat, where its
    seam stands out against the loop's other bar lines; the loop a bar earlier repeats the
    song as well, and is carved, not the whole song (the fal emulator's song for "Gentle
    harp and flute" looped whole so)."""
    x = _wav(tmp_path, _phrase_song())
    rhythm = analysis.grid(120.0, 0.0, 4, x.shape[0] / SR)
    best = carving.carve(x, SR, rhythm)
    assert not seams.measure_seam(best.samples, SR, best.loop_start, best.loop_end, 2.0)["ok"]
    out = _run(_track(bpm=120.0, first_beat_s=0.0, beats_per_bar=4), x)
    track = out.track
    assert "fallback" not in track.extra["loop"], track.extra["loop"]
    assert track.extra["seam_ok"] is True
    assert track.loop_start_s > 0 and track.extra["loop"]["bars"] == 4
    carved = carving.carve_checked(x, SR, rhythm)
    report = loop_report(carved, SR, rhythm)
    assert report.ok, (report.problems, report.seam)


def test_generator_loop_points_are_kept(tmp_path):
    track = _track(bpm=120.0, loop_start_s=0.5, loop_end_s=4.5)
    out = _hook(track, _wav(tmp_path, drum_loop(120, 6.0)))
    assert (out.loop_start_s, out.loop_end_s) == (0.5, 4.5)


def test_stinger_plays_to_its_end_trimmed_and_faded(tmp_path):
    track = _track(loop=False, bpm=120.0)
    x = np.concatenate([np.zeros((SR // 2, 2), np.float32), tone(440, 3.2)])
    out = _run(track, _wav(tmp_path, x))
    assert out.track.loop_end_s == pytest.approx(3.2, abs=0.01)  # leading silence trimmed
    assert out.duration_s == pytest.approx(3.2, abs=0.01)
    assert np.abs(out.samples[-1]).max() < 1e-3  # a fade, not a cut
    assert "seam_ok" not in out.track.extra


def test_seam_of_a_seamless_loop_is_ok_and_a_clicking_one_is_not(tmp_path):
    whole = tone(441, 2.0)  # 882 whole cycles: seamless
    cut = tone(443.3, 2.0)  # ends mid-cycle: a click at the jump back
    ok = _hook(_track(loop_end_s=2.0), _wav(tmp_path, whole, "a.wav"))
    bad = _hook(_track(loop_end_s=2.0), _wav(tmp_path, cut, "b.wav"))
    assert ok.extra["seam_ok"] is True
    assert bad.extra["seam_ok"] is False
    assert bad.extra["seam"]["jump"] > 5 * bad.extra["seam"]["jump_limit"]


def test_seam_with_a_gap_is_not_ok():
    x = drum_loop(120, 4.0)
    x[-int(0.08 * SR) :] = 0.0  # 80 ms of silence before the jump back
    seam = seams.measure_seam(x, SR, 0, x.shape[0], bar_s=2.0)
    assert not seam["ok"]


# --- the three plugins together, in pluggy's order -------------------------------------------


def test_hook_order_is_beat_grid_then_loop_points_then_loudness(tmp_path):
    seen: dict[str, object] = {}

    class Recorder:
        """A third-party plugin at default priority: runs between the built-ins."""

        @hookimpl
        def segue_process_track(self, audio):
            seen["bpm"] = audio.track.bpm
            seen["lufs"] = core_audio.loudness(audio.samples, audio.rate)

    plugins = Plugins(load_entry_points=False, extra=[("recorder", Recorder())])
    order = [
        impl.plugin_name for impl in reversed(plugins.pm.hook.segue_process_track.get_hookimpls())
    ]
    ours = [n for n in order if n.rsplit(".", 1)[-1] in ("beat_grid", "loop_points", "loudness")]
    assert [n.rsplit(".", 1)[-1] for n in ours] == ["beat_grid", "loop_points", "loudness"]
    assert order[-1] == "segue.plugins.loudness"  # loudness right before encoding

    # 10.5 s of drums at 105 BPM, too quiet, tempo unknown to the "generator".
    x = 0.1 * drum_loop(105, 10.5, seed=2)
    samples = _wav(tmp_path, x)
    raw = audio.loudness(x, SR)
    track = _track(duration_s=10.5, extra={"loudness_target": -18.0})
    done = plugins.process_track(TrackAudio(samples, SR, track))
    out = done.track
    # beat_grid ran before the recorder and loop_points: the bpm was known to both.
    assert seen["bpm"] == pytest.approx(105, rel=0.015)
    assert out.bpm == pytest.approx(105, rel=0.015)
    bar = 4 * 60 / out.bpm
    assert out.loop_end_s == pytest.approx(out.loop_start_s + 4 * bar, abs=1e-3)
    # loudness ran after the recorder: it saw the audio as generated.
    assert seen["lufs"] == pytest.approx(raw, abs=0.01)
    assert out.loudness_lufs == pytest.approx(-18.0, abs=0.5)
    decoded_path = tmp_path / "final.ogg"
    audio.write(decoded_path, done.samples, done.rate, "ogg", loop=True)
    decoded, sr = audio.read(decoded_path)
    assert decoded.shape[0] == x.shape[0]
    assert audio.loudness(decoded, sr) == pytest.approx(-18.0, abs=0.5)
    assert audio.true_peak_db(decoded, sr) <= -1.0


@pytest.mark.parametrize("q", [99.9, 99.0, 99.99, 50.0])
def test_upper_percentile_is_numpys(q):
    rng = np.random.default_rng(5)
    n = 300_001
    signals = [
        np.abs(rng.standard_normal(n)).astype(np.float32),  # sample steps of a signal
        rng.exponential(size=n),
        rng.integers(0, 40, n).astype(np.float32),  # many ties
        np.where(rng.random(n) < 0.002, rng.random(n), 0.0),  # nearly all zero
        np.zeros(1000),  # short: numpy's own
    ]
    for x in signals:
        assert seams.upper_percentile(x, q) == pytest.approx(np.percentile(x, q), rel=1e-6)


def test_segue_tracks_names_every_whole_song_loop_and_bad_seam(tmp_path):
    from segue.core.commands.tracks import notes

    out = _run(_track(id="abc123", mood="calm"), _wav(tmp_path, tone(220, 2.5)))
    lines = notes([out.track.to_dict()])
    assert any(
        line.startswith("calm #0 (abc123): whole-song loop: no steady beat") for line in lines
    )
    bad = _hook(_track(loop_end_s=2.0), _wav(tmp_path, tone(443.3, 2.0), "b.wav"))
    assert any("seam stands out" in line for line in notes([bad.to_dict()]))
