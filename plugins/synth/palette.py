"""The genre palette: which voices play which roles (and which drum kit) for a genre or mood."""

from __future__ import annotations

from segue.plugins.synth.instruments import VOICES
from segue.plugins.synth.words import CALM_ENERGY, MOOD_WORDS, SCALE_WORDS, Traits, calm_word

ROLES = ("bass", "harmony", "arp", "melody", "counter")

GENRES: dict[str, dict[str, str | None]] = {
    "orchestral": {
        "bass": "cello",
        "harmony": "strings",
        "arp": "strings",
        "melody": "brass",
        "counter": "choir",
        "kit": "orchestral",
    },
    "fantasy": {
        "bass": "cello",
        "harmony": "strings",
        "arp": "harp",
        "melody": "flute",
        "counter": "bells",
        "kit": "frame",
    },
    "synthwave": {
        "bass": "synthbass",
        "harmony": "pad",
        "arp": "arp",
        "melody": "lead",
        "counter": None,
        "kit": "kit",
    },
    "chiptune": {
        "bass": "chipbass",
        "harmony": None,
        "arp": "chip",
        "melody": "chip",
        "counter": None,
        "kit": "chip",
    },
    "lofi": {
        "bass": "bass",
        "harmony": "epiano",
        "arp": "epiano",
        "melody": "bells",
        "counter": None,
        "kit": "lofi",
    },
    "ambient": {
        "bass": "bass",
        "harmony": "pad",
        "arp": "piano",
        "melody": "bells",
        "counter": "choir",
        "kit": "soft",
    },
    "celtic": {
        "bass": "cello",
        "harmony": "strings",
        "arp": "harp",
        "melody": "flute",
        "counter": "strings",
        "kit": "frame",
    },
    "folk": {
        "bass": "pluckbass",
        "harmony": "strings",
        "arp": "guitar",
        "melody": "flute",
        "counter": None,
        "kit": "frame",
    },
    "medieval": {
        "bass": "cello",
        "harmony": "drone",
        "arp": "guitar",
        "melody": "flute",
        "counter": None,
        "kit": "frame",
    },
    "jazz": {
        "bass": "pluckbass",
        "harmony": "epiano",
        "arp": None,
        "melody": "brass",
        "counter": None,
        "kit": "brush",
    },
    "electronic": {
        "bass": "synthbass",
        "harmony": "pad",
        "arp": "arp",
        "melody": "lead",
        "counter": None,
        "kit": "four",
    },
    "rock": {
        "bass": "synthbass",
        "harmony": "organ",
        "arp": "guitar",
        "melody": "lead",
        "counter": None,
        "kit": "kit",
    },
    "scifi": {
        "bass": "synthbass",
        "harmony": "pad",
        "arp": "arp",
        "melody": "bells",
        "counter": "choir",
        "kit": "soft",
    },
    "horror": {
        "bass": "cello",
        "harmony": "drone",
        "arp": "musicbox",
        "melody": "bells",
        "counter": "choir",
        "kit": "tension",
    },
    "asian": {
        "bass": "bass",
        "harmony": "pad",
        "arp": "koto",
        "melody": "flute",
        "counter": None,
        "kit": "orchestral",
    },
    "desert": {
        "bass": "pluckbass",
        "harmony": "drone",
        "arp": "guitar",
        "melody": "flute",
        "counter": None,
        "kit": "frame",
    },
    "western": {
        "bass": "pluckbass",
        "harmony": "strings",
        "arp": "guitar",
        "melody": "flute",
        "counter": None,
        "kit": "frame",
    },
    "tribal": {
        "bass": "bass",
        "harmony": "drone",
        "arp": "marimba",
        "melody": "flute",
        "counter": None,
        "kit": "orchestral",
    },
    "waltz": {
        "bass": "pluckbass",
        "harmony": "strings",
        "arp": "piano",
        "melody": "flute",
        "counter": None,
        "kit": "soft",
    },
    "underwater": {
        "bass": "bass",
        "harmony": "pad",
        "arp": "marimba",
        "melody": "bells",
        "counter": None,
        "kit": "soft",
    },
}


# A festive scene's folk-dance band (a fair, a market, a dance, a celebration): a fiddle's
# tune over an accordion's chords, a flute's counter-line, a guitar's arpeggio, an acoustic
# bass and frame drums with a tambourine (the heroic palette's brass and war drums were a
# fanfare: "Bright hilltop village fair" under "epic orchestral" had brass, choir, taiko).
FESTIVE_BAND: dict[str, str | None] = {
    "bass": "pluckbass",
    "harmony": "accordion",
    "arp": "guitar",
    "melody": "folkfiddle",
    "counter": "flute",
    "kit": "frame",
}
FANFARE_WORDS = frozenset({"heroic", "triumphant", "victory", "noble"})
# Who takes a band's counter-line when its tune's instrument had it too, in order.
BAND_COUNTERS = ("accordion", "flute", "folkfiddle", "clarinet")


def festive(t: Traits) -> bool:
    """Whether ``t`` is a festive scene a folk-dance band plays: a festive character (fair,
    festival, carnival, celebration...), or a scene of one (a market, a dance, a wedding)
    whose character is bright or, beside a size ("epic"), none of its own; not a calm one
    (a quiet evening at the fair) nor a dark one (a night market, melancholic), nor a
    heroic one (a victory's celebration: a fanfare)."""
    if t.energy < CALM_ENERGY and any(calm_word(m) for m in t.moods):
        return False
    if FANFARE_WORDS & set(t.moods):
        return False  # a heroic victory's celebration is a fanfare: brass
    if "festive" in t.moods:
        return True
    if "festive scene" not in t.flags:
        return False
    return t.valence >= 0.3 or not set(t.moods) - SCALE_WORDS


# Everyday bright characters: a happy scene, not a fanfare ("a sleigh ride through snowy
# pines, cheerful" had the heroic palette's brass tune over taiko and timpani).
CHEERFUL_WORDS = frozenset({"happy", "joyful", "cheerful", "playful"})


def cheerful(t: Traits) -> bool:
    """Whether ``t``'s bright character is an everyday one alone (happy, cheerful,
    joyful), with no word of size, adventure or victory beside it: the playful palette's
    winds and hand drums, not the heroic one's brass and war drums."""
    if not CHEERFUL_WORDS & set(t.moods):
        return False
    return not any(
        m.startswith("_") or MOOD_WORDS[m].get("energy", 0.0) >= 0.6
        for m in t.moods
        if m not in CHEERFUL_WORDS and (m.startswith("_") or m in MOOD_WORDS)
    )


def mood_palette(t: Traits) -> dict[str, str | None]:
    """Default voices for a section's character when no genre says otherwise."""
    if festive(t):
        return dict(FESTIVE_BAND)
    if t.energy >= 0.72 and t.valence < 0.3:  # battle, epic, danger
        return {
            "bass": "cello",
            "harmony": "strings",
            "arp": "strings",
            "melody": "brass",
            "counter": "choir" if t.energy > 0.85 else None,
            "kit": "orchestral",
        }
    if t.energy >= 0.6 and t.valence >= 0.3 and not cheerful(t):  # heroic, triumphant
        return {
            "bass": "cello",
            "harmony": "strings",
            "arp": "pizz",
            "melody": "brass",
            "counter": "flute",
            "kit": "orchestral",
        }
    if t.tension >= 0.6 and t.energy < 0.72:  # tense, eerie, mysterious
        if t.energy < 0.3:
            return {
                "bass": "bass",
                "harmony": "choir",
                "arp": "musicbox",
                "melody": "bells",
                "counter": None,
                "kit": "soft",
            }
        return {
            "bass": "cello",
            "harmony": "drone",
            "arp": "pizz",
            "melody": "bells",
            "counter": None,
            "kit": "tension",
        }
    if t.valence <= -0.4 and t.energy < 0.45:  # sad, melancholic
        return {
            "bass": "bass",
            "harmony": "strings",
            "arp": "piano",
            "melody": "strings",
            "counter": None,
            "kit": "soft",
        }
    if t.valence >= 0.5 and t.energy >= 0.4:  # playful, happy
        return {
            "bass": "pluckbass",
            "harmony": None,
            "arp": "marimba",
            "melody": "flute",
            "counter": "pizz",
            "kit": "frame",
        }
    if t.energy < 0.35:  # calm, peaceful
        return {
            "bass": "bass",
            "harmony": "pad",
            "arp": "harp",
            "melody": "flute",
            "counter": "bells",
            "kit": "soft",
        }
    return {
        "bass": "cello",
        "harmony": "strings",
        "arp": "harp",
        "melody": "flute",
        "counter": None,
        "kit": "frame",
    }


# Instruments one player plays a line on (a mandolin, a whistle, a clarinet, an accordion,
# a horn): named, each carries the tune or the counter-line before any voice the prompt
# did not name. (Sections, keyboards and strummed or harped accompaniment are not: they
# keep the part they suit. A cello is one when the prompt names one cello: ``CELLIST``.)
SOLO_VOICES = frozenset(
    {
        "folkfiddle",
        "violin",
        "flute",
        "piccolo",
        "recorder",
        "panflute",
        "ocarina",
        "shakuhachi",
        "clarinet",
        "oboe",
        "bassoon",
        "sax",
        "harmonica",
        "accordion",
        "bagpipe",
        "bouzouki",
        "mandolin",
        "banjo",
        "dulcimer",
        "sitar",
        "shamisen",
        # (a harpsichord's arpeggio beside a wind's tune was no line of its own:
        # "harpsichord and recorder in the candlelit salon")
        "harpsichord",
        "trumpet",
        "horn",
        "trombone",
        "theremin",
    }
)
# The flag ``words`` sets for "cello" written alone ("a solo cello elegy", "cello and
# piano"): one player, who sings the tune; "cellos" and "low strings" are the section's bass.
CELLIST = "cellist"
# And for "viola" written alone ("a lullaby, viola and harp", "a single viola"): one
# player's line, the tune or the counter-line; "violas" stay the section's chords. (A
# lullaby's viola was its chords under the mood's flute, 15 LU under the mix.)
VIOLIST = "violist"
# The held players one of whose written names is one player (a soloist) and the flag.
ONE_PLAYER_FLAGS = {"cello": CELLIST, "viola": VIOLIST}
# The flag ``words`` sets for "unaccompanied": a lone player with no one under it.
UNACCOMPANIED = "unaccompanied"
# And for a hurdy-gurdy (played by the fiddle, ``words``): its drone holds the chords.
HURDY_GURDY = "hurdy gurdy"
# Harped and strummed accompanists: named, each plays a line too (a tune when named first,
# a counter-line after another player), not an arpeggio under an unnamed voice's tune ("a
# solo harp in the empty ballroom" had a flute's tune over the harp's arpeggio 13-18 LU
# under the mix; "banjo and guitar", the banjo's counter-line 13-15 LU under the guitar;
# "harpsichord and recorder in the candlelit salon" the harpsichord's arpeggio 10-16 LU
# under the recorder's tune, no line of its own). (Not a koto: leading over its own
# arpeggio, "koto, celesta and trombone"'s takes 0-1 folded 0.82 per bar alike, "koto and
# shakuhachi"'s shared 62 % of their strongest pitches.)
PLUCKED_LEADS = frozenset({"harp", "guitar", "harpsichord"})


def first_leads(voice: str | None) -> bool:
    """Whether ``voice``, named first, leads: a harp or a guitar, and any held or blown
    soloist (a fiddler, an accordion, a trombone: sorted as held or counter-line voices,
    they played under a whistle, a clarinet or a celesta named after them: "a cheerful
    polka, accordion, clarinet and tuba" had the accordion's chords and counter-line 12-16
    LU under the mix). A mandolin, a banjo or a dulcimer named first keeps its arpeggio
    or counter-line beside a wind's tune (their notes die away)."""
    return voice is not None and (
        voice in PLUCKED_LEADS or (voice in VOICES and VOICES[voice].kind != "pluck")
    )


LINES = ("melody", "counter")
# The ensembles that play a tune as a section (many players in unison).
SECTIONS = frozenset({"brass", "strings", "choir"})
# Soloists who play the chords and the tune at once (an accordion's two hands): taking a
# line, they keep the harmony too (a tavern waltz's accordion on the tune left its chords
# to the palette's drone, held under it, and its takes folded per bar 0.80 alike).
# (A harp on the tune keeps its arpeggio too: in its place a piano's arpeggio, 5-9 LU
# under the mix, covered a calm garden's harp tune, 8-14 LU under it.)
# (A harpsichord's broken chords stay under its line: in their place the palette's harp
# made a named duo a band.)
BOTH_HANDS = frozenset({"accordion", "harp", "harpsichord"})


def soloists(t: Traits) -> list[str]:
    """The named instruments that carry a line, the tune's own first (a clarinet before a
    bassoon or a horn, whose first part is the counter-line; a harmonica before a dulcimer,
    whose first is the arpeggio; a harp or a guitar named first as one of them), the
    sustained ones (an accordion, a cello) after the others; otherwise in the prompt's
    order."""
    lead = leader(t)
    out = [
        i
        for i in t.instruments
        if i in VOICES
        and i not in t.avoided
        and (
            i in SOLO_VOICES
            or i == "guitar"
            or i == lead == "harp"
            or ONE_PLAYER_FLAGS.get(i) in t.flags
        )
        # (a band's guitar keeps its part: a rock arena's under the lead)
        and not (i in PLUCKED_LEADS and set(t.genres) & BAND_GENRES)
    ]
    first = lead if first_leads(lead) else None
    return sorted(out, key=lambda i: (i != first, VOICES[i].roles[0] != "melody", VOICES[i].legato))


def leader(t: Traits) -> str | None:
    """The first voice the prompt names that can carry a tune (a section too: in "strings
    and harp" the harp is not named first)."""
    return next(
        (
            i
            for i in t.instruments
            if i in VOICES and i not in t.avoided and "melody" in VOICES[i].roles
        ),
        None,
    )


def chamber(t: Traits) -> bool:
    """Whether ``t`` is played by the players it names, one to three ("a lone flute", "a
    duet for violin and harp", "a cabin trio"): a solo or chamber word beside a named solo
    instrument, in no band genre (a jazz trio keeps its brushes)."""
    if not {"solo", "chamber"} & t.flags or set(t.genres) & BAND_GENRES:
        return False
    return bool(soloists(t))


# A lone player's accompaniment (``lone_roles``), by the player's kind: a bowed player's own
# plucked strings (pizzicato), a wind's or a brass player's a soft harp. (A plucked player,
# a pianist, a mallet player (a marimba's two mallets a hand) and an accordion, one
# player's two hands, accompany themselves.)
LONE_UNDER = {"strings": "pizz", "cello": "pizz"}
LONE_UNDER_ELSE = "harp"


def alone(t: Traits) -> str | None:
    """The one player a solo mood names ("a lone cello", "a solo violin", "an oboe alone",
    "a solo harp"), who plays the tune over a thin accompaniment of its own (``lone_roles``);
    None when the mood names more players, a band or no solo word."""
    if "solo" not in t.flags or "chamber" in t.flags or set(t.genres) & BAND_GENRES:
        return None
    named = [i for i in t.instruments if i in VOICES and i not in t.avoided]
    if len(named) != 1 or "melody" not in VOICES[named[0]].roles:
        # (A cello is one player here: "a lone cello"; "cellos" reads as the section.)
        return named[0] if named == ["cello"] and CELLIST in t.flags else None
    return named[0]


def lone_roles(player: str, unaccompanied: bool = False) -> dict[str, str | None]:
    """A lone player's parts: the tune, and under it a thin plucked accompaniment
    (``harmony``: ``parts.write_accompaniment``); no bass line, arpeggio, counter-line nor
    kit. (The calm palette's bass a beat, piano arpeggio and strings under
    "a lone cello" were as loud as its tune, 4-7 LU over it.) ``unaccompanied``: the player
    alone, its own chords only (a harp's, a piano's), no one else's ("an unaccompanied
    cello" had pizzicato chords under it, "an unaccompanied trumpet" a harp)."""
    kind = VOICES[player].kind
    own = kind in {"pluck", "piano", "marimba"} or player in BOTH_HANDS
    under = player if own else None if unaccompanied else LONE_UNDER.get(kind, LONE_UNDER_ELSE)
    return {
        "bass": None,
        "harmony": under,
        "arp": None,
        "melody": player,
        "counter": None,
    }


def lines_for_soloists(
    t: Traits, roles: dict[str, str | None], palette: dict[str, str | None]
) -> None:
    """Give the named solo instruments the tune and the counter-line (``roles`` in place).

    A tune the prompt named (a glockenspiel's, a fiddle's) stays; otherwise the first
    soloist takes it (a lone French horn's call had the mood's flute on the tune, the horn
    on the counter-line 13-19 LU under the mix). The counter-line goes to the next soloist
    unless the prompt named its voice; with none left it stays the palette's, but a solo
    mood ("a lone horn", "a solo cello") has none the prompt did not name. A part a soloist
    leaves (a cello's bass, a dulcimer's arpeggio) goes to a named instrument left without
    one, else back to the palette's voice or the role's fallback; an accordion keeps its
    chords (one player's two hands)."""
    solos = soloists(t)
    if "compound" in t.flags:
        # In 6/8 a plucked soloist keeps its arpeggio, louder (``composer.FEATURED_GAIN``):
        # on the tune, its attacks led the onsets, and a tarantella's driving and flowing
        # takes folded per bar 0.86-0.94 alike (0.78 with the flute's tune).
        solos = [i for i in solos if VOICES[i].kind != "pluck"]
    own = set(t.instruments)
    if not solos:
        section = next((i for i in t.instruments if i in SECTIONS), None)
        if (
            "compound" in t.flags
            and section
            and roles.get("melody") not in own
            and section not in t.avoided
        ):
            # In 6/8 a section the prompt names plays the tune no named player took (a
            # barcarolle's "mandolin and strings": a flute's tune nobody named, the strings'
            # chords 15-19 LU under the mix, held softly under its 6/8 plucking); it keeps
            # its chords (in their place the palette's pad played a jig's).
            roles["melody"] = section
        return
    tune, counter = roles.get("melody"), roles.get("counter")
    lead = leader(t)
    if (
        tune in own
        and tune not in solos
        and counter not in own
        and "counter" in VOICES[tune].roles
        # (a celesta named before a harp keeps the tune)
        and not (solos[0] in PLUCKED_LEADS and tune == lead)
    ):
        # A named voice that is no soloist (a glockenspiel) plays the counter-line under
        # the soloist's tune ("a carousel waltz, glockenspiel and accordion": the bells'
        # tune, the accordion's counter-line 11-16 LU under the mix).
        tune, counter = solos[0], tune
    elif tune in SECTIONS and tune in own and counter in solos:
        # A named section on the tune gives it to a named soloist on the counter-line and
        # plays the chords ("a brass band waltz, tuba and cornet": the brass section's
        # tune over strings, the cornet's counter-line 9-10 LU under the mix).
        roles["harmony"] = tune
        tune, counter = counter, None
    elif tune not in own or (
        tune != solos[0] and (tune in PLUCKED_LEADS or (solos[0] == lead and first_leads(lead)))
    ):
        # (A guitar claims the tune when a banjo named before it took the arpeggio, a
        # flute when a harp named before it did: the first player named leads.)
        named_tune = tune in own and tune not in solos and "counter" in VOICES[tune].roles
        tune = solos[0]
        if named_tune and counter == tune:
            # A named voice it took the tune from (a celesta after a trombone) plays the
            # counter-line the soloist leaves.
            counter = roles["melody"]
    left = [i for i in solos if i != tune]
    if counter not in own or (counter == tune and left):
        if left:
            counter = left[0]
        elif {"solo", "chamber"} & t.flags:
            counter = None
    elif counter == tune != roles.get("melody"):
        # The soloist left the counter-line for the tune: the palette's takes it back.
        back = palette.get("counter")
        counter = back if back not in own and back not in t.avoided else None
    placed = {tune, counter} & set(solos)
    for role, voice in roles.items():
        if role in LINES or voice not in placed or voice in BOTH_HANDS:
            continue
        # The part the soloist leaves: a named instrument without a part that suits it,
        # else the palette's voice, else the role's fallback.
        taken = placed | {v for r, v in roles.items() if r != role}
        spare = [
            i
            for i in t.instruments
            if i in VOICES and i not in taken and i not in t.avoided and role in VOICES[i].roles
        ]
        choices = [*spare, palette.get(role), *FALLBACK.get(role, [])]
        roles[role] = next(
            (v for v in choices if v is None or (v not in taken and v not in t.avoided)), None
        )
    roles["melody"], roles["counter"] = tune, counter


KIT_WORDS = {
    "taiko": "orchestral",
    "frame": "frame",
    "tambourine": "frame",  # a hand drum's band: its jingles play beside them (``parts``)
    "shaker": "soft",
    "brush": "brush",
    "snare": "march",
}
# The mood's own drum words: its kit stays whatever the style or its character would give.
DRUM_WORDS = frozenset({"taiko", "drums", "snare"})
# Kits with a snare of their own (a rock or electronic mood's "kick and snare" keeps its kit).
DRUM_KITS = frozenset({"kit", "four", "breaks", "lofi", "brush", "chip"})
FALLBACK = {
    "bass": ["bass", "cello", "pluckbass"],
    "harmony": ["pad", "strings", "organ"],
    "arp": ["harp", "piano", "pizz", "guitar"],
    "melody": ["flute", "bells", "strings"],
    "counter": [None],
}


# The genres whose bass is a synthesiser's (``choose_voices``; rock's synth bass stands in
# for an electric one, which a rock mood naming the bass gets).
ELECTRONIC_GENRES = frozenset({"synthwave", "electronic", "chiptune"})
# Genres that are a band with its own drums and lead, seldom a score-wide style: an
# instrument the prompt names joins the band ("a jazz trio with piano and bass" keeps the
# brushes and the brass tune; "lofi study beats with piano", its lo-fi kit), never swaps it
# for the mood's (frame drums, a flute and pizzicato, whatever the genre).
BAND_GENRES = ELECTRONIC_GENRES | {"jazz", "rock", "lofi"}


def choose_voices(t: Traits) -> tuple[dict[str, str | None], str | None]:
    palette: dict[str, str | None] = {}
    genre = next((g for g in t.genres if g in GENRES), None)
    if genre is not None:
        palette = dict(GENRES[genre])
    # Named instruments the genre's palette does not already have ("arpeggios" in a
    # synthwave prompt is the genre's own arp, not another band). Orchestral is a size more
    # than a band (often the score's style): its tune, counter-line and drums (brass, choir,
    # war drums) are a battle's, so a mood naming only the strings or cello under it (a
    # village fiddle) has them from its own character; naming the brass or choir confirms it.
    own = [i for i in t.instruments if i in VOICES]
    lead = (palette.get("melody"), palette.get("counter"))
    size_only = genre == "orchestral" and not any(i in lead for i in own)
    named = [i for i in own if i not in palette.values() or size_only]
    c = t
    if not palette:
        palette = mood_palette(t)
    elif genre == "orchestral" and not own and festive(t):
        # A festive scene under the orchestral size (often the score's style) and naming no
        # instrument: the orchestra keeps its bass and harmony, the band plays the rest.
        for role in ("arp", "melody", "counter", "kit"):
            palette[role] = FESTIVE_BAND[role]
    elif named and genre not in BAND_GENRES:
        # The mood's own instruments beat a style's: a score-wide "epic orchestral" keeps
        # its bass and harmony, but the tune, the counter-line and the drums come from what
        # the mood names and its character (a village fiddle is not brass, choir and taiko).
        if not set(t.moods) - SCALE_WORDS:
            # No character but a size ("epic orchestral", often the score's style): the
            # named instruments set the scene, not a battle nor a fanfare (the size's energy
            # chose the heroic palette, whose tune is brass): a cheerful scene's palette.
            c = t.with_(
                valence=max(t.valence, 0.5), tension=min(t.tension, 0.5), energy=min(t.energy, 0.55)
            )
        mood = mood_palette(c)
        for role in ("melody", "counter"):
            if palette.get(role) not in named:
                palette[role] = mood[role]
        if not DRUM_WORDS & set(t.instruments):
            palette["kit"] = mood["kit"]
    if (
        palette.get("kit") == "orchestral"
        and own
        and c.valence >= 0.3
        and not {"brass", "choir"} & set(own)
        and not DRUM_WORDS & set(t.instruments)
    ):
        # A bright scene played by the band the mood names (a village fair's fiddle and
        # accordion), whether its palette came from the mood or a style: hand drums and a
        # wind's tune, not a fanfare's brass, choir and war drums (naming those keeps them).
        palette["kit"] = "frame"
        if palette.get("melody") == "brass":
            palette["melody"] = "flute"
        if palette.get("counter") in {"brass", "choir"}:
            palette["counter"] = None
    calm = t.energy < CALM_ENERGY and any(calm_word(m) for m in t.moods)
    if calm and not DRUM_WORDS & set(t.instruments) and palette.get("kit") == "orchestral":
        # A calm mood under an orchestral style (a lazy afternoon, a quiet snowfall): the
        # orchestra's room and strings, a soft kit's brushes and shaker, not war drums.
        palette["kit"] = "soft"
    if calm and genre == "orchestral":
        # And the calm palette's tune, counter-line and arpeggio (a flute over a harp, or a
        # sad mood's strings over a piano) in place of the battle's brass tune, choir and
        # string ostinato, unless the mood names those (a still cloister under "epic
        # orchestral" had a brass tune and a choir over the taiko). A sad mood, whose own
        # palette has no counter-line, keeps the choir's wordless lament.
        mood = mood_palette(t)
        for role, battle in (("melody", "brass"), ("counter", "choir"), ("arp", "strings")):
            if palette.get(role) == battle and battle not in own and mood[role] is not None:
                palette[role] = mood[role]
    kit = palette.pop("kit", None)
    if kit == "four" and "breakbeat" in t.flags:
        kit = "breaks"  # drum and bass, jungle: a breakbeat, not four on the floor
    roles: dict[str, str | None] = {r: palette.get(r) for r in ROLES}
    claimed: set[str] = set()
    for inst in t.instruments:
        if inst == "snare" and (kit in DRUM_KITS or "taiko" in t.instruments):
            continue  # a drum kit's own snare; beside war drums, the orchestra's
        if inst in KIT_WORDS:
            # The mood's own drum words beat a style's kit: a march's snare drums are a
            # military kit, not the orchestra's taiko.
            kit = KIT_WORDS[inst] if kit != "orchestral" or inst in {"taiko", "snare"} else kit
            continue
        if inst == "drums":
            if "march" in t.moods and "taiko" not in t.instruments and kit not in DRUM_KITS:
                kit = "march"  # a march's drums ("a marching band with drums")
            elif kit in {None, "soft"}:
                kit = "orchestral" if "orchestral" in t.genres else "kit"
            continue
        if inst not in VOICES:
            continue
        if inst == "bass" and genre in ELECTRONIC_GENRES:
            # A bass named in an electronic genre ("synthwave, pulsing bass"): the synth
            # bass keeps the line, the electric bass doubles it (``doubling_voices``: a
            # named instrument is never dropped; in the synth bass's place it was an
            # electric one).
            continue
        for role in VOICES[inst].roles:
            if role not in claimed:
                roles[role] = inst
                claimed.add(role)
                break
        else:
            if "counter" not in claimed and "melody" in VOICES[inst].roles:
                roles["counter"] = inst
                claimed.add("counter")
    lines_for_soloists(t, roles, palette)
    if HURDY_GURDY in t.flags and roles.get("harmony") not in own and "drone" not in t.avoided:
        # A hurdy-gurdy's drone strings under its tune (General MIDI has none: the fiddle's
        # tune over the drone's held fifth, not a fiddle over the mood's strings).
        roles["harmony"] = "drone"
    if roles.get("counter") is not None and roles["counter"] == roles.get("melody"):
        # The tune's instrument had the counter-line too (a village fiddle under "epic
        # orchestral": the flute played both): another of the band plays it.
        roles["counter"] = next(
            (v for v in BAND_COUNTERS if v not in roles.values() and v not in t.avoided), None
        )
    for role, voice in roles.items():
        if voice is not None and voice in t.avoided:
            roles[role] = next((v for v in FALLBACK[role] if v not in t.avoided), None)
    if "vocals" in t.flags and roles.get("counter") is None and "choir" not in t.avoided:
        roles["counter"] = "choir"  # no singer here: a wordless choir stands in
    if any(w in t.avoided for w in ("drums", "taiko", "orchestral", "snare")) and kit in {
        "kit",
        "orchestral",
        "four",
        "breaks",
        "frame",
        "march",
    }:
        kit = "soft" if "drums" not in t.avoided else None
    if "drums" in t.avoided:
        kit = None  # "no drums" means none, whichever palette the kit came from
    if t.percussion < 0.2 and kit not in {None, "soft", "lofi"}:
        kit = "soft"
    if kit == "march":
        military_band(t, roles)
    player = alone(t)
    if player is not None and "drums" not in t.instruments:
        return lone_roles(player, unaccompanied=UNACCOMPANIED in t.flags), None
    return roles, kit


def military_band(t: Traits, roles: dict[str, str | None]) -> None:
    """A march's accompaniment (``roles`` in place): a tuba's bass and pizzicato under the
    tune, not the orchestra's held cello and string ostinato (with them the snare drums
    measured 10-17 dB under the pitched parts: a march is an oom-pah, not a wash), unless
    the mood names those."""
    own = set(t.instruments)
    if roles.get("bass") == "cello" and "cello" not in own and "tuba" not in t.avoided:
        roles["bass"] = "tuba"
    if roles.get("arp") in {"strings", "cello"} and roles["arp"] not in own:
        roles["arp"] = "pizz" if "pizz" not in t.avoided else roles["arp"]


def doubling_voices(t: Traits, roles: dict[str, str | None]) -> list[tuple[str, str]]:
    """Named instruments left without a part once the five are taken, each with the part it
    doubles: the first of its roles that plays (a piccolo the tune, a bouzouki the
    arpeggio), so an instrument the prompt names is never dropped."""
    taken = {v for v in roles.values() if v}
    out: list[tuple[str, str]] = []
    for inst in t.instruments:
        if inst not in VOICES or inst in taken or inst in t.avoided:
            continue
        role = next((r for r in VOICES[inst].roles if roles.get(r)), None)
        if role is not None:
            out.append((inst, role))
            taken.add(inst)
    return out
