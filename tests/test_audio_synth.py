"""The post-processing chain on the synth's own output, decoded and measured."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from segue.core import audio
from segue.core.audio import TrackAudio
from segue.core.plugins import Plugins
from segue.core.pregen.finishing import first_track
from segue.core.pregen.planning import PlannedRequest
from segue.core.request import GenerationRequest
from segue.core.track import Track

synth = pytest.importorskip("segue.plugins.synth")


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return Plugins(load_entry_points=False)


async def _generate(tmp_path: Path, request: GenerationRequest):
    generator = synth.SynthGenerator({}, tmp_path)
    return await generator.generate(request, tmp_path)


def _track(request: GenerationRequest, gen, frames: int, sr: int) -> Track:
    """The Track the pipeline builds from a request and what the generator reported."""
    generator = SimpleNamespace(name="synth", model="")
    return first_track(PlannedRequest(request, 0.0), gen, generator, frames / sr)


@pytest.mark.parametrize(
    ("prompt", "bpm", "fmt", "target"),
    [
        ("Driving orchestral battle music with taiko drums and brass stabs", 140.0, "ogg", -16.0),
        ("Gentle harp and flute over warm strings, wandering and curious", 84.0, "opus", -23.0),
        ("Low string ostinato and distant drums, uneasy and watchful", 100.0, "mp3", -16.0),
    ],
)
async def test_synth_track_through_the_chain(tmp_path, plugins, prompt, bpm, fmt, target):
    request = GenerationRequest(
        mood="m",
        variant=0,
        prompt=prompt,
        duration_s=8.0,
        bpm=bpm,
        output_format=fmt,
        params={"loudness_lufs": target},
    )
    gen = await _generate(tmp_path, request)
    samples, sr = audio.read(gen.path)
    done = plugins.process_track(
        TrackAudio(samples, sr, _track(request, gen, samples.shape[0], sr))
    )
    track = done.track

    # Beat grid: the synth's tempo is the requested one, and the audio agrees.
    assert track.bpm == pytest.approx(bpm)
    assert "tempo_warning" not in track.extra, track.extra.get("tempo_warning")
    # Loop points: the synth's loop is the whole file, bar-aligned.
    assert track.loop and track.loop_end_s == pytest.approx(samples.shape[0] / sr, abs=1e-3)
    assert track.extra["seam"]["jump"] <= track.extra["seam"]["jump_limit"] * 1.01 + 1e-5

    out = tmp_path / f"final.{fmt}"
    audio.write(out, done.samples, done.rate, fmt, loop=True)
    decoded, dsr = audio.read(out)
    assert audio.loudness(decoded, dsr) == pytest.approx(target, abs=0.5)
    assert audio.true_peak_db(decoded, dsr) <= -1.0
    if fmt == "ogg":
        assert decoded.shape[0] == samples.shape[0]


async def test_synth_stinger_plays_to_its_end(tmp_path, plugins):
    request = GenerationRequest(
        mood="victory", variant=0, prompt="Triumphant brass fanfare", duration_s=4.0,
        stinger=True, params={"loudness_lufs": -16.0},
    )  # fmt: skip
    gen = await _generate(tmp_path, request)
    samples, sr = audio.read(gen.path)
    done = plugins.process_track(
        TrackAudio(samples, sr, _track(request, gen, samples.shape[0], sr))
    )
    track = done.track
    assert track.loop is False
    # To its end: the processed file's, whose trailing near-silence (under -60 dB from the
    # peak) is trimmed, as for every stinger.
    assert track.loop_end_s == pytest.approx(done.samples.shape[0] / sr, abs=1e-3)
    assert samples.shape[0] / sr - 0.2 <= track.loop_end_s <= samples.shape[0] / sr
    assert track.loudness_lufs == pytest.approx(-16.0, abs=0.5)
