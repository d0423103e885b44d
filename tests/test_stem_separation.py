"""Stems for songs from generators without them: `segue pregen --generator fal` against
`segue fal-emulator`, which answers fal-ai/demucs too (docs/pregeneration.md, "Stems")."""

from __future__ import annotations

import json

import aiohttp
import numpy as np
import pytest
import server_support
import soundfile as sf
from server_support import serve
from test_fal_cli import segue, start_emulator
from test_layers_stems import residual_db

from segue.core import audio
from segue.core.client import CueMessage, SegueClient
from segue.core.score import load_score
from segue.plugins.fal import band_split
from segue.plugins.fal.separator import _data_uri, assign, layer_problem

pytestmark = pytest.mark.timeout(300)

SCORE = """\
segue: 1
title: Siege
generator: {name: fal, poll_interval_s: 0.1}
budget_usd: 5
defaults: {duration_s: 8, format: ogg}
intensity: {key: threat, slew_per_s: 2.0}
moods:
  siege:
    prompt: Furious orchestral battle music, 120 BPM
    layers:
      bass: {}
      harmony: {}
      drums: {from: 0.4}
      melody: {from: 0.7}
rules:
  - {mood: siege}
"""
LAYERS = {"bass", "harmony", "drums", "melody"}


def decoded(folder, name):
    samples, rate = sf.read(str(folder / ".segue" / "tracks" / name), dtype="float32")
    return samples, rate


async def test_pregen_separates_a_fal_song_into_the_moods_layers(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(SCORE)
    for emulator in start_emulator(tmp_path, "--latency", "0.1"):
        plan = json.loads(segue(tmp_path, emulator, "plan", "--json").stdout)
        (request,) = plan["requests"]
        # 8 s: one whole minute of Eleven Music, and 8 s of demucs at $0.0007/s.
        assert request["separation_usd"] == pytest.approx(0.0056)
        assert request["cost_usd"] == pytest.approx(0.8056)
        table = segue(tmp_path, emulator, "plan").stdout
        assert "(+$0.0056 stems)" in table

        run = segue(tmp_path, emulator, "pregen")
        assert run.returncode == 0, run.stderr
        assert "separating" in run.stderr and "1 generated" in run.stderr
        stats = emulator.stats()
        assert stats["separations"] == {"synth": 1}  # it knew its own song
        listed = json.loads(segue(tmp_path, emulator, "tracks", "--json").stdout)
    (track,) = listed["tracks"]
    assert set(track["stems"]) == LAYERS
    assert track["extra"]["separation"]["stems"]["guitar"] == "harmony"
    # The ledger names the separation's endpoint; against the emulator it is test money.
    entries = {e["endpoint"].split("/", 1)[1]: e for e in listed["ledger"]["entries"]}
    assert entries["fal-ai/demucs"]["generator"] == "demucs"
    assert entries["fal-ai/demucs"]["usd"] == pytest.approx(0.0056)
    assert not entries["fal-ai/demucs"]["production"]

    mix, rate = decoded(tmp_path, f"{track['id']}.ogg")
    stems = {n: decoded(tmp_path, s["file"])[0] for n, s in track["stems"].items()}
    # Cut and crossfaded into a loop like the mix (same frames, same edit): they still sum.
    assert track["extra"]["loop"]["carved"] and len(mix) / rate < 8.0
    assert all(s.shape == mix.shape for s in stems.values())
    assert all(float(np.sqrt(np.mean(s**2))) > 1e-3 for s in stems.values())
    assert residual_db(mix, list(stems.values())) >= 30.0

    async with (
        serve(tmp_path, SCORE, pregen=False) as live,
        SegueClient(live.ws, session="s") as client,
        aiohttp.ClientSession() as http,
    ):
        cue = await client.next_cue(10)
        assert isinstance(cue, CueMessage)
        assert set(cue.track.stems) == LAYERS
        assert cue.track.loop_end_s == pytest.approx(track["loop_end_s"])
        async with http.get(live.http + cue.track.stems["drums"]["url"]) as r:
            assert r.status == 200
            drums, _ = audio.decode(await r.read(), "drums")
        assert drums.shape == mix.shape


def test_a_failed_separation_keeps_the_song_and_the_next_run_separates_it(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(SCORE)
    # The first separation fails for good; the retry of the second is refused once (503).
    fault = "run_error:nth=2,status=422,error_type=validation_error,detail=bad audio;503:nth=3"
    for emulator in start_emulator(tmp_path, "--latency", "0.1", "--faults", fault):
        first = segue(tmp_path, emulator, "pregen")
        assert first.returncode == 1
        (line,) = [x for x in first.stderr.splitlines() if x.startswith("pregen: failed")]
        assert "stem separation (demucs fal-ai/demucs)" in line and "HTTP 422" in line
        assert "bad audio" in line and "the song is kept" in line
        assert "Traceback" not in first.stderr
        second = segue(tmp_path, emulator, "pregen", "--retry-base-s", "0.01")
        assert second.returncode == 0, second.stderr
        assert "1 to generate (estimated $0.01)" in second.stderr  # the separation only
        assert "separating demucs fal-ai/demucs attempt 2" in second.stderr
        # The song was not generated again: one music submit, three demucs submits.
        assert emulator.stats()["requests"]["submit"] == 4
        listed = json.loads(segue(tmp_path, emulator, "tracks", "--json").stdout)
    (track,) = listed["tracks"]
    assert set(track["stems"]) == LAYERS
    music = [e for e in listed["ledger"]["entries"] if e["generator"] == "fal"]
    assert len(music) == 1 and music[0]["usd"] == pytest.approx(0.80)


def test_other_audio_gets_a_band_split_that_still_sums_to_the_mix(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(SCORE)
    for emulator in start_emulator(tmp_path, "--latency", "0.1", "--no-synth"):
        run = segue(tmp_path, emulator, "pregen")
        assert run.returncode == 0, run.stderr
        assert emulator.stats()["separations"] == {"band split": 1}
        listed = json.loads(segue(tmp_path, emulator, "tracks", "--json").stdout)
    (track,) = listed["tracks"]
    mix, _ = decoded(tmp_path, f"{track['id']}.ogg")
    stems = {n: decoded(tmp_path, s["file"])[0] for n, s in track["stems"].items()}
    assert set(stems) == LAYERS and all(s.shape == mix.shape for s in stems.values())
    assert residual_db(mix, list(stems.values())) >= 30.0


def test_a_layer_demucs_cannot_give_is_a_score_error_at_its_line(tmp_path):
    text = SCORE.replace("      melody: {from: 0.7}", "      drum: {from: 0.7}")
    (tmp_path / "adaptive_score.yaml").write_text(text)
    for emulator in start_emulator(tmp_path, "--latency", "0.1"):
        run = segue(tmp_path, emulator, "plan")
        assert run.returncode == 2
        line = text.splitlines().index("      drum: {from: 0.7}") + 1
        assert run.stderr.strip().splitlines() == [
            f"segue: adaptive_score.yaml:{line}: moods.siege.layers.drum: stem separation "
            "(demucs) cannot give a layer named 'drum' (did you mean 'drums'?): name "
            "layers after vocals, vocal, voice, melody, drums, percussion, bass, guitar, "
            "harmony, piano, keys, other (docs/score.md), or use the synth generator"
        ]
        assert "submit" not in emulator.stats()["requests"]


def test_layer_assignment_rules():
    six = ("vocals", "drums", "bass", "other", "guitar", "piano")
    assert assign(six, ("bass", "harmony", "drums", "melody")) == {
        "vocals": "melody",
        "drums": "drums",
        "bass": "bass",
        "other": "melody",
        "guitar": "harmony",
        "piano": "harmony",
    }
    # Stems no layer is named for go to the first layer: the stems still sum to the song.
    assert assign(six, ("drums", "other"))["bass"] == "drums"
    # A 4-stem model has nothing for "harmony" once "melody" takes "other".
    problem = layer_problem("htdemucs", ("bass", "harmony", "drums", "melody"))
    assert problem is not None and problem.layer == "harmony"
    assert layer_problem("htdemucs", ("bass", "harmony", "drums")) is None


def test_the_band_split_sums_to_its_input():
    rng = np.random.default_rng(1)
    t = np.arange(44100) / 44100
    low = 0.3 * np.sin(2 * np.pi * 80 * t)
    tone = 0.2 * np.sin(2 * np.pi * 660 * t)
    clicks = np.zeros_like(t)
    clicks[::11025] = 0.8
    mono = low + tone + clicks + 0.001 * rng.standard_normal(44100)
    x = np.stack([mono, mono], axis=1).astype(np.float32)
    stems = ("vocals", "drums", "bass", "other", "guitar", "piano")
    parts = band_split.band_split(x, 44100, stems)
    assert set(parts) == set(stems)
    assert residual_db(x, list(parts.values())) >= 60.0

    def share(stem: str, signal: np.ndarray) -> float:
        """How much of ``signal`` the stem holds (its projection onto it)."""
        return float(np.dot(parts[stem][:, 0], signal) / np.dot(signal, signal))

    # The low tone is bass, the steady tone is harmonic (piano, under 2 kHz), the clicks
    # are drums; no voice is found.
    assert share("bass", low) > 0.9
    assert share("piano", tone) > 0.8 and share("drums", tone) < 0.2
    assert share("drums", clicks) > 0.5 and share("piano", clicks) < 0.2
    assert not np.any(parts["vocals"])


def test_separator_none_and_the_synth_need_no_separation(tmp_path, monkeypatch, caplog):
    from segue.core.plugins import get_plugins
    from segue.core.pregen.planning import make_generator, make_separator

    path = tmp_path / "adaptive_score.yaml"
    path.write_text(SCORE)
    score = load_score(path)
    plugins = get_plugins()
    monkeypatch.delenv("FAL_KEY", raising=False)
    # Without FAL_KEY the fal generator cannot work either: the plan still shows the cost.
    assert make_separator(score, plugins, make_generator(score, plugins)).name == "demucs"
    # A generator that works without it (any but fal) goes without separation, said once.
    tone = SCORE.replace("generator: {name: fal, poll_interval_s: 0.1}", "generator: tone")
    path.write_text(tone)
    tone_score = load_score(path)
    tone_plugins = server_support.plugins()
    assert (
        make_separator(tone_score, tone_plugins, make_generator(tone_score, tone_plugins)) is None
    )
    assert "FAL_KEY is not set" in caplog.text and "separator: none" in caplog.text
    monkeypatch.setenv("FAL_KEY", "k")
    generator = make_generator(tone_score, tone_plugins)
    assert make_separator(tone_score, tone_plugins, generator).name == "demucs"
    assert make_separator(score, plugins, make_generator(score, plugins, "synth")) is None
    path.write_text(SCORE.replace("budget_usd: 5", "budget_usd: 5\nseparator: none"))
    score = load_score(path)
    assert make_separator(score, plugins, make_generator(score, plugins)) is None


def test_a_wav_song_is_sent_as_flac_losslessly(tmp_path):
    import base64

    t = np.arange(4410) / 44100
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None].repeat(2, axis=1)
    path = tmp_path / "song.wav"
    sf.write(str(path), x, 44100, subtype="PCM_16")
    uri = _data_uri(path)
    head, _, payload = uri.partition(",")
    assert head == "data:audio/flac;base64"
    sent, rate = audio.decode(base64.b64decode(payload))
    assert rate == 44100 and np.array_equal(sent, sf.read(str(path), dtype="float32")[0])
