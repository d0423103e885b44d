"""The synth's music, decoded and measured as a listener would (tests/audio_measure.py)."""

from __future__ import annotations

from pathlib import Path

import audio_measure as am
import numpy as np
import pytest
import soundfile as sf

from segue.core.request import GenerationRequest
from segue.plugins.synth import SynthGenerator
from segue.plugins.synth.words import parse_key

PROMPTS = [
    "Gentle harp and flute over warm strings, wandering and curious",
    "Driving orchestral battle music with taiko drums and brass stabs",
    "Low string ostinato and distant drums, uneasy and watchful",
    "Synthwave night drive with arpeggios",
    "Calm peaceful ambient pads",
    "Playful whimsical marimba and pizzicato",
    "Lo-fi hip hop, dusty keys",
    "Chiptune adventure",
    "Sad melancholic piano and strings",
]


async def render(tmp_path: Path, **fields) -> tuple:
    fields.setdefault("mood", "m")
    fields.setdefault("variant", 0)
    fields.setdefault("prompt", "")
    request = GenerationRequest(**fields)
    gen = SynthGenerator({}, tmp_path)
    out = await gen.generate(request, tmp_path / request.cache_key[:12])
    x, sr = sf.read(out.path, dtype="float64")
    return out, x, sr


def bars_s(bpm: float, bars: int = 8, beats: int = 4) -> float:
    return bars * beats * 60.0 / bpm


@pytest.mark.parametrize(
    ("bpm", "prompt"),
    [(bpm, PROMPTS[i % len(PROMPTS)]) for i, bpm in enumerate(range(60, 181, 15))],
)
async def test_tempo_is_heard_within_1_5_percent(tmp_path, bpm, prompt):
    out, x, sr = await render(tmp_path, prompt=prompt, bpm=float(bpm), duration_s=bars_s(bpm))
    assert out.bpm == bpm
    heard = am.tempo(x, sr)
    assert abs(heard - bpm) / bpm <= 0.015, f"{prompt!r} at {bpm} BPM sounds like {heard:.2f}"


async def _key_misses(tmp_path: Path, prompt_for) -> list[str]:  # type: ignore[no-untyped-def]
    """The 24 major and minor keys, 8 bars at 120 BPM each: the ones the chroma misreads."""
    names = am.PITCH_NAMES
    misses = []
    for i, tonic in enumerate(names):
        for mode in ("major", "minor"):
            prompt = prompt_for(i, mode)
            _, x, sr = await render(
                tmp_path, prompt=prompt, key=f"{tonic} {mode}", bpm=120.0, duration_s=bars_s(120)
            )
            pc, heard_mode = am.key(x, sr)
            if (pc, heard_mode) != (i, mode):
                misses.append(f"{tonic} {mode} heard as {names[pc]} {heard_mode} ({prompt})")
    return misses


async def test_chroma_key_matches_at_least_23_of_24_keys_across_prompts(tmp_path):
    misses = await _key_misses(
        tmp_path, lambda i, mode: PROMPTS[(2 * i + (mode == "minor")) % len(PROMPTS)]
    )
    assert len(misses) <= 1, misses


@pytest.mark.parametrize(
    "prompt",
    [
        "Driving orchestral battle music with taiko drums and brass stabs",
        "Chiptune adventure",
        "Calm peaceful ambient pads",
    ],
    ids=["orchestral", "chiptune", "ambient"],
)
async def test_chroma_key_matches_at_least_23_of_24_keys_in_one_style(tmp_path, prompt):
    """Relative and parallel major/minor keys are the usual confusions: the tonic, its
    triad and its third must be unmistakable in every style (bright pulse waves and
    plucked strings, whose partials add a major third, included)."""
    misses = await _key_misses(tmp_path, lambda i, mode: prompt)
    assert len(misses) <= 1, misses


@pytest.mark.parametrize("prompt", [PROMPTS[0], PROMPTS[1], PROMPTS[3], PROMPTS[4], PROMPTS[6]])
async def test_loop_seam_is_inaudible_and_never_silent(tmp_path, prompt):
    out, x, sr = await render(tmp_path, prompt=prompt, duration_s=20.0)
    assert out.loop is True and out.loop_start_s == 0.0
    assert len(x) / sr == pytest.approx(out.loop_end_s, abs=1e-9)
    bar = out.beats_per_bar * 60.0 / out.bpm
    bars = out.loop_end_s / bar
    assert abs(bars - round(bars)) * bar * sr < 1.0  # a whole number of bars, to the sample
    report = am.seam_report(x, sr, bar)
    assert report.jump <= report.jump_limit, report
    assert report.flux <= 1.25 * report.flux_limit, report
    assert report.level_step_db <= report.level_step_limit_db + 1.5, report
    assert am.longest_silence(x, sr) <= 0.05
    assert np.max(np.abs(x)) < 1.0


async def test_seam_report_flags_a_spliced_loop(tmp_path):
    """The seam measures can fail: a loop cut mid-bar, with a 20 ms hole, is caught."""
    out, x, sr = await render(tmp_path, prompt=PROMPTS[1], duration_s=12.0)
    bar = out.beats_per_bar * 60.0 / out.bpm
    # Cut just after the loudest sample near 63 % (a splice where the music is loud, so the
    # cut is not hidden by chance in a quiet moment), with a 25 ms hole just before it.
    lo, hi = int(len(x) * 0.55), int(len(x) * 0.7)
    pos = lo + int(np.argmax(np.abs(x[lo:hi]).max(axis=1))) + 1
    cut = x[:pos].copy()
    cut[-int(0.03 * sr) : -int(0.005 * sr)] = 0.0
    report = am.seam_report(cut, sr, bar)
    assert not report.ok
    assert am.longest_silence(cut, sr) > 0.015


async def test_calm_and_combat_differ_in_tempo_density_and_brightness(tmp_path):
    calm = await render(tmp_path, prompt="Calm, peaceful meadow with soft harp", duration_s=16.0)
    combat = await render(tmp_path, prompt="Epic combat, battle drums and brass", duration_s=16.0)
    (c_out, cx, sr), (b_out, bx, _) = calm, combat
    assert c_out.bpm < b_out.bpm - 30
    assert am.tempo(cx, sr) < am.tempo(bx, sr) - 30
    assert am.onset_rate(bx, sr) > 1.5 * am.onset_rate(cx, sr)
    assert am.spectral_centroid(bx, sr) > 1.2 * am.spectral_centroid(cx, sr)


async def test_variants_are_different_takes_in_the_same_tempo_and_key(tmp_path):
    fields = {"prompt": PROMPTS[1], "bpm": 132.0, "key": "E minor", "duration_s": 14.6}
    a_out, a, sr = await render(tmp_path, variant=0, **fields)
    b_out, b, _ = await render(tmp_path, variant=1, **fields)
    assert a_out.bpm == b_out.bpm == 132.0
    assert a_out.loop_end_s == b_out.loop_end_s
    for x in (a, b):
        assert abs(am.tempo(x, sr) - 132.0) / 132.0 <= 0.015
        assert am.key(x, sr) == (4, "minor")
    beat = 60.0 / 132.0
    sa, sb = am.chroma_sequence(a, sr, beat), am.chroma_sequence(b, sr, beat)
    rows = min(len(sa), len(sb))
    r = np.corrcoef(sa[:rows].ravel(), sb[:rows].ravel())[0, 1]
    assert r < 0.8, r


async def test_same_request_gives_identical_bytes(tmp_path):
    fields = {"prompt": PROMPTS[3], "duration_s": 6.0, "variant": 2}
    a, _, _ = await render(tmp_path / "a", **fields)
    b, _, _ = await render(tmp_path / "b", **fields)
    assert a.path.read_bytes() == b.path.read_bytes()
    c, _, _ = await render(tmp_path / "c", **{**fields, "variant": 3})
    assert c.path.read_bytes() != a.path.read_bytes()


async def test_stinger_is_a_one_shot_that_decays_to_silence(tmp_path):
    out, x, sr = await render(
        tmp_path, prompt="Triumphant brass fanfare", duration_s=5.0, stinger=True
    )
    assert out.loop is False and out.loop_end_s is None
    assert len(x) == round(5.0 * sr)
    loudest = am.rms_db(x[: int(2 * sr)])
    assert loudest > -30
    assert am.rms_db(x[-int(0.05 * sr) :]) < -80
    assert np.max(np.abs(x[-10:])) < 1e-6
    # it starts at once: sound within the first 50 ms
    assert am.rms_db(x[: int(0.05 * sr)]) > -50


async def test_plan_sections_are_heard_as_sections(tmp_path):
    plan = {
        "positive_global_styles": ["orchestral"],
        "negative_global_styles": [],
        "sections": [
            {
                "section_name": "Intro",
                "positive_local_styles": ["calm", "sparse", "harp"],
                "negative_local_styles": ["drums"],
                "duration_ms": 8000,
                "lines": [],
            },
            {
                "section_name": "Battle",
                "positive_local_styles": ["epic battle", "taiko"],
                "negative_local_styles": [],
                "duration_ms": 8000,
                "lines": [],
            },
        ],
    }
    out, x, sr = await render(
        tmp_path, prompt="", composition_plan=plan, bpm=120.0, duration_s=16.0
    )
    sections = out.extra["sections"]
    assert [s["bars"] for s in sections] == [4, 4]
    half = len(x) // 2
    intro, battle = x[:half], x[half:]
    onsets = am.onset_times(x, sr)  # one threshold for the whole track
    in_intro = np.sum(onsets < half / sr)
    assert len(onsets) - in_intro > 1.3 * in_intro
    assert am.rms_db(battle) > am.rms_db(intro) + 2
    assert am.spectral_centroid(battle, sr) > am.spectral_centroid(intro, sr)


@pytest.mark.parametrize(
    ("duration", "bpm", "bars"), [(60.0, 84.0, 21), (10.0, 120.0, 5), (1.0, 120.0, 1)]
)
async def test_loop_length_is_the_nearest_whole_number_of_bars(tmp_path, duration, bpm, bars):
    out, x, sr = await render(tmp_path, prompt="calm", bpm=bpm, duration_s=duration)
    assert out.extra["bars"] == bars
    assert len(x) == round(bars * 4 * 60.0 / bpm * sr)


def test_the_24_keys_read_back():
    assert parse_key("F# minor").tonic == 6


def test_every_progression_keeps_to_its_modes_scale():
    # A mode's chords are its own (a phrygian bIII is major, a locrian bV major): a chord
    # with a note outside the scale is heard as another key. A minor key's (natural or
    # harmonic) has both sevenths, the leading tone in V; a tense one the Neapolitan bII.
    from segue.plugins.synth.harmony import PROGRESSIONS, chord, progression_pool
    from segue.plugins.synth.words import MODES, Key, Traits

    for mode, scale in MODES.items():
        allowed = set(scale)
        if mode in {"minor", "harmonic minor"}:
            allowed |= {10, 11}
        for energy, tension in ((0.2, 0.2), (0.5, 0.2), (0.9, 0.2), (0.5, 0.9)):
            traits = Traits(energy=energy, tension=tension)
            for prog in progression_pool(Key(0, mode), traits):
                for numeral in prog.split():
                    outside = [t for t in chord(numeral).tones if t not in allowed]
                    if tension > 0.7 and numeral == "bII":
                        outside = [t for t in outside if t != 1]
                    assert not outside, (mode, prog, numeral, outside)
    assert PROGRESSIONS["phrygian"] and PROGRESSIONS["locrian"]
