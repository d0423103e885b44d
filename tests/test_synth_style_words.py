"""A mood's own words beat the score-wide style (``style: epic orchestral``, which the
``style`` transformer appends to every prompt): its instruments fill the parts, its calm
words keep it slow and in major, and the style colours only what the mood leaves open.
Checked on the arrangement the composer writes (voices, tempo, key), not on audio."""

from __future__ import annotations

import numpy as np
import pytest

from segue.core.request import GenerationRequest
from segue.plugins.synth.arrangement import Arrangement
from segue.plugins.synth.composer import compose
from segue.plugins.synth.words import read_words, traits_of

STYLE = ", instrumental, epic orchestral"
# Voices only the style's palette brings (a battle's brass, choir and war drums).
STYLE_ONLY = {"brass", "choir", "drum:taiko", "drum:taiko_hi", "drum:timp", "drum:snare"}
VILLAGE = [
    "Cheery fishing village festival with fiddle, accordion and tin whistle",
    "Quiet hillside hamlet, mandolin and recorder",
    "Lazy afternoon in the orchard, acoustic guitar and flute",
    "Bustling bakery street, accordion and clarinet",
    "Seaside inn at dusk, harp and fiddle",
    "Seaside inn, harp and fiddle",  # no character word at all: size only
    # Only instruments the style's orchestral palette has too (strings, cello): they got
    # its whole battle palette, brass tune, choir and war drums.
    "Village square, fiddle",
    "Mountain pass, cello",
    # A character word of colour only ("bright") left the style's battle palette whole.
    "Bright hilltop village fair with fiddle, accordion and flute",
    "Village fair with fiddle",
]


def _voices(prompt: str, variant: int = 0) -> set[str]:
    arr = compose(GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=16))
    return {p.voice for p in arr.parts if p.notes}


@pytest.mark.parametrize("prompt", VILLAGE)
def test_a_mood_that_names_its_instruments_gets_none_of_the_styles(prompt: str) -> None:
    # "Seaside inn at dusk, harp and fiddle" got the style's brass on the tune: "epic"
    # alone set the character, and a heroic palette's tune is brass.
    for variant in range(4):
        voices = _voices(prompt + STYLE, variant)
        assert not STYLE_ONLY & voices, (variant, voices)


@pytest.mark.parametrize(
    "prompt",
    [
        "Lazy afternoon in the orchard, acoustic guitar and flute",
        "Quiet hillside hamlet, mandolin and recorder",
        "Seaside inn at dusk, harp and fiddle",
        "Gentle meadow at sunrise",
        "Sleepy village under the snow",
        "Lydian dream",  # F lydian: a mode word alone, and "dream" a calm word
    ],
)
def test_a_calm_word_beats_the_styles_energy(prompt: str) -> None:
    # The style's "epic" made these 132 BPM in minor (100 BPM major without the style).
    alone = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16))
    styled = compose(GenerationRequest(mood="m", variant=0, prompt=prompt + STYLE, duration_s=16))
    assert styled.bpm == alone.bpm <= 90, (alone.bpm, styled.bpm)
    assert not styled.key.minor and not alone.key.minor
    traits = traits_of(read_words(prompt + STYLE))
    assert traits.energy < 0.35 and traits.percussion < 0.35, traits


@pytest.mark.parametrize(
    "prompt",
    [
        "Bright hilltop village fair with fiddle, accordion and flute",
        "Cheery fishing village festival with fiddle, accordion and tin whistle",
        "Bustling bakery street, accordion and clarinet",
        "Tarantella, fast and festive, mandolin and tambourine",
    ],
)
def test_a_bright_scene_plays_the_band_it_names_without_a_style_too(prompt: str) -> None:
    # Without any style a bright, lively character chose the heroic palette, and its war
    # drums (taiko, timpani) and brass tune joined the fiddle and accordion.
    for variant in range(2):
        voices = _voices(prompt, variant)
        assert not STYLE_ONLY & voices, (variant, voices)
        assert {"drum:frame_lo", "drum:frame_hi"} & voices, (variant, voices)


@pytest.mark.parametrize(
    "prompt",
    ["Hilltop village fair with fiddle, accordion and flute", "Harvest festival, fiddle"],
)
def test_a_fair_day_is_festive_under_the_style(prompt: str) -> None:
    # "fair" and "festival" were ignored words: the style's "epic" alone set 132 BPM in minor.
    styled = compose(GenerationRequest(mood="m", variant=0, prompt=prompt + STYLE, duration_s=16))
    assert not styled.key.minor and 110 <= styled.bpm < 132, (styled.key, styled.bpm)
    assert "festive" in traits_of(read_words(prompt)).moods


@pytest.mark.parametrize(
    "prompt",
    ["Lazy summer afternoon by the pond", "Quiet snowfall over the rooftops", "Calm exploration"],
)
def test_a_calm_mood_under_the_style_plays_no_war_drums(prompt: str) -> None:
    # Slow and in major already, they kept the orchestral palette's taiko and timpani.
    for variant in range(4):
        voices = _voices(prompt + STYLE, variant)
        assert not {"drum:taiko", "drum:taiko_hi", "drum:timp", "drum:snare"} & voices, voices


@pytest.mark.parametrize(
    "prompt",
    [
        "Moonlight in the empty cloister, still and reverent",
        "A still pond at dawn",
        "A prayerful hymn in the stone chapel",
        "Quiet snowfall over the rooftops",
        "Lazy summer afternoon by the pond",
        "Boats resting in the harbour at night, calm and tender",
    ],
)
def test_a_calm_mood_under_the_style_plays_a_calm_orchestra(prompt: str) -> None:
    # "still and reverent" were no words of the synth's: under the style the cloister was a
    # battle (taiko, a snare, a brass tune and a choir); the others, slow and on the soft
    # kit already, kept the battle's brass tune, choir and low string ostinato.
    for variant in range(4):
        arr = compose(
            GenerationRequest(mood="m", variant=variant, prompt=prompt + STYLE, duration_s=16)
        )
        voices = {p.voice for p in arr.parts if p.notes}
        assert not STYLE_ONLY & voices, (variant, voices)
        assert "strings" in voices and arr.bpm < 90, (variant, voices, arr.bpm)
        arp = {p.voice for p in arr.parts if p.role == "arp" and p.notes}
        assert "strings" not in arp, (variant, arp)


def test_still_is_a_calm_word_only_where_it_describes() -> None:
    assert "calm" in traits_of(read_words("slow and still")).moods
    assert "calm" in traits_of(read_words("a still lake at dawn")).moods
    assert "calm" not in traits_of(read_words("the battle still rages")).moods


def test_a_mood_naming_the_styles_brass_keeps_the_orchestral_palette() -> None:
    for prompt in (
        "Triumphant brass fanfare",
        "Tense skirmish in the canyon, war drums, brass and low strings",
    ):
        voices = _voices(prompt + STYLE)
        assert {"brass", "choir", "drum:taiko"} <= voices, (prompt, voices)


def test_an_epic_orchestral_lullaby_is_slow_and_an_epic_battle_still_fast() -> None:
    lullaby = compose(
        GenerationRequest(mood="m", variant=0, prompt="An epic orchestral lullaby", duration_s=16)
    )
    assert lullaby.bpm <= 70 and lullaby.meter == "6/8" and not lullaby.key.minor
    # Size still counts where the character is not calm: a room for the lullaby...
    assert traits_of(read_words("epic lullaby")).space > traits_of(read_words("lullaby")).space
    # ...and all of it beside an energetic one.
    battle = compose(GenerationRequest(mood="m", variant=0, prompt="Epic battle", duration_s=16))
    assert battle.bpm >= 132
    # "soft" and "warm" say how an instrument plays, not a calm character: still epic.
    assert traits_of(read_words("epic orchestral, soft strings")).tempo == 132


# A festive scene (a fair, a market, a dance, a celebration) naming no instrument: under the
# style it had the orchestral palette whole (brass tune, choir, taiko: a battle's), without
# it the heroic one (brass and war drums); "dance" chose the electronic genre (synth bass,
# lead, four-on-the-floor) beside a festival.
FESTIVE = [
    "Bright hilltop village fair",
    "Busy market day, festive and cheerful",
    "Harvest festival dance",
    "Celebration in the town square",
    "Wedding celebration",
    "Barn dance",
    "Midsummer fair in the town square, merry and bouncy",  # "fair" alone was ignored
]
BAND = {"folkfiddle", "flute", "guitar", "drum:frame_lo", "drum:frame_hi"}


@pytest.mark.parametrize("style", [STYLE, ", instrumental"], ids=["styled", "plain"])
@pytest.mark.parametrize("prompt", FESTIVE)
def test_a_festive_scene_naming_no_instrument_gets_a_folk_dance_band(
    prompt: str, style: str
) -> None:
    for variant in (0, 3):
        voices = _voices(prompt + style, variant)
        assert voices >= BAND, (variant, sorted(voices))
        assert not (STYLE_ONLY | {"synthbass", "lead", "drum:kick"}) & voices, sorted(voices)
        if style != STYLE:  # the orchestra's cello and strings keep the harmony under it
            assert "accordion" in voices, sorted(voices)


@pytest.mark.parametrize(
    "prompt",
    [
        "Village fair with fiddle" + STYLE,
        "Village square with fiddle and flute, cheerful and lively, epic orchestral",
        "Village fair with flute",
    ],
)
def test_the_tune_and_the_counter_line_are_two_instruments_of_the_band(prompt: str) -> None:
    # The flute played both the tune and the counter-line: the same voice twice.
    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16))
    lead = {p.role: p.voice for p in arr.parts if p.role in {"melody", "counter"} and p.notes}
    assert set(lead) == {"melody", "counter"} and lead["melody"] != lead["counter"], lead


@pytest.mark.parametrize(
    ("prompt", "kept"),
    [
        ("Night market, melancholic" + STYLE, "choir"),  # a sad scene
        ("Heroic victory celebration" + STYLE, "brass"),  # a fanfare
        ("Upbeat dance music, neon club", "synthbass"),  # a club's dance is electronic
    ],
)
def test_a_scene_of_another_character_keeps_its_own_palette(prompt: str, kept: str) -> None:
    voices = _voices(prompt)
    assert "folkfiddle" not in voices and kept in voices, sorted(voices)


# Marches naming their drums (snare, side, field, military, marching drums), by themselves
# and under the score-wide style, and a march asking for drums.
MARCHES = [
    "The legion parades to the gate, a proud military march with snare drums and trumpets",
    "Royal parade through the capital, a stately march with side drums and brass",
    "Soldiers drilling in the courtyard, snare drum cadence, martial and determined",
    "A field drum corps leads the regiment over the hill, bold and proud",
    "Victory march of the rebels, military drums and horns, triumphant",
    "The dark army marches on the city, ominous, snare drums and low brass",
    "A brass band marching down the main street, marching drums, cheerful",
    "A slow funeral march for the fallen king, muffled drums",
]


def _march_hits(arr: Arrangement) -> dict[str, list[float]]:
    return {
        p.voice[5:]: sorted(n.t for n in p.notes) for p in arr.parts if p.voice.startswith("drum:")
    }


@pytest.mark.parametrize("style", [STYLE, ", instrumental"], ids=["styled", "plain"])
@pytest.mark.parametrize("prompt", MARCHES)
def test_a_marchs_own_drums_are_a_snare_led_military_kit(prompt: str, style: str) -> None:
    # "a proud military march with snare drums" under "epic orchestral" played the
    # orchestra's taiko kit (snares 1 % of its hits; taiko, high taiko and timpani).
    for variant in range(4):
        arr = compose(
            GenerationRequest(mood="m", variant=variant, prompt=prompt + style, duration_s=30)
        )
        hits = _march_hits(arr)
        assert not {"taiko", "taiko_hi", "timp", "frame_lo"} & set(hits), (variant, sorted(hits))
        snare, bass = hits["fieldsnare"], hits["bassdrum"]
        beat_s = 60.0 / arr.bpm
        # The snare leads: most of the kit's strokes, a bass drum on every bar's downbeat.
        assert len(snare) >= 0.6 * sum(len(t) for t in hits.values()), (variant, len(snare))
        bars = {round(t / arr.beats_per_bar, 6) for t in bass}
        assert set(range(arr.bars)) <= bars, (variant, sorted(bars))
        # Flams: accents with a grace stroke 20-40 ms before them.
        gaps = np.diff(snare) * beat_s
        assert np.sum((gaps > 0.015) & (gaps < 0.045)) >= arr.bars, variant
        # A roll into every phrase's end: a run of thirty-seconds in every fourth bar's
        # last beat.
        for bar in range(3, arr.bars, 4):
            end = (bar + 1) * arr.beats_per_bar
            run = [t for t in snare if end - 1 - 1e-6 <= t < end]
            assert len(run) >= 8, (variant, bar, run)
        # A cymbal crash at each section's start after the first (not on the loop's seam).
        starts = {float(s.start_bar * arr.beats_per_bar) for s in arr.sections[1:]}
        assert starts <= set(hits.get("crash", [])), (variant, starts)


@pytest.mark.parametrize(
    ("prompt", "kit_voice"),
    [
        ("Gritty garage rock, kick and snare, electric guitar", "drum:kick"),
        ("Epic battle, war drums and snare", "drum:taiko"),
        ("Synthwave night drive, snare and arpeggios", "drum:kick"),
    ],
)
def test_a_snare_beside_another_kit_is_that_kits(prompt: str, kit_voice: str) -> None:
    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16))
    voices = {p.voice for p in arr.parts if p.notes}
    assert kit_voice in voices and "drum:fieldsnare" not in voices, sorted(voices)


@pytest.mark.parametrize(
    ("prompt", "kit", "named"),
    [
        ("Jazz trio with piano and bass", "drum:brush", "piano"),
        ("Smoky jazz club, upright bass and piano", "drum:brush", "contrabass"),
        ("Lofi study beats with piano", "drum:kick", "piano"),
        ("Lo-fi hip hop with guitar", "drum:kick", "guitar"),
        ("Rock anthem with electric guitar", "drum:kick", "guitar"),
    ],
)
def test_an_instrument_named_in_a_band_genre_joins_the_band(
    prompt: str, kit: str, named: str
) -> None:
    # A jazz trio's piano and bass had frame drums, a flute tune and pizzicato, and "lofi
    # study beats with piano" had no lo-fi kit: the mood's band instead of the genre's.
    for variant in range(4):
        voices = _voices(prompt, variant)
        assert {kit, named} <= voices and not {"drum:frame_lo", "pizz", "flute"} & voices, (
            variant,
            voices,
        )


# Prompts naming one to three solo instruments: (prompt, the voices that may carry the
# tune, the voices that must play the tune or the counter-line, whether the mood is a solo).
SOLOISTS = [
    (
        "A lone French horn calls across the empty valley, noble and wistful",
        {"horn"},
        {"horn"},
        True,
    ),
    ("Cannon crews march up to the ridge, field drums and horns, stern", {"horn"}, {"horn"}, False),
    (
        "A playful duet for clarinet and bassoon in the toy shop",
        {"clarinet"},
        {"clarinet", "bassoon"},
        False,
    ),
    ("A solo cello elegy at the graveside", {"cello"}, {"cello"}, True),
    ("A mournful lament for the fallen king on a lone cello", {"cello"}, {"cello"}, True),
    ("A slow wistful waltz for falling leaves, cello and piano", {"cello"}, {"cello"}, False),
    (
        "Mountain cabin trio: hammered dulcimer, banjo and harmonica",
        {"dulcimer", "banjo", "harmonica"},
        {"banjo", "harmonica"},
        False,
    ),
    ("Sunset over the moors, a solo trumpet, proud and lonely", {"trumpet"}, {"trumpet"}, True),
    ("Quiet hillside hamlet, mandolin and recorder", {"recorder"}, {"recorder", "mandolin"}, False),
    ("Mountain shepherd at dawn, tin whistle", {"flute"}, {"flute"}, False),
    ("Smoky jazz club at midnight, saxophone", {"sax"}, {"sax"}, False),
    ("Highland gathering, bagpipes and fiddle, proud", {"bagpipe"}, {"bagpipe"}, False),
    (
        "Spring market, clarinet and mandolin, cheerful",
        {"clarinet"},
        {"clarinet", "mandolin"},
        False,
    ),
    ("Bazaar at noon, oboe and dulcimer, lively", {"oboe"}, {"oboe", "dulcimer"}, False),
    # A named section's tune gives way to a named soloist ("a brass band waltz, tuba and
    # cornet" had the brass section's tune, the cornet's counter-line).
    (
        "A brass band waltz at the seaside bandstand, tuba and cornet",
        {"trumpet"},
        {"trumpet"},
        False,
    ),
    ("Strings and oboe at the palace garden, tender", {"oboe"}, {"oboe"}, False),
    ("A choir and a flute in the cold abbey, solemn", {"flute"}, {"flute"}, False),
    # A held or blown player named first leads ("a cheerful polka, accordion, clarinet and
    # tuba" had the clarinet's tune, the accordion's chords and counter-line 12-16 LU under
    # the mix; "bassoon, harp and piccolo" the piccolo's tune).
    (
        "A merry polka in the beer garden, accordion and clarinet",
        {"accordion"},
        {"accordion", "clarinet"},
        False,
    ),
    ("Bassoon, harp and piccolo in the goblin market, sly", {"bassoon"}, {"bassoon"}, False),
    ("Trombone, banjo and glockenspiel in the toy circus", {"trombone"}, {"trombone"}, False),
    # In 6/8 a plucked soloist keeps the arpeggio (``palette.lines_for_soloists``), a wind
    # named beside it takes the tune.
    ("A rollicking jig on the quay, mandolin and tin whistle", {"flute"}, {"flute"}, False),
]


@pytest.mark.parametrize("style", [STYLE, ", instrumental"], ids=["styled", "plain"])
@pytest.mark.parametrize(("prompt", "tunes", "lines", "solo"), SOLOISTS)
def test_named_solo_instruments_carry_the_tune_and_the_counter_line(
    prompt: str, tunes: set[str], lines: set[str], solo: bool, style: str
) -> None:
    # "A lone French horn calls across the empty valley" had a flute's tune nobody asked
    # for, the horn on the counter-line; "a solo cello elegy" the string section's tune and
    # the cello on the bass; "clarinet and bassoon" the bassoon's counter-line in the B
    # section alone; "Bazaar, oboe and dulcimer" a flute's counter-line nobody asked for.
    for variant in range(4):
        arr = compose(
            GenerationRequest(mood="m", variant=variant, prompt=prompt + style, duration_s=30)
        )
        played = {(p.role, p.voice) for p in arr.parts if p.notes}
        tune = {v for r, v in played if r == "melody"}
        heard = {v for r, v in played if r in {"melody", "counter"}}
        assert tune and tune <= tunes, (variant, tune)
        assert lines <= heard, (variant, sorted(heard))
        if solo:  # nothing the prompt did not name over the soloist
            assert heard == tune, (variant, sorted(heard))
        # A named counter-line plays wherever the tune does; a soloist, from the top.
        tune_part = next(p for p in arr.parts if p.role == "melody" and p.notes)
        tune_bars = {int(n.t // arr.beats_per_bar) for n in tune_part.notes}
        if solo:
            assert min(tune_bars) <= 1, (variant, min(tune_bars))
        for p in arr.parts:
            if p.role == "counter" and p.voice in lines and p.voice not in tunes:
                bars = {int(n.t // arr.beats_per_bar) for n in p.notes}
                assert len(bars) >= 0.6 * len(tune_bars), (variant, len(bars), len(tune_bars))


def test_a_named_tambourine_jingles_beside_the_frame_drums() -> None:
    # "A whirling tarantella, mandolin and tambourine" read the tambourine as frame drums:
    # no jingle in the 6/8 bar.
    for prompt in (
        "A whirling tarantella in the piazza, mandolin and tambourine",
        "A village wedding dance with accordion and tambourine",
        "Gypsy campfire, violin and tambourine, wild",
    ):
        for variant in range(4):
            arr = compose(
                GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=30)
            )
            hits = {p.voice: len(p.notes) for p in arr.parts if p.role == "drums"}
            assert {"drum:frame_lo", "drum:tambourine"} <= set(hits), (prompt, variant, hits)
            assert hits["drum:tambourine"] >= 0.1 * sum(hits.values()), (prompt, variant, hits)


# Named sleigh bells were the orchestral kit's shaker, which its straight take has none of:
# "a sleigh ride through snowy pines with sleigh bells, cheerful" had no jingle in take 0.
SLEIGH = [
    "A sleigh ride through snowy pines with sleigh bells, cheerful",
    "Winter market with jingle bells and accordion, merry",
    "Snowy evening ride, sleigh bells and flute, playful",
    "Christmas eve by the fire, sleigh bells, calm and warm",
    "Racing downhill on the toboggan, sleigh bells, fast and thrilling",
]


@pytest.mark.parametrize("prompt", SLEIGH)
@pytest.mark.parametrize("style", ["", ", instrumental, epic orchestral"])
def test_named_sleigh_bells_jingle_on_every_take(prompt: str, style: str) -> None:
    for variant in range(4):
        arr = compose(
            GenerationRequest(mood="m", variant=variant, prompt=prompt + style, duration_s=30)
        )
        hits = {p.voice: len(p.notes) for p in arr.parts if p.role == "drums" and p.notes}
        assert hits.get("drum:sleighbells", 0) >= 0.1 * sum(hits.values()), (variant, hits)


@pytest.mark.parametrize(
    "prompt",
    [
        "A sleigh ride through snowy pines with sleigh bells, cheerful",
        "Happy picnic in the park",
        "A cheerful morning in the bakery",
        "Joyful spring meadow with birdsong",
    ],
)
def test_an_everyday_cheerful_mood_is_no_fanfare(prompt: str) -> None:
    # With no genre, "cheerful" (energy 0.6) chose the heroic palette: a brass tune over
    # taiko and timpani for a sleigh ride. A happy scene plays winds and hand drums.
    for variant in range(4):
        arr = compose(GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=30))
        voices = {p.voice for p in arr.parts if p.notes}
        assert not {"brass", "drum:taiko", "drum:timp"} & voices, (variant, sorted(voices))


@pytest.mark.parametrize(
    ("prompt", "voice"),
    [
        ("A lone violin plays by the ruined chapel, sorrowful and slow", "violin"),
        ("A solo violin lament in the autumn rain", "violin"),
        ("Violin and piano in the candlelit study, tender", "violin"),
        ("Soaring violins over the battlefield, heroic", "strings"),
        ("Sweeping strings at the royal ball", "strings"),
    ],
)
def test_one_violin_is_a_soloist_and_violins_the_section(prompt: str, voice: str) -> None:
    # "A lone violin" was the string section's tune (General MIDI's violin is in both
    # SoundFonts); "violins" and "strings" stay the section.
    for style in ("", STYLE):
        arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt + style))
        voices = {p.voice for p in arr.parts if p.notes}
        assert voice in voices and ("violin" in voices) == (voice == "violin"), sorted(voices)


@pytest.mark.parametrize(
    "prompt",
    [
        "A tender duet for violin and harp by the palace fountain",
        "A playful duet for clarinet and bassoon in the toy shop",
        "Mountain cabin trio: hammered dulcimer, banjo and harmonica",
        "A duo of oboe and guitar on the terrace, wistful",
    ],
)
def test_a_duet_or_trio_plays_no_counter_line_it_did_not_name(prompt: str) -> None:
    # "A duet for violin and harp" had a flute's tune and a bells counter-line nobody asked
    # for; a duet's or a trio's lines are its players'.
    for style in ("", STYLE):
        for variant in range(4):
            req = GenerationRequest(mood="m", variant=variant, prompt=prompt + style)
            arr = compose(req)
            named = set(traits_of(read_words(prompt)).instruments)
            lines = {p.voice for p in arr.parts if p.notes and p.role in {"melody", "counter"}}
            assert lines and lines <= named, (variant, sorted(lines), sorted(named))


# A dance the prompt plays on acoustic instruments or names as a folk dance, or a "house"
# that is a place: a band, not a drum machine ("firelight dance with castanets and guitar"
# had a synth lead, pad and bass over a four-on-the-floor kit; "a stomping jig in the cider
# house, fiddle and bodhran" a synth lead, arpeggio and bass). (prompt, its named drums)
FOLK_DANCE_WORDS = [
    ("Firelight dance with castanets and guitar, passionate", {"castanets"}),
    ("A stomping jig in the cider house, fiddle and bodhran", {"frame_lo", "frame_hi"}),
    ("A flamenco dance at midnight, guitar and castanets", {"castanets"}),
    ("Stomping dance in the mead hall, bodhran and fiddle, wild", {"frame_lo", "frame_hi"}),
    ("A reel for the harvest dance, fiddle and bodhran", {"frame_lo", "frame_hi"}),
    ("Dancing on the quay, a hornpipe with accordion", set()),
    ("Night in the old farm house, banjo and harmonica", set()),
]
MACHINE = {"synthbass", "lead", "pad", "arp", "drum:kick", "drum:clap", "drum:hat"}


@pytest.mark.parametrize("style", ["", STYLE], ids=["plain", "styled"])
@pytest.mark.parametrize(("prompt", "drums"), FOLK_DANCE_WORDS)
def test_a_folk_dance_or_a_dance_on_acoustic_instruments_is_no_electronic_piece(
    prompt: str, drums: set[str], style: str
) -> None:
    for variant in range(4):
        arr = compose(GenerationRequest(mood="m", variant=variant, prompt=prompt + style))
        voices = {p.voice for p in arr.parts if p.notes}
        assert not MACHINE & voices, (variant, sorted(voices))
        hits = {p.voice[5:]: len(p.notes) for p in arr.parts if p.voice.startswith("drum:")}
        # the named hand drums play, each take: 10 % of the kit's hits at least
        share = sum(hits.get(d, 0) for d in drums) / max(1, sum(hits.values()))
        assert not drums or share >= 0.1, (variant, hits)


@pytest.mark.parametrize(
    "prompt",
    [
        "Basement house session, four on the floor, jazzy organ stabs",
        "Deep house groove in a night club, electronic dance",
        "Upbeat dance music, neon club",
        "A deep house track with piano",
        "Techno dance party with guitar",
    ],
)
def test_an_electronic_word_keeps_a_dance_electronic(prompt: str) -> None:
    voices = _voices(prompt)
    assert {"synthbass", "drum:kick"} <= voices, sorted(voices)
