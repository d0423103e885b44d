"""The synth's sampled instruments, mix, dynamics and variety, measured on rendered audio.

Short loops (12-24 s) of several prompts (action, calm, folk under a score-wide style,
electronic, a plan with a crescendo), rendered with the SoundFont the generator finds
(Debian's when installed, else pretty_midi's TimGM6mb.sf2) and measured like a listener's
tools would: bass correlation, mono-sum loss, median-filter HPSS, loudness range,
beat-synchronous chroma and onset patterns (``audio_measure``).
"""

from __future__ import annotations

from pathlib import Path

import audio_measure as am
import numpy as np
import pytest
import soundfile as sf
import synth_prompts
from synth_prompts import plan_section

from segue.core.audio import decode, encode
from segue.core.errors import ConfigError
from segue.core.request import GenerationRequest
from segue.plugins.synth import SynthGenerator
from segue.plugins.synth.composer import compose
from segue.plugins.synth.drums import make_sound
from segue.plugins.synth.render import render_request, render_request_stems
from segue.plugins.synth.sampled import Sampled
from segue.plugins.synth.soundfont import SoundFont, bundled_soundfont, find_soundfont

SR = 44100
# The 4/4 prompts (the others' meters and variants: test_synth_variants.py).
PROMPTS = {name: synth_prompts.PROMPTS[name] for name in ("action", "calm", "folk", "electronic")}
ACTION = PROMPTS["action"]
PLAN = {
    "positive_global_styles": ["epic orchestral"],
    "negative_global_styles": [],
    "sections": [
        {
            "section_name": "Quiet intro",
            "positive_local_styles": ["sparse"],
            "negative_local_styles": [],
            "duration_ms": 8000,
            "lines": [],
        },
        {
            "section_name": "Climax",
            "positive_local_styles": ["full orchestra, tutti"],
            "negative_local_styles": [],
            "duration_ms": 16000,
            "lines": [],
        },
    ],
}


def render(prompt: str, seconds: float = 16.0, variant: int = 0, **fields):
    req = GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=seconds, **fields)
    arr, x = render_request(req, SR)
    return arr, x.astype(np.float64)


@pytest.fixture(scope="module")
def tracks() -> dict[str, tuple]:
    return {name: render(prompt) for name, prompt in PROMPTS.items()}


def test_a_soundfont_is_found_and_parsed() -> None:
    path = find_soundfont()
    assert path is not None, "install pretty_midi (a dependency) or a Debian GM SoundFont"
    sf = SoundFont(path)
    for program in (0, 42, 48, 61, 73):
        assert sf.preset(0, program) is not None, program
    assert sf.preset(128, 0) is not None  # the General MIDI drum kit


def test_the_bundled_soundfont_is_general_midi() -> None:
    path = bundled_soundfont()
    assert path is not None and path.name == "TimGM6mb.sf2"
    sf = SoundFont(path)
    assert len(sf.presets) >= 128


def test_sampled_and_numpy_voices_differ_and_the_soundfont_is_in_the_cache_key(
    tmp_path: Path,
) -> None:
    req = GenerationRequest(mood="m", variant=0, prompt=ACTION, duration_s=6.0)
    _, sampled = render_request(req, SR, find_soundfont())
    _, numpy_only = render_request(req, SR, None)
    assert sampled.shape == numpy_only.shape
    assert not np.allclose(sampled, numpy_only, atol=1e-3)
    with_sf = SynthGenerator({}, tmp_path).audio_params()
    without = SynthGenerator({"soundfont": "none"}, tmp_path).audio_params()
    assert with_sf["soundfont"].startswith(find_soundfont().name + ":")
    assert without["soundfont"] == "none"
    other = SynthGenerator({"soundfont": str(bundled_soundfont())}, tmp_path).audio_params()
    assert other["soundfont"] != with_sf["soundfont"] or find_soundfont() == bundled_soundfont()


def test_a_bad_soundfont_option_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        SynthGenerator({"soundfont": "missing.sf2"}, tmp_path / ".segue")
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    with pytest.raises(ConfigError, match="not a SoundFont"):
        SynthGenerator({"soundfont": str(bad)}, tmp_path)


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_bass_is_mono_and_the_mix_survives_a_mono_sum(tracks, name: str) -> None:
    _, x = tracks[name]
    assert am.bass_correlation(x, SR) >= 0.9
    assert am.mono_loss_lu(x, SR) <= 1.0


# A violin soloist's bright bowed top and its reverb are mostly side: "a solo violin in the
# dusty attic" and "a tender duet for violin and harp" lost 0.94-1.06 LU in a mono sum with
# the side kept to 0.15 of the middle's energy (a K-weighted loudness hears the top).
VIOLINS = {
    "attic": ("A solo violin in the dusty attic, bittersweet", 72.0, 0),
    "fountain": ("A tender duet for violin and harp by the palace fountain", None, 1),
}


@pytest.mark.parametrize("name", sorted(VIOLINS))
def test_a_violin_soloist_survives_a_mono_sum(name: str) -> None:
    prompt, bpm, variant = VIOLINS[name]
    req = GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=60.0, bpm=bpm)
    _, x = render_request(req, SR)
    assert am.mono_loss_lu(x.astype(np.float64), SR) <= 0.95  # (room for the Ogg encoder)


# A sampled piano's low end (its thump, 70-150 Hz, the two channels of its sample unlike),
# panned as a waltz's arpeggio, put the bass at 0.92-0.95 left/right correlation.
PIANO_WALTZES = {
    "rose garden": ("A wistful waltz in the rose garden, clarinet and violins", 86.0),
    "old piano": ("A sad waltz at the old piano, clarinet and cello", 80.0),
}


@pytest.mark.parametrize("name", sorted(PIANO_WALTZES))
def test_the_bass_is_mono_under_a_panned_sampled_piano(name: str) -> None:
    prompt, bpm = PIANO_WALTZES[name]
    req = GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=30.0, bpm=bpm)
    _, x = render_request(req, SR)
    assert am.bass_correlation(decoded(x), SR) >= 0.95  # the "mono below 150 Hz"


# A lone player's one chord part (a harp under a bugle, a harp alone) is panned and has no
# bass line: the track's 20-150 Hz band held -30 dB, most of it the harp's low notes at
# 150-200 Hz, where a fourth-order side high-pass at 200 Hz left their side -10 dB, and a
# band-pass's ringing from the loop's first samples (its side 0.1 of full scale): 0.79-0.89
# through a band-pass run over the file.
LONE_BASS = {
    "bugle": ("A lone bugle call over the frozen camp at dawn", 1),
    "harp": ("A lone harp in the elven library, gentle", 2),
}


@pytest.mark.parametrize("name", sorted(LONE_BASS))
def test_a_lone_players_bass_is_mono_through_a_band_pass(name: str) -> None:
    prompt, variant = LONE_BASS[name]
    req = GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=30.0, bpm=80.0)
    _, x = render_request(req, SR)
    y = decoded(x)
    assert am.filtered_bass_correlation(y, SR) >= 0.95  # the "mono below 150 Hz"
    assert am.bass_correlation(y, SR) >= 0.95


def test_drums_are_present_in_an_action_mood(tracks) -> None:
    _, x = tracks["action"]
    assert am.hpss_balance_db(x, SR) >= -10.0
    assert am.high_share(x, SR) >= 0.003  # cymbals, shakers, tambourine: some air


def decoded(x: np.ndarray) -> np.ndarray:
    """``x`` through the stored format and back (what a listener's tools measure)."""
    y, sr = decode(encode(x, SR, "ogg"), "track.ogg")
    assert sr == SR
    return y


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_an_action_moods_drums_are_within_9_db_of_the_orchestra(variant: int) -> None:
    """Percussive within 9 dB of harmonic energy (librosa's HPSS defaults, decoded Ogg;
    the issue asks about 10) on every take: the half-time take's fewer hits are heavier
    (it measured -9.4 dB at 16 s with FluidR3, -10.2 before the sampled kit's levels)."""
    _, x = render(ACTION, 16.0, variant)
    assert am.hpss_balance_db(decoded(x), SR) >= -9.0


# An action mood whose named trombones lead: a low voice's tune is mixed louder in a calm
# trio (``composer.LOW_TUNE``), not beside a battle's drums (a judged "leviathan ...
# thundering drums, blaring trombones" at 156 BPM had its drums 10.1-10.5 dB under the
# pitched parts on a plain install).
LEVIATHAN = (
    "The leviathan drags the galleon into the whirlpool, thundering drums, blaring trombones"
    " and slashing strings, 156 BPM, G# minor, instrumental, epic orchestral"
)


@pytest.mark.parametrize("variant", [1, 2])
def test_an_action_moods_trombone_tune_leaves_its_drums_in_front(variant: int) -> None:
    req = GenerationRequest(
        mood="m", variant=variant, prompt=LEVIATHAN, duration_s=30.0, layers=("melody",)
    )
    arr, x, stems = render_request_stems(req, SR, bundled_soundfont())
    assert [p.voice for p in arr.parts if p.role == "melody" and p.notes] == ["trombone"]
    assert am.hpss_balance_db(decoded(x.astype(np.float64)), SR) >= -9.0, "the drums"
    tune = am.loudness_lufs(stems["melody"], SR) - am.loudness_lufs(x, SR)
    assert tune >= -10.0, f"the trombone's tune {tune:.1f} LU"


def test_a_taiko_is_a_struck_skin_not_a_sine() -> None:
    """Two bars of low taiko hits, decoded: their percussive energy within 4 dB of their
    harmonic (the boom was a swept sine ringing 0.24 s under a quiet slap: 7.7 dB more
    harmonic, so the drums of an action mood read as low notes, not hits; now -1.5 dB)."""
    beat = round(SR * 60 / 136)
    x = np.zeros(8 * beat + SR)
    for k in range(8):
        hit = make_sound("taiko", SR, 0.7, k, 55.0)
        x[k * beat : k * beat + len(hit)] += hit
    stereo = np.stack([x, x], axis=1) * 0.5
    assert am.hpss_balance_db(decoded(stereo), SR) >= -4.0


@pytest.mark.parametrize("sound", ["frame_lo", "frame_hi"])
def test_a_frame_drum_is_a_struck_skin_not_a_sine(sound: str) -> None:
    """Two bars of frame drum hits at 129 BPM, decoded: percussive within 4 dB of harmonic
    energy (the low skin's boom rang 0.18 s under a quiet slap: 14.4 dB more harmonic, so a
    folk dance's drums read as low notes, not hits; now -3.3 dB, the slap +5.4)."""
    beat = round(SR * 60 / 129)
    x = np.zeros(8 * beat + SR)
    for k in range(8):
        hit = make_sound(sound, SR, 0.75, k, 110.0 if sound == "frame_lo" else 220.0)
        x[k * beat : k * beat + len(hit)] += hit
    stereo = np.stack([x, x], axis=1) * 0.5
    assert am.hpss_balance_db(decoded(stereo), SR) >= -4.0


FAIR = "Bright hilltop village fair with fiddle, accordion and flute, instrumental, epic orchestral"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("variant", [0, 1, 2, 3])
def test_a_plain_installs_folk_dance_has_its_frame_drums_and_air(variant: int) -> None:
    """A village fair under the score-wide style (frame drums at 129 BPM), as a plain install
    plays it (TimGM6mb), 30 s decoded: percussive within 10.5 dB of harmonic energy (was
    -11.8 to -14.1 dB, generator seeds 0-7: the frame drums' low boom a ringing note,
    their kit's shaker at the preset maker's level, 5 dB under the numpy one, and the
    drums no louder than a calm mood's) and at least 0.4 % of the energy above 8 kHz (was
    0.07-0.33 %)."""
    req = GenerationRequest(mood="m", variant=variant, prompt=FAIR, duration_s=30.0)
    arr, x = render_request(req, SR, bundled_soundfont())
    assert any(p.voice == "drum:frame_lo" for p in arr.parts)
    y = decoded(x.astype(np.float64))
    assert am.hpss_balance_db(y, SR) >= -10.5
    assert am.high_share(y, SR) >= 0.004


# Soft moods of each family (calm under the score-wide style and without it, a mode word, a
# lullaby, a waltz, a jig): their sampled strings, piano, pads and harp kept 0.00-0.04 % of
# their energy above 8 kHz, where game music on record keeps 0.08-0.82 %: heard as dull.
SOFT = {
    "calm orchestral": "Sleepy orchard at sundown, soft and slow, instrumental, epic orchestral",
    "calm piano": "Quiet attic on a rainy day, soft piano and warm pads, calm, instrumental",
    "mode word": "Dorian song of the lonely lighthouse, instrumental",
    "lullaby": "A drowsy lullaby for the little fox, celesta and harp, instrumental",
    "waltz": "A gentle waltz in the rose garden, strings and piano, instrumental",
    "jig": "A merry jig on the village green, fiddle and tin whistle, instrumental",
}


def band_energy(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and STFT energy per bin of ``y``'s two channels summed (each channel
    as heard: a mono sum drops the instruments' stereo top)."""
    spectra = [am._stft_mag(y[:, ch], SR, 2048, 1024) for ch in range(2)]
    return spectra[0][0], sum((mag**2).sum(axis=1) for _, mag in spectra)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(SOFT))
def test_a_soft_mood_has_air_without_hiss(name: str) -> None:
    """Decoded, at least 0.08 % of a soft mood's energy lies above 8 kHz (it was 0.00-0.04
    % on every take: ``effects.AIR_TARGET``), and its top falls as a record's does: no more
    power per hertz from 8 to 15 kHz than from 3 to 8 (a hiss lifted over the music)."""
    for variant in (0, 2):
        _, x = render(SOFT[name], 20.0, variant)
        f, e = band_energy(decoded(x))
        share = e[f >= 8000].sum() / e.sum()
        assert share >= 0.0008, f"v{variant}: {share:.3%} of the energy above 8 kHz"
        air, presence = e[(f >= 8000) & (f < 15000)].mean(), e[(f >= 3000) & (f < 8000)].mean()
        assert air <= presence, f"v{variant}: the top as loud per hertz as 3-8 kHz"


def test_a_small_soundfonts_dull_cymbals_give_way_to_the_numpy_ones() -> None:
    """pretty_midi's TimGM6mb (what a plain install plays) keeps almost nothing above 8 kHz
    in its crash, open hat, tambourine and snare (0-6 % of the numpy drum's share): those
    play the numpy drums; its hat and shaker have their air and stay sampled."""
    small = Sampled.open(bundled_soundfont(), SR)
    for sound in ("crash", "ohat", "tambourine", "snare"):
        assert small.drum(sound, 0.8) is None, sound
    for sound in ("shaker", "hat"):
        assert small.drum(sound, 0.8) is not None, sound


@pytest.mark.parametrize("path", ["bundled", "found"])
def test_a_kits_drums_are_as_loud_as_the_numpy_drums_the_mix_was_set_on(path: str) -> None:
    """A sampled hit's energy over its first 0.25 s is the numpy drum's (peak 1), not the
    preset maker's: TimGM6mb's and FluidR3's shakers were 5 dB under theirs, so the action
    moods' shaker was buried under the orchestra."""
    sampled = Sampled.open(bundled_soundfont() if path == "bundled" else find_soundfont(), SR)
    n = round(0.25 * SR)
    for sound in ("shaker", "hat", "clap", "woodblock"):
        hit = sampled.drum(sound, 1.0)
        if hit is None:
            continue
        mine = float(np.sum(hit.mean(axis=0)[:n].astype(np.float64) ** 2))
        ref = float(np.sum(make_sound(sound, SR, 1.0, 1)[:n].astype(np.float64) ** 2))
        # Within 1 dB (the shaker's gain is capped at +9 dB: TimGM6mb's needs about that).
        low = -2.0 if sound == "shaker" else -1.0
        assert low <= 10 * np.log10(mine / ref) <= 1.0, sound


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_a_plain_installs_action_mood_has_drums_and_air(variant: int) -> None:
    """What a plain ``pip install -e .`` plays (TimGM6mb), decoded: percussive within 9 dB
    of harmonic energy on every take (the half-time take measured -9.4 dB at 16 s) and at
    least 0.4 % of the energy above 8 kHz (was 0.2-0.3 %, the issue's "before" figure)."""
    req = GenerationRequest(mood="m", variant=variant, prompt=ACTION, duration_s=16.0)
    _, x = render_request(req, SR, bundled_soundfont())
    y = decoded(x.astype(np.float64))
    assert am.hpss_balance_db(y, SR) >= -9.0
    assert am.high_share(y, SR) >= 0.004


def test_a_moods_own_instruments_beat_the_score_wide_style() -> None:
    arr = compose(GenerationRequest(mood="m", variant=0, prompt=PROMPTS["folk"], duration_s=16))
    voices = {p.voice for p in arr.parts}
    assert "flute" in voices and "strings" in voices
    assert not {"brass", "choir", "drum:taiko"} & voices, voices
    # An instrument the genre's own palette has is no other band: synthwave "with
    # arpeggios" keeps its lead and drum kit.
    own = compose(GenerationRequest(mood="m", variant=0, prompt=PROMPTS["electronic"]))
    voices = {p.voice for p in own.parts}
    assert {"lead", "arp", "drum:kick"} <= voices and "flute" not in voices, voices


@pytest.mark.parametrize(
    ("prompt", "band"),
    [
        (
            "Retro synthwave chase through neon circuits, pulsing bass and arpeggiated synths",
            "lead",
        ),
        ("Laser grid racer, retrowave drive with a pumping bass and a bright lead", "lead"),
        ("Dark techno in a warehouse, deep bass", "lead"),
        ("Chiptune level theme with a bouncy bass", "chip"),
    ],
)
def test_an_electronic_moods_bass_is_its_own(prompt: str, band: str) -> None:
    """A bass named in an electronic genre is no other band: named as another instrument,
    it gave a synthwave chase a flute's tune, pizzicato and frame drums (or the orchestral
    kit) and an electric bass in place of its lead, drum kit and synth bass. The synth bass
    keeps the line (the electric one doubles it: a named instrument is never dropped)."""
    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16))
    line = next(p.voice for p in arr.parts if p.role == "bass")  # (a double comes after)
    voices = {p.voice for p in arr.parts}
    assert band in voices and line in {"synthbass", "chipbass"}, (line, voices)
    assert not {"flute", "pizz", "drum:frame_lo", "drum:taiko"} & voices, voices


def test_a_plans_climax_is_louder_than_its_quiet_opening() -> None:
    arr, x = render("Battle", 24.0, composition_plan=PLAN)
    st = am.short_term_loudness(x, SR)
    bar_s = arr.beats_per_bar * 60 / arr.bpm
    intro, climax = arr.sections
    t = np.arange(len(st)) + 1.5  # window centres (s)
    quiet = st[t <= (intro.start_bar + intro.bars) * bar_s - 1.0]
    loud = st[t >= climax.start_bar * bar_s + 1.5]
    assert np.median(loud) - np.median(quiet) >= 4.0
    assert am.loudness_range(x, SR) >= 2.0


def section_levels(arr, x: np.ndarray) -> list[float]:
    """Each section's median short-term loudness (LUFS), its first 1.5 s and last 1 s
    left out (the 3 s windows there straddle the section before or after)."""
    st = am.short_term_loudness(x, SR)
    t = np.arange(len(st)) + 1.5  # window centres (s)
    bar_s = arr.beats_per_bar * 60 / arr.bpm
    levels = []
    for sec in arr.sections:
        inside = (t >= sec.start_bar * bar_s + 1.5) & (t <= (sec.start_bar + sec.bars) * bar_s - 1)
        levels.append(float(np.median(st[inside])))
    return levels


def section_audio(arr, x: np.ndarray, sec) -> np.ndarray:
    """The frames of ``x`` that section ``sec`` of ``arr`` spans."""
    bar = round(arr.beats_per_bar * 60 / arr.bpm * SR)
    return x[sec.start_bar * bar : (sec.start_bar + sec.bars) * bar]


def plan_request(
    prompt: str, plan: dict, bpm: float, key: str, seconds: float, variant: int = 0
) -> GenerationRequest:
    """An epic orchestral plan's request, its tempo and key written into the prompt as the
    server's prompt transformers write them."""
    return GenerationRequest(
        mood="m",
        variant=variant,
        prompt=f"{prompt}, {bpm:g} BPM, {key}, instrumental, epic orchestral",
        duration_s=seconds,
        bpm=bpm,
        key=key,
        composition_plan=plan,
    )


# A plan written in dynamics words: a judged naval crescendo's "whispering strings",
# "growing", "louder" and "fortissimo" were read as nothing (and listed as ignored): its
# opening as loud as its build, its two middle sections at one level.
DYNAMICS_PLAN = {
    "positive_global_styles": ["epic orchestral"],
    "negative_global_styles": [],
    "sections": [
        plan_section("Mist on the lake", ["whispering strings", "pianissimo"], 12.0),
        plan_section("Riders approach", ["growing", "crescendo"], 12.0),
        plan_section("The gates give way", ["louder", "brass and drums", "crescendo"], 12.0),
        plan_section("Last stand", ["fortissimo", "pounding drums"], 12.0),
    ],
}


@pytest.mark.parametrize("variant", range(4))
def test_a_plan_in_dynamics_words_grows_section_by_section(variant: int, tmp_path: Path) -> None:
    prompt = "Siege of the lake fort, orchestral"
    arr, x = render(prompt, 48.0, variant, composition_plan=DYNAMICS_PLAN)
    levels = section_levels(arr, x)
    steps = np.diff(levels)
    assert len(levels) == 4 and steps.min() >= 1.0, f"short-term LUFS per section {levels}"
    from segue.core.commands.plan import generator_says

    request = GenerationRequest(
        mood="m", variant=0, prompt=prompt, duration_s=48.0, composition_plan=DYNAMICS_PLAN
    )
    ignored = generator_says(SynthGenerator({}, tmp_path), "ignored_words", request)
    dynamics = {"whispering", "pianissimo", "growing", "crescendo", "louder", "fortissimo"}
    assert "siege" in ignored and not dynamics & set(ignored), ignored


# Plans in a musician's dynamics words, none of them the judged plans': a crescendo whose
# middle section says nothing (the plan's "one long crescendo" shapes it), and a diminuendo.
# (A judged airship crescendo in "hushed, barely audible" -> "building, rising" ->
# "intensifying, bigger" -> "thunderous, full orchestra, triumphant peak" played its first
# three sections at one level, its second the quietest, and its climax's drums 12-15 dB
# under the orchestra.)
SHAPED_PLANS = {
    "crescendo": (
        "The keep is stormed at night, from the quiet moat to the burning tower",
        ["one long crescendo"],
        [
            ("Across the moat", ["faint", "a few low strings"]),
            ("Ladders", []),
            ("The gate", ["swelling", "drums enter"]),
            ("The tower", ["massive", "tutti", "apex"]),
        ],
        1,
    ),
    "diminuendo": (
        "The battle is won and the army marches away into the hills",
        ["diminuendo"],
        [
            ("Victory", ["fortissimo", "all-out"]),
            ("The field", []),
            ("Dusk", ["dying away"]),
            ("The hills", ["pp", "far away"]),
        ],
        -1,
    ),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("shape", "variant"), [("crescendo", 0), ("crescendo", 1), ("diminuendo", 2)]
)
def test_a_plans_dynamics_words_and_shape_step_its_sections(
    shape: str, variant: int, tmp_path: Path
) -> None:
    """Each section at least 1 LU louder (softer) than the one before it, short-term
    loudness; the loud end at least 4 LU over the soft one, and its drums within 10 dB of
    the orchestra (decoded). None of the dynamics words is listed as ignored."""
    prompt, shape_words, sections, sign = SHAPED_PLANS[shape]
    plan = {
        "positive_global_styles": [*shape_words, "epic orchestral"],
        "negative_global_styles": [],
        "sections": [plan_section(name, styles, 12.0) for name, styles in sections],
    }
    req = plan_request(prompt, plan, 116.0, "D minor", 48.0, variant)
    arr, x = render_request(req, SR)
    y = decoded(x.astype(np.float64))
    levels = section_levels(arr, y)
    steps = sign * np.diff(levels)
    assert len(levels) == 4 and steps.min() >= 1.0, f"short-term LUFS per section {levels}"
    assert sign * (levels[-1] - levels[0]) >= 4.0, levels
    loud = arr.sections[-1 if sign > 0 else 0]
    assert am.hpss_balance_db(section_audio(arr, y, loud), SR) >= -10.0
    from segue.core.commands.plan import generator_says

    ignored = generator_says(SynthGenerator({}, tmp_path), "ignored_words", req)
    said = {w for _, styles in sections for s in styles for w in s.split()}
    said |= {w for s in shape_words for w in s.split()}
    dynamics = said - {"a", "low"}  # ("a few low strings": "low" is no dynamics word)
    assert not dynamics & set(ignored), ignored


# Plans whose dynamics are in words no list of the synth's holds: their shape is read from
# what the words say of the band (a player alone; instruments, drums and brass named; the
# whole host) and their grammar ("at its most X"), each section relative to the others. (A
# judged crescendo from "murmuring, wraith-like, a solitary anvil" to "cataclysmic ...
# booming drums and crashing gongs" played its four sections within 1.1 LU.)
CUED_PLANS = {
    "crescendo": (
        "A beacon chain is lit across the mountains",
        108.0,
        [
            ("First fire", ["a lone fife, glimmering"]),
            ("Hill to hill", ["fife, strings and snare, kindling"]),
            ("The last beacon", ["the entire host, trumpets, timpani and cymbals, incandescent"]),
        ],
    ),
    "arch": (
        "Diving to the wreck and surfacing",
        84.0,
        [
            ("Descent", ["just a celesta, pearly"]),
            ("The wreck", ["at its most tumultuous, brass, drums and choir"]),
            ("Surfacing", ["only a harp, pale"]),
        ],
    ),
}


@pytest.mark.parametrize(("shape", "variant"), [("crescendo", 0), ("crescendo", 2), ("arch", 0)])
def test_a_plans_shape_in_unknown_words_is_read_from_its_band(
    shape: str, variant: int, tmp_path: Path
) -> None:
    """Climax over opening at least 4 LU (short-term loudness; before: 0.9-3.0), a
    crescendo's sections each at least 1 LU over the one before, an arch's middle its
    loudest. The words that shape it are not listed as ignored; the others still are."""
    prompt, bpm, sections = CUED_PLANS[shape]
    plan = {
        "positive_global_styles": ["epic orchestral"],
        "negative_global_styles": [],
        "sections": [plan_section(name, styles, 8.0) for name, styles in sections],
    }
    req = plan_request(prompt, plan, bpm, "D minor", 24.0, variant)
    arr, x = render_request(req, SR)
    levels = section_levels(arr, x.astype(np.float64))
    climax = int(np.argmax(levels))
    assert climax == (2 if shape == "crescendo" else 1), f"short-term LUFS per section {levels}"
    assert levels[climax] - levels[0] >= 4.0, levels
    if shape == "crescendo":
        assert np.diff(levels).min() >= 1.0, levels
    from segue.core.commands.plan import generator_says

    ignored = set(generator_says(SynthGenerator({}, tmp_path), "ignored_words", req))
    assert not {"lone", "entire", "tumultuous"} & ignored, ignored
    assert {"glimmering", "incandescent", "pearly"} & ignored, ignored


@pytest.mark.parametrize(
    ("style", "level", "step"),
    [
        ("softest", 0.12, 0),  # a soft word's superlative: its extreme
        ("a shade fiercer", None, 1),  # a loud word's comparative: a step up
        ("murmur-soft", 0.28, 0),  # a compound's part
        ("hugely", 0.9, 0),  # a suffix
        ("at its most delicate", 0.12, 0),
        ("more forceful", None, 1),
        ("less strong", None, -1),
    ],
)
def test_a_dynamics_words_parts_and_forms_are_read(style: str, level, step: int) -> None:
    from segue.plugins.synth.form import read_dynamics

    d = read_dynamics([style])
    assert (d.level, d.step) == (level, step), d


# A musician's Italian beside the marks: "niente", "dolce", "mezza voce", "marcato",
# "con tutta forza", "più forte" (a step), "calando", "morendo", and "-issimo" as a word's
# extreme. (A crescendo marked "al niente" -> "poco a poco" -> "più forte" -> "con tutta
# forza" read none of them: every section at the mood's level.)
@pytest.mark.parametrize(
    ("style", "level", "step"),
    [
        ("al niente, a breath", 0.12, 0),
        ("dolce", 0.28, 0),
        ("dolcissimo", 0.12, 0),
        ("mezza voce", 0.4, 0),
        ("marcato", 0.72, 0),
        ("con tutta forza", 0.9, 0),
        ("più forte", None, 1),
        ("meno forte", None, -1),
        ("stringendo", None, 1),
        ("calando", None, -1),
        ("morendo", None, -1),
    ],
)
def test_a_musicians_italian_is_read(style: str, level, step: int) -> None:
    from segue.plugins.synth.form import read_dynamics

    d = read_dynamics([style])
    assert (d.level, d.step) == (level, step), d


# A plan whose own marks rise (or fall) in plan order is a crescendo (a diminuendo) for the
# sections that say nothing: a climax written in words the synth does not read, after
# "soft" -> "growing" -> "loud", played at the mood's level, 2-4 LU under the section
# before it, its drums the mood's.
# (Its sections' band cues do not outrank its marks' shape: a middle section naming "strings
# and horns" was its loudest, the unread climax after "loud" the softest of all.)
RISING_MARKS = {
    "steps": [
        ("First light", ["soft, distant"]),
        ("Stirring", ["growing"]),
        ("Advance", ["loud"]),
        ("The charge", ["earth-rending, apocalyptic"]),
    ],
    "players": [
        ("First light", ["quiet, distant"]),
        ("Stirring", ["strings and horns"]),
        ("Advance", ["loud"]),
        ("The charge", ["heaven-rending"]),
    ],
}


@pytest.mark.parametrize(("name", "variant"), [("steps", 0), ("steps", 1), ("players", 2)])
def test_a_plans_marks_rising_carry_an_unread_climax(name: str, variant: int) -> None:
    """The unread last section is the loudest (before: 2-4 LU under the "loud" one), at
    least 4 LU over the opening, and struck as a peak (its drums within 10 dB)."""
    sections = RISING_MARKS[name]
    plan = {
        "positive_global_styles": [],
        "negative_global_styles": [],
        "sections": [plan_section(name, styles, 6.0) for name, styles in sections],
    }
    req = GenerationRequest(
        mood="m",
        variant=variant,
        prompt="Dawn over the valley, 104 BPM, D minor, instrumental",
        duration_s=24.0,
        bpm=104.0,
        key="D minor",
        composition_plan=plan,
    )
    arr, x = render_request(req, SR)
    y = x.astype(np.float64)
    levels = section_levels(arr, y)
    assert int(np.argmax(levels)) == 3, f"short-term LUFS per section {levels}"
    assert levels[3] - levels[0] >= 4.0, levels
    assert arr.sections[3].peak
    assert am.hpss_balance_db(section_audio(arr, y, arr.sections[3]), SR) >= -10.0


# A judged crescendo whose climax is in words the synth does not read as a mark (at 88 BPM,
# to "ear-splitting, every instrument blasting"; an arch at 127 with "raging at full tilt,
# ferocious" in its middle did as well): loud by its steps, its drums were struck as the
# mood's, 10-14 dB under the pitched parts (librosa's HPSS). A plan's climax (its loudest
# section, ``composer.CLIMAX_RISE`` over its quietest) is a peak whatever its words.
WYVERN = "A wyvern stirs in its cave and bursts out into the sky, from nothing to a roar"
WYVERN_PLAN = {
    "positive_global_styles": ["epic orchestral"],
    "negative_global_styles": [],
    "sections": [
        plan_section(name, styles, 12.0)
        for name, styles in [
            ("Deep slumber", ["sotto voce", "barely breathing", "low cellos only"]),
            ("Stirring", ["a notch louder", "timpani heartbeat", "waking up"]),
            ("Wings unfold", ["vigorous", "horns blare", "much louder still"]),
            ("Fire and fury", ["ear-splitting", "every instrument blasting", "gongs and cymbals"]),
        ]
    ],
}


@pytest.mark.timeout(300)  # one 48 s orchestral take rendered and measured
def test_a_plans_climax_in_any_words_strikes_its_drums() -> None:
    arr, x = render_request(plan_request(WYVERN, WYVERN_PLAN, 88.0, "G# minor", 48.0), SR)
    y = decoded(x.astype(np.float64))
    levels = section_levels(arr, y)
    assert max(levels) == levels[-1] and levels[-1] - levels[0] >= 4.0, levels
    climax = section_audio(arr, y, arr.sections[-1])
    assert am.hpss_balance_db(climax, SR) >= -10.0, "the climax's drums"


# An arch plan whose climax the synth reads under a loud section's energy (a sandstorm at
# 0.59, its loudest section, over quiet ends at 0.05: a peak, ``composer.CLIMAX_RISE``):
# its straight take struck the orchestral kit's quieter bar, a few taiko hits, 10 dB under
# the pitched parts (a judged arch at 127 BPM read at 0.68: 10.8-11.1 dB under, librosa's
# HPSS, both SoundFonts). A peak's drums play their busy bar whatever its energy
# (``composer.PEAK_BUSY``).
SANDSTORM = "The caravan crosses the sandstorm and reaches the oasis"
SANDSTORM_PLAN = {
    "positive_global_styles": ["calm, then wild, then calm again", "epic orchestral"],
    "negative_global_styles": [],
    "sections": [
        plan_section(name, styles, 12.0)
        for name, styles in [
            ("Still dunes", ["scarcely audible", "faint"]),
            ("Wind rising", ["stirring", "restless"]),
            ("The sandstorm", ["howling", "merciless", "war drums and gongs"]),
            ("Dying wind", ["settling", "the drums fall away"]),
            ("Oasis", ["barely a whisper", "alone"]),
        ]
    ],
}


@pytest.mark.timeout(300)  # one 60 s orchestral take rendered and measured
def test_an_arch_plans_climax_under_loud_strikes_its_busy_drums() -> None:
    req = plan_request(SANDSTORM, SANDSTORM_PLAN, 104.0, "A minor", 60.0)
    arr, x = render_request(req, SR)
    top = arr.sections[2]
    assert top.peak and top.energy < 0.7, (top.peak, top.energy)  # a peak, not a loud one
    y = decoded(x.astype(np.float64))
    levels = section_levels(arr, y)
    assert max(levels) == levels[2], levels
    balance = am.hpss_balance_db(section_audio(arr, y, top), SR)
    # (With a margin: -10 dB is where drums stop being heard as the climax's.)
    assert balance >= -9.0, f"the climax's drums {balance:.1f} dB"


# A slow crescendo's climax on its half-time take (below 100 BPM: two big hits a bar, light
# ones between, under the full orchestra): a judged crescendo at 86 BPM to "thunderous, at full
# might, pounding drums and clashing cymbals" measured its percussive energy 10.2-10.3 dB
# under its harmonic with TimGM6mb (librosa's HPSS; the other takes' 7.9-8.5), an ironworks
# arch at 92 BPM 12.8. A peak's drums strike harder there (``composer.SLOW_HALF_PEAK``), the
# low drum on the and of 3 too (``drums.feel_pattern``).
FLOODGATE = "The old sea wall gives way to the storm surge, from a murmur to a roar"
FLOODGATE_PLAN = {
    "positive_global_styles": ["the sea rises against the wall", "growing to a crushing finale"],
    "negative_global_styles": [],
    "sections": [
        plan_section("Low water", ["hushed", "veiled", "a distant harp"], 15.0),
        plan_section("The swell", ["stronger", "drums stir"], 15.0),
        plan_section("Spray over the wall", ["louder", "the horns join"], 15.0),
        plan_section(
            "The wall breaks",
            ["deafening", "all at once", "booming drums and crashing cymbals"],
            15.0,
        ),
    ],
}


@pytest.mark.timeout(300)  # one 60 s orchestral take rendered and measured
def test_a_slow_crescendos_half_time_climax_strikes_its_drums() -> None:
    req = plan_request(FLOODGATE, FLOODGATE_PLAN, 88.0, "E minor", 60.0, variant=1)
    arr, x = render_request(req, SR, bundled_soundfont())
    top = arr.sections[-1]
    assert top.peak and arr.bpm < 100, (top.peak, arr.bpm)
    y = decoded(x.astype(np.float64))
    balance = am.hpss_balance_db(section_audio(arr, y, top), SR)
    assert balance >= -9.0, f"the half-time climax's drums {balance:.1f} dB"


# A calm mood's crescendo whose climax is a peak: its soft kit (a felt thump and a shaker)
# stayed under the pads, bells and piano, the low, ringing thump heard as harmonic energy (a
# paper-lantern crescendo at 76 BPM to "fortissimo, radiant": 13-15 dB under with FluidR3).
# A peak plays hand drums where the mood's kit is the soft one (``composer.PEAK_KITS``).
SNOW_GLOBE = "A snow globe shaken on the windowsill, calm ambient pads and bells"
SNOW_GLOBE_PLAN = {
    "positive_global_styles": ["calm"],
    "negative_global_styles": [],
    "sections": [
        plan_section("Still flakes", ["pianissimo", "drifting"], 10.0),
        plan_section("Shaken", ["swelling"], 10.0),
        plan_section("Blizzard inside", ["fortissimo", "glittering"], 10.0),
    ],
}


@pytest.mark.timeout(300)  # two 30 s takes rendered and measured
@pytest.mark.parametrize("variant", [0, 2])
def test_a_calm_plans_climax_strikes_drums_over_its_pads(variant: int) -> None:
    req = GenerationRequest(
        mood="m",
        variant=variant,
        prompt=f"{SNOW_GLOBE}, 100 BPM, A major, instrumental",
        duration_s=30.0,
        bpm=100.0,
        key="A major",
        composition_plan=SNOW_GLOBE_PLAN,
    )
    arr, x = render_request(req, SR)
    quiet, top = arr.sections[0], arr.sections[-1]
    assert top.peak and quiet.kit == "soft", (top.peak, quiet.kit)
    y = decoded(x.astype(np.float64))
    levels = section_levels(arr, y)
    assert levels[-1] - levels[0] >= 4.0, levels
    balance = am.hpss_balance_db(section_audio(arr, y, top), SR)
    assert balance >= -10.0, f"the calm climax's drums {balance:.1f} dB"


def test_new_instruments_play_and_the_words_the_synth_ignores_are_listed(tmp_path: Path) -> None:
    prompt = "A blacksmith forge: anvil and woodblock, a clarinet tune over a dulcimer, oboe"
    request = GenerationRequest(mood="forge", variant=0, prompt=prompt, duration_s=8)
    voices = {p.voice for p in compose(request).parts}
    assert {"clarinet", "dulcimer", "oboe", "drum:anvil", "drum:woodblock"} <= voices, voices
    from segue.core.commands.plan import generator_says

    gen = SynthGenerator({}, tmp_path)
    assert generator_says(gen, "ignored_words", request) == ["blacksmith", "forge"]
    plain = request.replace(prompt="Vuvuzela and washboard, calm")
    assert generator_says(gen, "ignored_words", plain) == ["vuvuzela", "washboard"]


def test_only_content_words_the_synth_ignores_are_listed(tmp_path: Path) -> None:
    # Stop words, the parts every piece has (a melody), avoided clauses and negative styles
    # (honoured: the synth never plays what it does not know) and the section words it
    # reads are not ignored words; an instrument it does not know is.
    from segue.core.commands.plan import generator_says

    prompt = (
        "A melody that can keep the player calm, with a vuvuzela and a washboard over the "
        "harp. Avoid: vocals, lyrics, distorted guitar; no kazoo"
    )
    plan = {
        "positive_global_styles": ["live orchestral recording"],
        "negative_global_styles": ["dubstep wobble"],
        "sections": [
            {
                "section_name": "Crescendo",
                "positive_local_styles": ["build-up, rising"],
                "negative_local_styles": ["theremin"],
                "duration_ms": 8000,
                "lines": [],
            }
        ],
    }
    request = GenerationRequest(
        mood="m", variant=0, prompt=prompt, duration_s=8, composition_plan=plan
    )
    assert generator_says(SynthGenerator({}, tmp_path), "ignored_words", request) == [
        "vuvuzela",
        "washboard",
    ]


@pytest.mark.parametrize(
    ("prompt", "meter", "beats"),
    [
        ("A lively celtic jig with fiddle and tin whistle", "6/8", 2),
        ("A gentle lullaby with music box", "6/8", 2),
        ("Tarantella in 12/8, fast and festive", "12/8", 4),
    ],
)
async def test_compound_meters_divide_the_beat_in_three(
    tmp_path: Path, prompt: str, meter: str, beats: int
) -> None:
    gen = SynthGenerator({}, tmp_path)
    request = GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=12.0)
    out = await gen.generate(request, tmp_path / "work")
    assert out.beats_per_bar == beats and out.extra["meter"] == meter
    x, sr = sf.read(out.path, dtype="float64")
    assert am.triplet_ratio(x, sr, out.bpm) >= 2.0
    assert abs(am.tempo(x, sr) - out.bpm) / out.bpm <= 0.015  # the dotted quarter's tempo


def test_simple_meters_divide_the_beat_in_two_and_a_waltz_is_in_three(tracks) -> None:
    arr, x = tracks["electronic"]
    assert arr.meter == "4/4" and am.triplet_ratio(x, SR, arr.bpm) < 1.0
    waltz = compose(GenerationRequest(mood="m", variant=0, prompt="Gentle waltz", duration_s=8))
    assert (waltz.meter, waltz.beats_per_bar) == ("3/4", 3)


def test_stems_take_the_mixs_narrowing_and_bus_compression(monkeypatch) -> None:
    # A crescendo (the compressor acts on the climax) with wide synth parts (the side is
    # narrowed): the stems' sum is the mix rendered alone, so both are the mix's, not each
    # stem's own.
    from segue.plugins.synth import render as render_mod

    seen: dict[str, list] = {"side": [], "comp": []}
    side_scale, compress_gain = render_mod.side_scale, render_mod.compress_gain

    def record_side(*a, **k):
        seen["side"].append(side_scale(*a, **k))
        return seen["side"][-1]

    def record_comp(*a, **k):
        seen["comp"].append(compress_gain(*a, **k))
        return seen["comp"][-1]

    monkeypatch.setattr(render_mod, "side_scale", record_side)
    monkeypatch.setattr(render_mod, "compress_gain", record_comp)
    plan = {**PLAN, "positive_global_styles": ["synthwave, arpeggios"]}
    request = GenerationRequest(
        mood="m", variant=0, prompt=PROMPTS["electronic"], duration_s=24.0, composition_plan=plan
    )
    arr = compose(request)
    sampled = render_mod.Sampled.open(find_soundfont(), SR)
    mix = render_mod.render_arrangement(arr, SR, 0, sampled).astype(np.float64)
    layers = ("bass", "harmony", "drums", "melody")
    summed, stems = render_mod.render_stems(arr, layers, SR, 0, sampled)
    assert seen["side"][0] < 1.0 and seen["comp"][0] is not None  # both act on this mix
    assert seen["side"][1] == pytest.approx(seen["side"][0], rel=1e-3)
    assert set(stems) == set(layers)
    total = np.sum([s.astype(np.float64) for s in stems.values()], axis=0)
    assert np.allclose(total, summed, atol=1e-5)
    err = float(np.sum(np.square(mix - total)))
    assert 10 * np.log10(float(np.sum(np.square(mix))) / err) >= 60.0


def test_a_track_placed_by_two_processes_is_the_same_as_by_one() -> None:
    # The head-start worker renders with two processes (docs/plugins.md, `processes`):
    # byte for byte what one process renders, sampled and numpy voices, drums, echoes.
    from segue.plugins.synth import render as render_mod

    request = GenerationRequest(
        mood="m", variant=0, prompt=PROMPTS["electronic"], duration_s=12.0, composition_plan=PLAN
    )
    arr = compose(request)
    halves = render_mod._halves(arr)
    assert set(halves) == {0, 1} and any(p.voice.startswith("drum:") for p in arr.parts)
    sampled = render_mod.Sampled.open(find_soundfont(), SR)  # its caches cold: split first
    split = render_mod.render_arrangement(arr, SR, 1, sampled, processes=2)
    alone = render_mod.render_arrangement(arr, SR, 1, sampled)
    assert split.tobytes() == alone.tobytes() and np.abs(alone).max() > 0.1


def test_a_half_added_a_window_at_a_time_is_the_half_placed_in_a_bus_of_its_own() -> None:
    # One process sums the second half in windows (one Bus as long as the track, not two):
    # to the bit what a Bus of its own, added, holds; windows shorter than many notes, so
    # notes sound on over one, two and more window edges.
    from segue.plugins.synth import render as render_mod

    request = GenerationRequest(mood="m", variant=0, prompt=PROMPTS["calm"], duration_s=8.0)
    arr = compose(request)
    sampled = render_mod.Sampled.open(find_soundfont(), SR)
    plays = [render_mod._plays_sampled(p, sampled, arr.key.minor) for p in arr.parts]
    total = round(arr.length_beats * 60.0 / arr.bpm * SR) + SR
    second = [h == 1 for h in render_mod._halves(arr)]
    assert any(second) and not all(second)
    apart = render_mod.Bus(total)
    render_mod._place(arr, SR, 0, sampled, plays, total, [apart if h else None for h in second])
    assert np.abs(apart.mix).max() > 0.01 and apart.send.any()
    first = render_mod.Bus(total)
    first.mix[:] = np.random.default_rng(2).standard_normal((2, total)).astype(np.float32)
    expected = [a + b for a, b in zip(first.rows, apart.rows, strict=True)]
    render_mod._place_in_windows(arr, SR, 0, sampled, plays, total, second, first, window=3000)
    assert [r.tobytes() for r in first.rows] == [r.tobytes() for r in expected]


def test_voices_let_go_after_placing_change_no_sample() -> None:
    # `segue pregen`'s last render makes its notes a pitch at a time and lets the
    # SoundFont's notes go once they are placed (SynthGenerator.idle): the same samples as
    # a render that keeps them, with the cache cold for both; the cache empty after.
    from segue.plugins.synth import render as render_mod
    from segue.plugins.synth.soundfont import load

    font = load(str(find_soundfont()))
    for layers in ((), ("melody", "bass")):
        request = GenerationRequest(
            mood="m", variant=0, prompt=PROMPTS["folk"], duration_s=6.0, layers=layers
        )
        font.forget()
        _, mix, stems = render_mod.render_request_stems(request, SR, keep_voices=False)
        assert len(font.signals) == 0 and not font._decoded
        _, kept, kept_stems = render_mod.render_request_stems(request, SR)
        assert len(font.signals) > 0
        assert mix.tobytes() == kept.tobytes()
        assert {k: v.tobytes() for k, v in stems.items()} == {
            k: v.tobytes() for k, v in kept_stems.items()
        }


def test_a_helper_process_that_fails_leaves_its_half_to_the_caller() -> None:
    import os

    from segue.plugins.synth import render as render_mod

    parent = os.getpid()

    def place(bus: render_mod.Bus) -> None:
        if os.getpid() != parent:
            raise RuntimeError("the helper fails")
        bus.mix[0, :3] += 1.0

    with render_mod._forked(place, 5) as add_other:
        bus = render_mod.Bus(5)
        bus.mix[1, 4] = 3.0
        add_other(bus)
    assert bus.rows[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert bus.rows[1].tolist() == [0.0, 0.0, 0.0, 0.0, 3.0]
    assert not bus.send.any() and not bus.echo.any()

    def place_there(bus: render_mod.Bus) -> None:
        bus.echo[:] = 2.0 if os.getpid() != parent else 7.0

    with render_mod._forked(place_there, 4) as add_other:
        bus = render_mod.Bus(4)
        add_other(bus)
        assert bus.echo.tolist() == [2.0] * 4  # made by the helper, added here


MARCH = (
    "A proud regiment marches to the citadel, snare drums and trumpets, 116 BPM, instrumental,"
    " epic orchestral"
)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", ["bundled", "found"])
@pytest.mark.parametrize("variant", [0, 1, 2, 3])
def test_a_marchs_snare_drums_lead_its_band(variant: int, path: str) -> None:
    """A march naming its snare drums under the score-wide style, 24 s decoded: percussive
    within 9 dB of harmonic energy on every take with either SoundFont (the style's taiko
    kit played it, its snares 1 % of the hits: 11-15 dB under), the snare the kit's
    loudest drum and the trumpet's tune still a part of the mix."""
    soundfont = bundled_soundfont() if path == "bundled" else find_soundfont()
    req = GenerationRequest(mood="m", variant=variant, prompt=MARCH, duration_s=24.0, bpm=116.0)
    arr, x = render_request(req, SR, soundfont)
    voices = {p.voice for p in arr.parts if p.notes}
    assert {"drum:fieldsnare", "drum:bassdrum", "trumpet"} <= voices, sorted(voices)
    assert am.hpss_balance_db(decoded(x.astype(np.float64)), SR) >= -9.0


# A plan from a hush to a battle (the judge's shape: a quiet opening, a taiko build-up and
# a climax on the full orchestra), shorter.
SIEGE = {
    "positive_global_styles": ["grim war epic", "epic orchestral"],
    "negative_global_styles": [],
    "sections": [
        {
            "section_name": "Hushed start",
            "positive_local_styles": ["low strings", "distant", "sparse"],
            "negative_local_styles": [],
            "duration_ms": 12000,
            "lines": [],
        },
        {
            "section_name": "Build-up",
            "positive_local_styles": ["war drums", "rising"],
            "negative_local_styles": [],
            "duration_ms": 8000,
            "lines": [],
        },
        {
            "section_name": "Climax",
            "positive_local_styles": ["full orchestra", "thundering climax"],
            "negative_local_styles": [],
            "duration_ms": 24000,
            "lines": [],
        },
    ],
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("variant", [0, 1, 2, 3])
def test_a_plans_climax_strikes_its_drums_over_the_full_orchestra(variant: int) -> None:
    """The climax section alone, decoded, as a plain install plays it (TimGM6mb): percussive
    within 9 dB of harmonic energy (the full orchestra, choir and counter-line joined at
    the other sections' drum level: 10-11 dB under), and still at least 4 LU louder than
    the hushed start (short-term loudness)."""
    req = plan_request("The siege, from dread to battle", SIEGE, 112.0, "C minor", 44.0, variant)
    arr, x = render_request(req, SR, bundled_soundfont())
    y = decoded(x.astype(np.float64))
    quiet, _, climax = arr.sections
    assert am.hpss_balance_db(section_audio(arr, y, climax), SR) >= -9.0
    bar = round(arr.beats_per_bar * 60 / arr.bpm * SR)
    st = am.short_term_loudness(y, SR)
    t = np.arange(len(st)) + 1.5  # window centres (s)
    hush = st[t <= (quiet.start_bar + quiet.bars) * bar / SR - 1.0]
    loud = st[t >= climax.start_bar * bar / SR + 1.5]
    assert np.median(loud) - np.median(hush) >= 4.0


# Struck metal leading a mood (temple bells, a glockenspiel and a celesta): their samples'
# top kept 4-11 % of the energy above 8 kHz, where game music on record keeps 0.08-0.82 %
# (the Debian recordings: planetblupi, hyperrogue, drascula): piercing, not bright.
STRUCK = {
    "temple bells": "Floating temple bells over the misty lake, luminous, instrumental",
    "glockenspiel": "Snowy christmas morning, glockenspiel and celesta, joyful, instrumental",
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", ["bundled", "found"])
@pytest.mark.parametrize("name", sorted(STRUCK))
def test_struck_metal_on_the_tune_is_bright_not_piercing(name: str, path: str) -> None:
    soundfont = bundled_soundfont() if path == "bundled" else find_soundfont()
    for variant in (0, 2):
        req = GenerationRequest(mood="m", variant=variant, prompt=STRUCK[name], duration_s=30.0)
        arr, x = render_request(req, SR, soundfont)
        tune = {p.voice for p in arr.parts if p.role == "melody" and p.notes}
        assert tune & {"bells", "celesta"}, tune
        share = am.high_share(decoded(x.astype(np.float64)), SR)
        assert 0.0008 <= share <= 0.0082, (variant, share)


# Moods played by the players they name ("a lone violin", "a duet for violin and harp"):
# (prompt, the voices named, the tune's voice). "A lone violin" was the string section's
# tune; "a duet for violin and harp" a flute's tune nobody asked for (-3.6 LU), the violin
# the section's harmony (-9.4 LU) and the harp an arpeggio 14-16 LU under the mix.
CHAMBER = {
    "lone violin": ("A lone violin plays by the ruined chapel, sorrowful and slow", {"violin"}),
    "violin duet": ("A tender duet for violin and harp by the palace fountain", {"violin", "harp"}),
    "solo violin": ("A solo violin lament in the autumn rain", {"violin"}),
    # A harp or a guitar named first plays the tune: "a solo harp in the empty ballroom"
    # had a flute's tune over the harp's arpeggio 13-18 LU under the mix; "banjo and
    # guitar on the bayou porch" the guitar's tune over the banjo's counter-line 13-15 LU
    # under it.
    "lone harp": ("A lone harp by the moonlit lake", {"harp"}),
    "banjo and guitar": ("Banjo and guitar on the riverboat deck, easygoing", {"banjo", "guitar"}),
}
STEMS = ("drums", "bass", "harmony", "arp", "melody", "counter")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", ["bundled", "found"])
@pytest.mark.parametrize("name", sorted(CHAMBER))
def test_named_players_carry_the_lines_and_are_heard(name: str, path: str) -> None:
    from segue.plugins.synth.render import render_request_stems

    prompt, named = CHAMBER[name]
    soundfont = bundled_soundfont() if path == "bundled" else find_soundfont()
    for variant in (0, 2):
        request = GenerationRequest(
            mood="m", variant=variant, prompt=prompt, duration_s=30.0, layers=STEMS
        )
        arr, mix, stems = render_request_stems(request, SR, soundfont, keep_voices=False)
        whole = am.loudness_lufs(mix, SR)
        level = {k: am.loudness_lufs(x, SR) - whole for k, x in stems.items() if np.any(x)}
        roles = {p.voice: p.role for p in arr.parts if p.notes and p.role != "drums"}
        tune = [v for v, r in roles.items() if r == "melody"]
        assert tune and set(tune) <= named, (variant, roles)
        assert all(v in named for v, r in roles.items() if r == "counter"), (variant, roles)
        for voice in named:  # each a line a listener hears: 10 LU under the mix at most
            assert level[roles[voice]] >= -10.0, (variant, voice, level)


# A named line mixed as an accompaniment's: "Mountain cabin trio: hammered dulcimer, banjo
# and harmonica" had the banjo's tune die away 10-14 LU under the mix beside the
# harmonica's held counter-line; "A spinning carousel waltz at the fair, glockenspiel and
# accordion" the glockenspiel's counter-line 10-17 LU under it; "a frontier patrol, military
# drums and tuba" (under the style) the tuba's bass 9-13 LU under it.
NAMED_LINES = {
    "trio-banjo": (
        "Mountain cabin trio: hammered dulcimer, banjo and harmonica",
        "melody",
        "banjo",
        -11.0,
    ),
    "carousel-bells": (
        "A spinning carousel waltz at the fair, glockenspiel and accordion",
        "counter",
        "bells",
        -10.0,
    ),
    "march-tuba": (
        "The border watch marches through the snow, military drums and tuba, grim, epic orchestral",
        "bass",
        "tuba",
        -10.0,
    ),
    # A trombone's counter-line is mixed as a low line ("harmonica and trombone at the rail
    # yard" had it 12.5 LU under the mix). (Named first, it plays the tune.)
    "trombone-counter": (
        "Harmonica and trombone in the smoky bar, slow",
        "counter",
        "trombone",
        -10.0,
    ),
    # An accordion named first leads ("a cheerful polka, accordion, clarinet and tuba" had
    # the clarinet's tune, the accordion 11-16 LU under the mix).
    "polka-accordion": (
        "A merry polka in the beer garden, accordion and clarinet",
        "melody",
        "accordion",
        -10.0,
    ),
    # A named organ on the chords ("a slow 12/8 shuffle, electric guitar and organ" had it
    # 11-16 LU under the mix).
    "shuffle-organ": (
        "A gospel shuffle in the old chapel, electric guitar and organ",
        "harmony",
        "organ",
        -10.0,
    ),
    # In 6/8 named strings play the tune no named player took ("a swaying barcarolle,
    # mandolin and strings" had a flute's tune, the strings' chords 15-19 LU under the mix).
    "barcarolle-strings": (
        "A barcarolle on the lagoon at dusk, mandolin and strings",
        "melody",
        "strings",
        -10.0,
    ),
    # Named strings on a waltz's short "pah-pah" chords ("a dashing Viennese waltz in the
    # grand ballroom, sweeping strings and flutes" had them 11-13 LU under the mix).
    "waltz-strings": (
        "A whirling Viennese waltz at the masked ball, lush strings and oboe, 172 BPM",
        "harmony",
        "strings",
        -10.0,
    ),
    # A harpsichord named first plays the tune over its own broken chords (its arpeggio
    # under a wind's tune was no line of its own).
    "harpsichord-tune": (
        "Harpsichord and oboe in the palace library, stately",
        "melody",
        "harpsichord",
        -10.0,
    ),
    # A fiddle in a folk dance is one fiddler's line (a reel's fiddle was the string
    # section's chords, no line; a step dance's a string counter-line 15 LU under the mix).
    "reel-fiddle": (
        "A wild reel in the shearing shed, banjo and fiddle",
        "melody",
        "folkfiddle",
        -10.0,
    ),
    "step-dance-fiddle": (
        "Step dancers on the harbour stage, tin whistle and fiddle",
        "counter",
        "folkfiddle",
        -10.0,
    ),
    # A viola named alone is one player's line (a lullaby's viola was its chords under the
    # mood's flute, 15 LU under the mix).
    "lullaby-viola": (
        "A hushed lullaby by the cradle, viola and celesta",
        "melody",
        "viola",
        -10.0,
    ),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", ["bundled", "found"])
@pytest.mark.parametrize("name", sorted(NAMED_LINES))
def test_a_named_line_is_heard(name: str, path: str) -> None:
    from segue.plugins.synth.render import render_request_stems

    prompt, role, voice, floor = NAMED_LINES[name]
    soundfont = bundled_soundfont() if path == "bundled" else find_soundfont()
    for variant in (0, 2):
        request = GenerationRequest(
            mood="m", variant=variant, prompt=prompt, duration_s=30.0, layers=STEMS
        )
        arr, mix, stems = render_request_stems(request, SR, soundfont, keep_voices=False)
        assert {p.voice for p in arr.parts if p.role == role and p.notes} == {voice}
        line = am.loudness_lufs(stems[role], SR) - am.loudness_lufs(mix, SR)
        assert line >= floor, (variant, line)
