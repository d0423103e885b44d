"""The instrument words a game developer writes: each plays something the synth has.

A broad list (folk, orchestral, world, keyboard and percussion instruments, as written in
prompts: hyphens, plurals, singulars) must each name a General MIDI preset the SoundFont
has, a General MIDI kit sound, a drum kit, or a numpy voice, and never be listed by
``segue plan`` as a word the synth ignores.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from segue.core.request import GenerationRequest
from segue.plugins.synth import SynthGenerator
from segue.plugins.synth.composer import compose
from segue.plugins.synth.instruments import RENDERERS, VOICES
from segue.plugins.synth.palette import KIT_WORDS
from segue.plugins.synth.parts import EXTRA_PERCUSSION
from segue.plugins.synth.render import render_request
from segue.plugins.synth.sampled import GM_DRUMS, GM_PROGRAMS
from segue.plugins.synth.soundfont import find_soundfont, load
from segue.plugins.synth.words import instrument_of, read_words, traits_of

WORDS = """ukulele, banjo, mandolin, accordion, bagpipes, tin whistle, sitar, koto, shakuhachi,
didgeridoo, glockenspiel, celesta, marimba, vibraphone, xylophone, timpani, cello, viola,
double bass, bassoon, french horn, trombone, tuba, trumpet, saxophone, harmonica, organ,
harpsichord, steel drums, kalimba, music box, lute, hurdy-gurdy, erhu, shamisen, taiko,
djembe, congas, bongos, tabla, castanets, tambourine, choir, whistle, theremin, 808,
synth bass, frame-drum, hand drum, frame drums, hurdy gurdy, steel-drum, trumpets, tubas,
bagpipe, conga, violas, upright bass, pan flute, recorder, ocarina, triangle, cowbell,
maracas, clarinet, oboe, piccolo, dulcimer, bouzouki, woodblock, anvil, harp, fiddle, kit,
drum kit, ney, biwa, pipa, guzheng, zither, qanun, shehnai, zurna, duduk, vihuela, guitarrón,
electric guitar, slide guitar, flamenco guitar, slap bass, electro bass, honky-tonk piano,
calliope, singing bowls, whistling, gregorian chant, brushes, brushed snare, darbuka, doumbek,
dholak, cajon, tapan, davul, sistrum, sleigh bells, square lead, pulse wave, snare drums,
side drum, field drums, military drums, marching drums, drum corps, drumline, tenor drums"""
NUMPY_VOICES = {"drone", "theremin", "synthbass", "lead", "arp", "chip", "chipbass"}
KITS = set(KIT_WORDS) | {"drums"}


def words() -> list[str]:
    return [w.strip() for w in WORDS.replace("\n", " ").split(",")]


def test_every_instrument_word_plays_a_preset_a_kit_sound_or_a_numpy_voice(
    tmp_path: Path,
) -> None:
    from segue.core.commands.plan import generator_says

    path = find_soundfont()
    assert path is not None
    sf = load(str(path))
    gen = SynthGenerator({}, tmp_path)
    problems = []
    for word in words():
        voice = instrument_of(word)
        if voice is None:
            problems.append(f"{word}: not recognised")
            continue
        if voice in GM_PROGRAMS:
            if sf.preset(*GM_PROGRAMS[voice]) is None:
                problems.append(f"{word}: {voice}'s preset {GM_PROGRAMS[voice]} missing")
        elif voice in EXTRA_PERCUSSION:  # a sound over any kit: General MIDI's, or numpy's
            assert voice in GM_DRUMS or voice in {"anvil"}, voice
        elif voice not in KITS and voice not in NUMPY_VOICES:
            problems.append(f"{word}: {voice} is neither a preset, a kit sound nor a voice")
        if voice in VOICES:
            assert VOICES[voice].kind in RENDERERS  # the numpy fallback exists
        request = GenerationRequest(mood="m", variant=0, prompt=f"a tune with {word}", duration_s=8)
        if ignored := generator_says(gen, "ignored_words", request):
            problems.append(f"{word}: listed as ignored {ignored}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("written", "same_as"),
    [
        ("frame-drum", "frame drum"),
        ("hand drum", "hand drums"),
        ("steel-drum", "steel drums"),
        ("hurdy gurdy", "hurdy-gurdy"),
        ("congas", "conga"),
        ("trumpets", "trumpet"),
        ("music-box", "music box"),
    ],
)
def test_hyphens_and_plurals_read_as_the_same_instrument(written: str, same_as: str) -> None:
    assert instrument_of(written) == instrument_of(same_as) is not None
    assert read_words(f"with {written}").instruments.keys() >= {instrument_of(same_as)}


def test_words_that_are_not_plurals_of_an_instrument_stay_apart() -> None:
    # "keys" is an electric piano, not the plural of a key; "beats" is not a drum kit.
    assert instrument_of("key") is None and instrument_of("keys") == "epiano"
    assert instrument_of("beats") is None and instrument_of("voice") is None


def test_named_instruments_play_in_the_piece() -> None:
    prompt = "Harbour tavern: accordion and banjo over a tuba, congas and castanets"
    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=8))
    voices = {p.voice for p in arr.parts}
    assert {"accordion", "banjo", "tuba", "drum:conga", "drum:castanets"} <= voices, voices
    hand = compose(GenerationRequest(mood="m", variant=0, prompt="a frame-drum", duration_s=8))
    assert any(p.voice == "drum:frame_lo" for p in hand.parts)


def test_more_named_instruments_than_parts_double_a_part_each() -> None:
    # Five pitched parts; a sixth instrument the prompt names doubles one its voice can
    # play, softer and in its own octave (a piccolo an octave over the flute's tune).
    prompt = "Folk tune with fiddle, flute, dulcimer, bouzouki and piccolo"
    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16))
    parts = {p.voice: p for p in arr.parts if p.notes}
    assert {"strings", "flute", "dulcimer", "bouzouki", "piccolo"} <= set(parts), set(parts)
    tune, high = parts["flute"], parts["piccolo"]
    assert [(n.t, n.d) for n in high.notes] == [(n.t, n.d) for n in tune.notes]
    assert {n.p - m.p for n, m in zip(high.notes, tune.notes, strict=True)} == {12}
    assert VOICES["piccolo"].low - 12 <= min(n.p for n in high.notes)
    assert max(n.v for n in high.notes) < max(n.v for n in tune.notes)


def test_everyday_mood_words_set_the_character_under_a_score_wide_style() -> None:
    # "Sunny ... merry and bouncy" were unknown words, so the style's "epic" alone set the
    # character: a battle (minor, choir, taiko) for a village market.
    prompt = "Sunny village market with fiddle and tin whistle, merry and bouncy, epic orchestral"
    gen = SynthGenerator({"soundfont": "none"}, Path("."))
    req = GenerationRequest(mood="market", variant=0, prompt=prompt, duration_s=16)
    assert not {"sunny", "merry", "bouncy"} & set(gen.ignored_words(req))
    arr = compose(req)
    voices = {p.voice for p in arr.parts if p.notes}
    assert {"strings", "flute"} <= voices and not {"choir", "drum:taiko"} & voices, voices
    assert not arr.key.minor
    # With no character word at all, "epic" says how big, not that it is a battle.
    for prompt in ("Harvest fair on the village green, fiddle and accordion", "Meadow, harp"):
        for variant in range(3):
            req = GenerationRequest(
                mood="fair", variant=variant, prompt=prompt + ", epic orchestral", duration_s=16
            )
            voices = {p.voice for p in compose(req).parts if p.notes}
            assert not {"choir", "drum:taiko"} & voices, (prompt, variant, voices)


# Words a game developer writes that were ignored (``segue plan`` listed them), and the
# part each now plays: the General MIDI preset or kit sound nearest in playing and sound.
NEW_WORDS = [
    ("Desert caravan, oud and ney flute", "shakuhachi"),
    ("Samurai duel, shakuhachi and biwa", "shamisen"),
    ("Kung fu training, erhu and guzheng", "koto"),
    ("Bazaar, qanun", "dulcimer"),
    ("Bollywood market, sitar and shehnai", "oboe"),
    ("Armenian dusk, duduk", "oboe"),
    ("Mariachi plaza, trumpets, vihuela and guitarrón", "pluckbass"),
    ("Mariachi plaza, trumpets, vihuela and guitarrón", "guitar"),
    ("Rock arena, electric guitar", "guitar"),
    ("Funky roller rink, slap bass", "bass"),
    ("Wild west saloon, honky-tonk piano", "piano"),
    ("Steampunk airship, calliope", "organ"),
    ("Mountain monastery, singing bowls", "bells"),
    ("Cozy farm morning, whistling", "flute"),
    ("Gothic cathedral, gregorian chant", "choir"),
    ("Spy infiltration, upright bass and brushed snare", "drum:brush"),
    ("Desert caravan, darbuka", "drum:conga"),
    ("Bollywood market, dholak", "drum:bongo"),
    ("Ancient temple, sistrum", "drum:shaker"),
    ("Ski resort, sleigh bells", "drum:sleighbells"),
    ("Retro arcade, square leads", "chip"),
]


@pytest.mark.parametrize(("prompt", "voice"), NEW_WORDS)
def test_a_world_or_band_instrument_plays_its_nearest_preset(prompt: str, voice: str) -> None:
    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=8))
    assert voice in {p.voice for p in arr.parts if p.notes}


@pytest.mark.parametrize(
    ("prompt", "genre"),
    [
        ("Rowdy sea shanty", "folk"),
        ("Balkan wedding", "folk"),
        ("Mariachi plaza", "western"),
        ("Disco roller rink", "electronic"),
        ("Street race, drum and bass breakbeats", "electronic"),
        ("Retro arcade", "chiptune"),
    ],
)
def test_genre_words_a_game_developer_writes_choose_the_palette(prompt: str, genre: str) -> None:
    assert traits_of(read_words(prompt)).genres[:1] == (genre,)


@pytest.mark.parametrize(
    ("prompt", "plays", "not_also"),
    [
        ("Spy infiltration, upright bass and brushed snare", "contrabass", "bass"),
        ("Cyberpunk alley, electro bass and arpeggios", "synthbass", "bass"),
        ("Desert caravan, ney flute", "shakuhachi", "flute"),
        ("Mountain monastery, singing bowls", "bells", "choir"),
        ("Toy shop, thumb piano", "kalimba", "piano"),
    ],
)
def test_a_word_inside_an_instrument_phrase_names_no_second_instrument(
    prompt: str, plays: str, not_also: str
) -> None:
    # "upright bass" was a double bass and a second bass line in unison under it.
    voices = {p.voice for p in compose(GenerationRequest(mood="m", variant=0, prompt=prompt)).parts}
    assert plays in voices and not_also not in voices, voices
    # Where the word stands alone it is still read.
    alone = compose(GenerationRequest(mood="m", variant=0, prompt=f"{prompt}; {not_also}"))
    assert {plays, not_also} <= {p.voice for p in alone.parts}


def test_a_mandolin_is_high_and_plays_its_long_notes_as_a_tremolo() -> None:
    # A named mandolin was a bouzouki (a steel-string guitar's range, each long note one
    # pluck dying away). A mandolin's line (its tune, or its counter-line beside a
    # clarinet's tune) sits high and each long note is struck again and again.
    for prompt, bpm in (
        ("A serenade under the balcony, mandolin, tender", 72),
        ("Spring market, mandolin and clarinet, cheerful", 118),
    ):
        for variant in range(4):
            arr = compose(
                GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=30, bpm=bpm)
            )
            voices = {p.voice for p in arr.parts if p.notes}
            assert "mandolin" in voices and "bouzouki" not in voices, (prompt, variant, voices)
            tune = [
                n
                for p in arr.parts
                if p.voice == "mandolin" and p.role in {"melody", "counter"}
                for n in p.notes
            ]
            assert tune and float(np.median([n.p for n in tune])) >= 67, (prompt, variant)
            # Strokes of one pitch in a row, a sixteenth (a thirty-second when slow) apart.
            step = 0.25 if bpm >= 90 else 0.125
            notes = sorted(tune, key=lambda n: n.t)
            repeats = sum(
                1
                for a, b in itertools.pairwise(notes)
                if a.p == b.p and abs(b.t - a.t - step) < 1e-6 and b.v < a.v * 1.2
            )
            assert repeats >= 0.3 * len(notes), (prompt, variant, repeats, len(notes))


def test_a_new_preset_sounds_and_its_numpy_fallback_too() -> None:
    prompt = "Steel drums and harmonica, sunny"
    for soundfont in ("auto", None):
        _, x = render_request(
            GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=4), 44100, soundfont
        )
        assert np.isfinite(x).all() and float(np.sqrt(np.mean(x**2))) > 0.03


# Instruments named with a word of their kind, size or make ("penny whistle": ``segue plan``
# listed "penny" as ignored while the tin whistle's flute played it): the kind's voice, and
# no word of the name listed as ignored.
KIND_NAMES = [
    ("penny whistle", "flute"),
    ("irish whistle", "flute"),
    ("wooden flute", "flute"),
    ("bamboo flute", "flute"),
    ("celtic harp", "harp"),
    ("concert harp", "harp"),
    ("acoustic bass", "bass"),
    ("bass clarinet", "clarinet"),
    ("tenor saxophone", "sax"),
    ("flugelhorn", "trumpet"),
    ("euphonium", "trombone"),
    ("hunting horn", "horn"),
    ("church bells", "bells"),
    ("wind chimes", "bells"),
    ("toy piano", "celesta"),
    ("harmonium", "organ"),
    ("melodica", "harmonica"),
    ("mountain dulcimer", "dulcimer"),
    ("balalaika", "bouzouki"),
    ("mandola", "mandolin"),
    ("highland bagpipes", "bagpipe"),
    ("string quartet", "strings"),
    ("kettle drums", "taiko"),
]


@pytest.mark.parametrize(("name", "voice"), KIND_NAMES)
def test_an_instrument_named_with_its_kind_plays_and_no_word_is_ignored(
    name: str, voice: str, tmp_path: Path
) -> None:
    from segue.core.commands.plan import generator_says

    assert instrument_of(name) == voice
    request = GenerationRequest(mood="m", variant=0, prompt=f"A brass band tune with {name}")
    assert generator_says(SynthGenerator({}, tmp_path), "ignored_words", request) == []
    voices = {p.voice for p in compose(request).parts if p.notes}
    assert voice in voices or f"drum:{voice}" in voices or voice == "taiko", voices
    if "bass" in name and voice != "bass":
        assert "bass" not in voices  # a bass clarinet is no bass line under it


# "Jungle" is the music (drum and bass's forebear) beside its genre's words, the forest
# beside the forest's: "jungle in the flooded underpass, chopped amen breaks and a booming
# reese bass" and "a jungle track with breakbeats and sub bass" gave a flute, a marimba, a
# drone and taiko, as the rainforest does. And "rock a bye" is a lullaby, not rock.
@pytest.mark.parametrize(
    "prompt",
    [
        "Jungle through the night bus depot, chopped amen breaks, reese bass",
        "A jungle track with breakbeats and sub bass",
        "Jungle, reese bass, rain on the rooftops",
        "Rave-era jungle in the abandoned mall, ragga vocals chopped up, rolling breaks",
    ],
)
def test_jungle_beside_its_genres_words_is_drum_and_bass(prompt: str) -> None:
    request = GenerationRequest(mood="m", variant=0, prompt=prompt)
    arr = compose(request)
    voices = {p.voice for p in arr.parts if p.notes}
    assert 160 <= arr.bpm <= 176 and "drum:snare" in voices, (arr.bpm, voices)
    assert not {"drum:taiko", "flute", "marimba", "bass"} & voices, voices  # one synth bass
    # The genre's words chose the kit: `segue plan` does not list them as ignored.
    ignored = SynthGenerator({"soundfont": "none"}, Path(".")).ignored_words(request)
    assert not {"amen", "breaks", "reese", "rave", "ragga"} & set(ignored), ignored


# A folk dance's name makes a dance a band's, not an electronic piece ("a lively polka
# dance in the town hall" is no four-on-the-floor synth track): `segue plan` listed the
# name ("polka", "hornpipe") as ignored while it chose the band.
@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("A lively polka dance in the town hall", "polka"),
        ("A merry hornpipe dance on the harbour wall", "hornpipe"),
        ("A slip jig dance at the crossroads", "slip"),
        ("A ceilidh dance in the village hall", "ceilidh"),
    ],
)
def test_a_folk_dances_name_chooses_the_band_and_is_not_listed_as_ignored(
    prompt: str, name: str
) -> None:
    request = GenerationRequest(mood="m", variant=0, prompt=prompt)
    assert "electronic" not in read_words(prompt).genres
    without = read_words(prompt.replace(name, "").replace(" jig", ""))
    assert "electronic" in without.genres, without.genres  # the name is what chose the band
    ignored = SynthGenerator({"soundfont": "none"}, Path(".")).ignored_words(request)
    assert name not in ignored and "jig" not in ignored, ignored


@pytest.mark.parametrize(
    "prompt",
    [
        "Deep in the jungle, vines and birds, breaks of light through the canopy",
        "Jungle temple ruins, explorers creep through the undergrowth",
        "Steamy jungle river at dusk, frogs and insects",
    ],
)
def test_the_jungle_as_a_place_keeps_its_forest(prompt: str) -> None:
    words = read_words(prompt)
    assert "dnb" not in words.flags and "electronic" not in words.genres, words


@pytest.mark.parametrize(
    "prompt", ["Rock a bye baby on the tree top", "Rockabye for the sleeping prince"]
)
def test_rock_a_bye_is_a_lullaby_not_rock(prompt: str) -> None:
    t = traits_of(read_words(prompt))
    assert "lullaby" in t.moods and "rock" not in t.genres, (t.moods, t.genres)
    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt))
    assert arr.bpm < 80 and arr.meter in {"6/8", "12/8"}, (arr.bpm, arr.meter)
