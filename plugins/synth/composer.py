"""The composer: from a request to an arrangement (tempo, key, sections, harmony, parts).

It reads the request's words and plan, then draws on the modules that own each concept:
``form`` (sections, the seam), ``harmony`` (chords, progressions), ``palette`` (voices per
genre and mood) and ``parts`` (the part writers); ``arrangement`` holds what it writes.

Time is counted in beats. A loop is a whole number of bars, and its seam (the jump from the
end back to the top) must be the calmest of its bar lines:

- the last bar's dominant resolves halfway through it, so the tonic holds across the seam;
- from there the first section's texture enters early (a pickup into the top), so a change
  of section never falls on the seam;
- every part pushes the first downbeat (its notes start half a beat early and hold across),
  and sustained notes tie over it, so the top is not an attack;
- nothing periodic (fills, timpani, cadences) happens only at the top or only before it.

The key is made unmistakable: a tonic pedal in the bass (variant 0's; see ``takes``), the
tonic chord's third in the bass line and on the tune's strong beats, tonic-triad common
tones in the tune, no borrowed chords in major. Sections (from a composition plan, or
automatic A/B/A'/C forms) change the arrangement at their boundaries. Composition choices
use ``random.Random`` seeded from a SHA-256 of the request (never ``hash()``), so a request
always gives the same piece, and another ``variant`` gives another take in the same tempo
and key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from random import Random
from typing import Any

from segue.core.request import GenerationRequest
from segue.plugins.synth.arrangement import Arrangement, Note, Part, Section
from segue.plugins.synth.drums import (
    DRUM_GAIN,
    ELECTRONIC_FOURTH_BPM,
    heartbeat_stroke,
)
from segue.plugins.synth.form import (
    Dynamics,
    anticipate,
    auto_sections,
    cue_levels,
    marks_shape,
    plan_dynamics,
    plan_sections,
    plan_shape,
    read_dynamics,
    section_energy,
    tie_across_seam,
)
from segue.plugins.synth.harmony import progression_pool
from segue.plugins.synth.instruments import VOICES
from segue.plugins.synth.palette import (
    LINES,
    alone,
    chamber,
    choose_voices,
    doubling_voices,
    soloists,
)
from segue.plugins.synth.parts import (
    EXTRA_PERCUSSION,
    FAST_HALFTIME,
    KIT_FOURTH,
    MID_FOURTH,
    OFFBEAT_KITS,
    SLOW_FOURTH,
    Context,
    meter_feel,
    write_accompaniment,
    write_arp,
    write_bass,
    write_counter,
    write_drums,
    write_extra_percussion,
    write_harmony,
    write_melody,
)
from segue.plugins.synth.takes import plan_harmony
from segue.plugins.synth.words import (
    MODES,
    Key,
    Traits,
    Words,
    bpm_in_prompt,
    key_in_prompt,
    meter_in_prompt,
    parse_key,
    read_words,
    styles_words,
    tempo_from_words,
    traits_of,
)

# --- seeds ----------------------------------------------------------------------------------------
SECTION_DB_PER_ENERGY = 14.0  # dB between a section of energy 0 and one of energy 1
# How much heavier a half-time take's drums hit, per unit of the mood's drive (energy over 0.6).
HALFTIME_WEIGHT = 0.7
# Drums that play between the downbeats: what action moods raise most.
DRIVING_DRUMS = {
    "snare",
    "fieldsnare",
    "shaker",
    "tambourine",
    "taiko_hi",
    "hat",
    "ohat",
    "clap",
    "frame_hi",
}
# How much louder a driven mood's frame drums play, per unit of drive, beside the boost
# above: a folk dance's bodhran and tambourine up front as an action mood's taiko are (a
# village fair's percussive energy was 11.5-13.7 dB under its harmonic with TimGM6mb).
FRAME_DRIVE = 3.0
# Kits whose sampled drums a driven mood levels to the numpy drums (``Arrangement``).
LEVELLED_KITS = frozenset({"orchestral", "frame", "march"})
# How much louder the march kit plays than the other kits' drums: a military march is led
# by its snare drums, up front beside the brass (at the orchestral kit's levels its
# percussive energy was 10-12 dB under its harmonic).
MARCH_GAIN = 2.8
# Per feel: half-time's fewer strokes heavier (its take measured 2-3 dB further under its
# pitched parts than the others').
MARCH_FEEL = {"halftime": 1.35}
# How much harder a composition plan's climax strikes its drums than its other sections
# (its full orchestra, choir and counter-line join at once: "thundering climax" measured
# its percussive energy 10-11 dB under its harmonic at the other sections' drum level).
PEAK_DRUMS = 1.6
# A section's mark at this level or over is a peak (fortissimo, thunderous, a climax).
PEAK_LEVEL = 0.85
# A peak's drums hit as a mood of this drive's (an action mood's: energy 0.95).
PEAK_DRIVE = 0.35
# A peak's drums below this tempo strike harder by the square root of the ratio: as much
# percussive power a second as an action mood's (fewer strokes, each heavier: an arch
# plan's climax at 96 BPM measured its percussive energy 10-11.5 dB under its harmonic on
# its straight and half-time takes, a march plan's at 88 on 6 of 16).
PEAK_TEMPO = 120.0
# A plan's loudest section this far over its quietest is its climax, a peak whatever its
# words (an arch's "raging at full tilt, ferocious, crashing gongs and war drums" at 0.68
# and a crescendo's "ear-splitting, every instrument blasting" at 0.9 struck their drums
# as the mood's: 10-14 dB under the pitched parts).
CLIMAX_RISE = 0.5
# A peak's drums in a slow half-time take strike harder again: two big hits a bar and light
# ones between (a crescendo's "thunderous ... pounding drums" at 86 BPM measured its half-time
# take's percussive energy 10.2-10.3 dB under its harmonic with TimGM6mb, the other takes'
# 7.9-8.5).
SLOW_HALF_PEAK = 1.7
# The kit a plan's peak plays where its mood's would be the soft one (a felt thump and a
# shaker: a calm mood's crescendo to "fortissimo, radiant" at 76 BPM measured its percussive
# energy 13-15 dB under its harmonic with FluidR3, a waltz's "thunderous, tutti" 13-18; the
# thump, low and ringing, is heard as harmonic energy, and struck 2.7 times harder it moved
# the balance 0.2 dB): hand drums' slaps and jingles, the orchestra's drums under an
# orchestral style.
PEAK_KITS = {"soft": "frame"}
# The energy a peak's drums play at, at least: their busy bar (``drums.bar_pattern``).
PEAK_BUSY = 0.75
# A plan's section at this energy or over is loud: its band and kit are a loud mood's.
LOUD_LEVEL = 0.7
# A plan's section under this energy is hushed: its tune rests.
HUSHED = 0.2


# Role gains of a part the prompt named a solo instrument for (``palette.soloists``), beside
# ``role_gain``'s: its counter-line or arpeggio is a line a listener follows (a toy shop
# duet's bassoon measured 14-20 LU under the mix at the counter-line's 0.45, a cabin
# trio's hammered dulcimer 11-12 LU under it on the arpeggio's 0.6).
FEATURED_GAIN = {"counter": 0.5, "arp": 0.8}
# A featured line in a low register (a bassoon's, a trombone's: their range's middle under
# middle C) louder again: matched to the other voices by RMS, it is heard softer (a duet's
# bassoon stayed 10-12 LU under the mix on FluidR3 at a clarinet's gain).
LOW_LINE = 1.8
# Those low, dark voices (the middle of a trombone's range is middle C, a horn's a fourth
# over it: at the counter-line's gain "harmonica and trombone" had the trombone 12.5 LU
# under the mix, "hurdy gurdy, piccolo and french horn" the horn 14.7).
LOW_LINES = frozenset({"bassoon", "trombone", "horn"})
# And on a counter-line a cello's (a cellist's tenor line under a sitar's tune measured 13-17
# LU under the mix).
LOW_COUNTERS = LOW_LINES | {"cello"}
# A plucked soloist's counter-line or arpeggio (a mandolin's, a dulcimer's) louder still:
# its notes die away where a wind's hold (a cabin trio's dulcimer measured 10-12 LU under
# the mix at the featured gain). (Not its tune: louder, a tarantella's mandolin tune led
# the onsets, and its takes folded per bar 0.94-0.96 alike.)
PLUCKED_LINE = 1.5
PLUCKED_TUNE = 1.8
# Its counter-line louder again (under a fiddle's tune a hoedown's banjo counter-line was
# 13-15 LU under the mix at PLUCKED_LINE, the arpeggio's gain).
PLUCKED_COUNTER = 3.0
# A named low voice on the tune, now that one named first leads (a trombone's tune in
# "trombone, ukulele and celesta" was 5-12 LU under the mix, a bassoon's 4-11 beside a
# piccolo's counter-line). Not in a driven mood, where the tune is at the front with the
# drums: "the leviathan drags the galleon, thundering drums, blaring trombones" at 156 BPM
# had its drums 10.1-10.5 dB under the pitched parts with it (TimGM6mb, librosa's HPSS).
LOW_TUNE = 1.5
# A named bowed player's counter-line (a violin's, a cello's, an erhu's) louder: its notes
# swell in where a wind's or a reed's speak at once (a cello's under a sitar's tune measured
# 13-17 LU under the mix; a draft's one-player fiddle under a ceilidh accordion's, 9-12).
BOWED_COUNTER = 1.4
BOWED = frozenset({"strings", "cello"})
# General MIDI's fiddle (an erhu, a hurdy-gurdy, a nyckelharpa) louder again there: its
# preset is quiet on short notes (a slip jig's fiddle tune on it measured 12 LU under the mix).
FIDDLER_COUNTER = 1.4
# And a named struck voice's (a celesta's, a glockenspiel's: "trombone, ukulele and celesta"
# had the celesta's counter-line 10-12 LU under the mix once the trombone led).
STRUCK_COUNTER = 1.5
# The kinds whose notes die away so: plucked strings, and mallets (a named marimba's
# counter-line measured 11-14 LU under the mix at the featured gain, under a koto's tune in
# a draft where a koto named first led; 5-10.6 so).
DYING = frozenset({"pluck", "marimba"})
# A held voice the prompt names, on the chords (an organ, the strings, a choir) louder: a
# part a listener hears ("a slow 12/8 shuffle, electric guitar and organ" had the organ
# 11-16 LU under the mix at the chords' gain, "a carousel waltz, bright glockenspiel and
# strings" the strings 9-15).
NAMED_CHORDS = 2.4
# (Not a pad's: a wash under the rest, named or not; louder, a calm mood's "ambient pads and
# bells" was heard at 4/3 of its tempo.)
NAMED_CHORD_VOICES = frozenset({"organ", "choir"})
# A named string section on a waltz's chords (3/4) louder again: its "pah-pah" strokes are
# short, and its bows speak slowly ("a lilting waltz at the frozen ice rink, celesta and
# strings" had them 10-11 LU under the mix, "a dashing Viennese waltz ..., sweeping strings
# and flutes" 11-13). (Not a held wash in 4/4: louder, calm strings were heard at 4/3 of
# their tempo.)
NAMED_WALTZ_STRINGS = 1.6
# A named tuba on the bass (its own part) is heard there: a march's tuba measured 9-13 LU
# under the mix at the bass's gain ("a frontier patrol, military drums and tuba").
NAMED_BASS = {"tuba": 2.0}
# Counter-lines that are held chords' top voices (``write_counter``), not a player's line.
HELD_COUNTERS = frozenset({"choir", "strings", "pad", "organ", "drone", "brass"})
# Named percussion that plays with the frame drums' high skin when they play (a tambourine
# in the hand that strikes the skin), its own figure (``parts.EXTRA_PERCUSSION``) otherwise.
WITH_THE_SKIN = frozenset({"tambourine"})
# Named percussion shaken with the kit's busiest light drum (its ticks, its shaker, its high
# skin) when a kit plays it, so each take keeps its own figure; its own figure otherwise.
# ("A sleigh ride with sleigh bells" read them as the orchestral kit's shaker, which its
# straight take has none of: no jingle in take 0.)
FOLLOW_THE_TICKS = frozenset({"sleighbells"})
# A kit's low drums, which a shaken sound never follows.
LOW_DRUMS = frozenset({"kick", "taiko", "frame_lo", "bassdrum", "timp", "chip_kick", "crash"})
# A lone soloist's accompaniment's velocity (``parts.write_accompaniment``) and its part's
# gain against the tune's: thin and soft, the soloist leads.
LONE_VELOCITY = 0.5
LONE_ACCOMPANIMENT_GAIN = 2.0
# A harp under a double reed's or a brass player's tune softer again (a bowed player's
# pizzicato keeps 2.0): at 2.0 a solitary bassoon's, a lone trumpet's, a single trombone's
# and (TimGM6mb) a single oboe's harp was 3.4-6 LU under the player (20 s), a band under it
# rather than an accompaniment. (Not a clarinet's or a flute's, 7.5-15 LU over their harp:
# softer, the harp no longer kept the pulse of a lone clarinet's half-time take, "moonlit
# dunes, a lone clarinet" at 74 BPM heard at 287.)
LONE_HARP_UNDER = 0.6
LONE_SOFT_PLAYERS = frozenset({"bassoon", "oboe", "trumpet", "trombone", "horn"})
# A player accompanying itself (a guitarist's own broken chords) softer: the same voice, as
# loud, was 1-4 LU over its tune.
LONE_OWN_GAIN = 0.7
# Voices whose tune sits an octave over their range (a cello sings its tune in the tenor,
# not on its bass line's low strings).
TUNE_OCTAVE = {"cello": 1}


# A slow compound meter's held chords (pad, organ, strings: below 90 BPM, a lullaby's 6/8
# or a slow 12/8) under its plucked figures, by this much: their slow swells, as loud as
# the harp, filled the onset strength between the beats, and a beat tracker (librosa's,
# its prior at 120 BPM) heard the eighths in pairs, at 3/2 of the tempo (66 BPM read at
# 99.4 on the lullaby's straight and driving takes).
SLOW_COMPOUND_HELD_GAIN = 0.35


# Slow 4/4 (below 100 BPM): struck tunes (bells, celesta) step out of the other takes'
# way per feel, (beats later, velocity). Their attacks lead a calm mood's onset strength,
# and on 1 and 3 in every feel they folded the takes alike, bar after bar (a grotto's
# per bar 0.82-0.90): the straight take's tune answers on 2 and 4, the driving take's
# falls on the lilt's sixteenth pickups, softer (on the off-beat eighths, or louder, they
# were heard at twice the tempo); half-time keeps 1 and 3. The fourth take (triplet below
# 100 BPM: ``feel_of``) puts it on each beat's second stroke (``Context.stroke``), softer
# still.
SLOW_BELL_VOICES = frozenset({"bells", "celesta"})
SLOW_BELL_SHIFT = {"straight": (1.0, 1.0), "driving": (0.75, 0.7)}
HEARTBEAT_BELL_VELOCITY = 0.5


def shifted_bells(notes: list[Note], ctx: Context) -> list[Note]:
    """``notes`` moved by the take's ``SLOW_BELL_SHIFT`` (the fourth take's to its second
    stroke; the same notes in the other feels)."""
    if ctx.feel == SLOW_FOURTH:
        shift, vel = ctx.stroke, HEARTBEAT_BELL_VELOCITY
    else:
        shift, vel = SLOW_BELL_SHIFT.get(ctx.feel, (0.0, 1.0))
    if not shift:
        return notes
    return [Note(n.t + shift, n.d, n.p, n.v * vel, n.b) for n in notes]


# Kits whose half-time feel keeps beats 2 and 4 audible up to 136 BPM (the others, and
# faster tempos, are heard at half the tempo: their variant plays ``parts.FAST_HALFTIME``).
# A four-on-the-floor kit's half-time keeps the pulse up to this tempo (its kick on every
# beat; techno at 138-140 BPM heard at its tempo by librosa's and the tests' trackers).
FOUR_HALFTIME_BPM = 140.0
HALFTIME_KITS = frozenset({"kit", "four", "chip", "orchestral", "frame", "tension", "march"})


def halftime_keeps_the_pulse(
    bpm: float, kit: str | None, beats_per_bar: int = 4, steps_per_beat: int = 4
) -> bool:
    """Below 100 BPM a half-time feel's half tempo is too slow to be heard as the beat;
    up to 136 BPM only with a kit that keeps beats 2 and 4 (measured: tests/test_synth_variants).
    3/4 and compound meters play their broad feel instead (see ``parts.FEELS``), at any
    tempo: arpeggios on every beat keep the pulse."""
    if beats_per_bar != 4 or steps_per_beat != 4:
        return True
    if kit == "four" and bpm <= FOUR_HALFTIME_BPM:
        return True  # the kick on every beat keeps it, to the top of techno's tempi
    return bpm < 100 or (bpm <= 136 and kit in HALFTIME_KITS)


def request_seed(request: GenerationRequest, with_variant: bool) -> int:
    """A 64-bit seed from the request's musical fields (not output format or loudness)."""
    fields: dict[str, Any] = {
        "prompt": request.prompt,
        "plan": request.composition_plan,
        "duration_s": request.duration_s,
        "bpm": request.bpm,
        "key": request.key,
        "stinger": request.stinger,
        "instrumental": request.instrumental,
        "seed": request.params.get("seed", 0),
    }
    if with_variant:
        fields["variant"] = request.variant
    blob = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big")


# --- the whole piece ------------------------------------------------------------------------------
def global_words(request: GenerationRequest) -> Words:
    words = read_words(request.prompt or "")
    plan = request.composition_plan if isinstance(request.composition_plan, dict) else None
    if plan:
        words = words.merge(styles_words(plan.get("positive_global_styles"), 1.0))
        words = words.merge(styles_words(plan.get("negative_global_styles"), -0.5))
    return words


def _plan_text(request: GenerationRequest) -> str:
    plan = request.composition_plan if isinstance(request.composition_plan, dict) else {}
    styles = plan.get("positive_global_styles") or []
    return " ".join(s for s in styles if isinstance(s, str))


def doubled(notes: list[Note], voice: str, source: str) -> list[Note]:
    """``notes`` of ``source`` played softer by ``voice``, moved by the octaves between the
    two voices' ranges (the same in every section: a section's own median could round the
    other way, and the double would fall onto the tune's own octave there)."""
    v, s = VOICES[voice], VOICES[source]
    shift = 12 * round(((v.low + v.high) - (s.low + s.high)) / 24)
    return [Note(n.t, n.d, n.p + shift, n.v * 0.6, n.b) for n in notes]


# A mandolin holds a long note as a tremolo, the pick striking it again and again (its
# small steel strings die away within a beat), a hammered dulcimer as a roll of its two
# hammers: a note of TREMOLO_FROM beats or longer on its tune or counter-line is struck on
# each sixteenth (each thirty-second below TREMOLO_SLOW BPM: 6-12 strokes a second), the
# strokes after the first softer. (A dulcimer's counter-line of long notes, one stroke
# each, died away 12-23 LU under the mix.)
TREMOLO_VOICES = frozenset({"mandolin", "dulcimer"})
TREMOLO_FROM = 1.0
TREMOLO_SLOW = 90.0
TREMOLO_VELOCITY = (0.7, 0.6)  # down-stroke, up-stroke, against the note's attack


# In 4/4 a dulcimer's roll strikes the take's own figure firmer, its other strokes lighter
# (about the strokes' mean level as before): per feel, its strokes as (period, position,
# velocity), the position in beats within each beat (period 1) or the bar (period 4).
# (Even, every take's roll of a duet's long notes was the same stream of strokes, over the
# takes' own figures: a sitar and dulcimer duo's takes folded per bar 0.81-0.90 alike.)
ROLL_FIRM = 0.95  # on the figure
ROLL_LIGHT = 0.5  # off it
# The straight take's ands, between the two: as firm as its beats, the roll's even eighths
# were heard as the beat (the example score's village, 96 BPM, at 192 by a comb; at 0.8
# still), as light as the other strokes its takes folded alike again (a sitar and dulcimer
# duo 0-1 0.83-0.85 per sixteenth).
ROLL_STRAIGHT_AND = 0.65


def _each_beat(*positions: float) -> tuple[tuple[float, float, float], ...]:
    return tuple((1.0, o, ROLL_FIRM) for o in positions)


def _in_bar(*positions: float) -> tuple[tuple[float, float, float], ...]:
    return tuple((4.0, o, ROLL_FIRM) for o in positions)


ROLL_FIGURES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "straight": (*_each_beat(0.0), (1.0, 0.5, ROLL_STRAIGHT_AND)),
    "halftime": _in_bar(0.0, 0.25, 2.0, 2.25),
    "driving": _each_beat(0.0, 0.75),
    "pushed": _in_bar(0.0, 1.5, 2.0, 3.5),
    "tresillo": _in_bar(0.0, 0.75, 1.5, 2.0, 2.75, 3.5),
    "offbeat": _each_beat(0.5),
    "triplet": _each_beat(0.25),  # the heartbeat's second stroke, on the roll's grid
}
ROLLED = frozenset({"dulcimer"})  # (a mandolin's tremolo stays even)


def tremolo(notes: list[Note], bpm: float, feel: str | None = None) -> list[Note]:
    """``notes`` with each long one played as a tremolo of repeated strokes (accented on
    ``feel``'s figure, a 4/4 take's: ``ROLL_FIGURES``)."""
    step = 0.25 if bpm >= TREMOLO_SLOW else 0.125
    figure = ROLL_FIGURES.get(feel or "", ())
    out: list[Note] = []
    for n in notes:
        if n.d < TREMOLO_FROM - 1e-6:
            out.append(n)
            continue
        strokes = max(1, round(n.d / step))
        for k in range(strokes):
            v = n.v if k == 0 else n.v * TREMOLO_VELOCITY[k % 2]
            t = n.t + k * step
            if figure and k:
                hit = (w for period, o, w in figure if abs((t % period) - o) < 1e-6)
                v = n.v * next(hit, ROLL_LIGHT)
            out.append(Note(t, step, n.p, v, n.b))
    return out


def meter_of(request: GenerationRequest, traits: Traits) -> tuple[int, int, str]:
    """(beats per bar, grid steps per beat, time signature). Compound meters count
    dotted-quarter beats: 6/8 is two beats of three eighths, 12/8 four; the tempo is
    the dotted quarter's."""
    written = meter_in_prompt(request.prompt or "") or meter_in_prompt(_plan_text(request))
    if written == "12/8":
        return 4, 3, "12/8"
    if written == "6/8":
        return 2, 3, "6/8"
    if written == "3/4" or "waltz" in traits.flags or "waltz" in traits.genres:
        return 3, 4, "3/4"
    if "compound" in traits.flags:
        return 2, 3, "6/8"
    return 4, 4, "4/4"


def resolve_key(request: GenerationRequest, traits: Traits, base_seed: int) -> Key:
    if request.key:
        key = parse_key(request.key)
        if key is not None:
            return key
    key = key_in_prompt(request.prompt or "") or key_in_prompt(_plan_text(request))
    if key is not None:
        return key
    minor = traits.valence < 0.05
    if "celtic" in traits.genres or "medieval" in traits.genres:
        mode = "dorian" if minor else "mixolydian"
    elif "desert" in traits.genres:
        mode = "harmonic minor"
    elif traits.tension > 0.85 and traits.energy < 0.5:
        mode = "phrygian"
    elif "lydian" in traits.flags or ("scifi" in traits.genres and not minor):
        mode = "lydian"
    else:
        mode = "minor" if minor else "major"
    tonics = [9, 2, 4, 0, 7, 11] if minor else [0, 2, 7, 5, 9, 4]
    return Key(tonics[base_seed % len(tonics)], mode)


def resolve_tempo(request: GenerationRequest, words: Words, traits: Traits) -> float:
    if request.bpm:
        return float(request.bpm)
    bpm = bpm_in_prompt(request.prompt or "") or bpm_in_prompt(_plan_text(request))
    if bpm:
        return bpm
    return float(round(tempo_from_words(words, traits)))


def named_line(t: Traits, voice: str | None) -> bool:
    """Whether ``voice`` is one the prompt named that plays a line of its own (a
    glockenspiel, a marimba), not a section's or a pad's held chords."""
    return voice in t.instruments and voice not in HELD_COUNTERS


def peak_kit(kit: str | None, sec: Section) -> str | None:
    """The kit ``sec`` plays on: a peak's louder kit where ``kit`` is a calm one
    (``PEAK_KITS``), the orchestra's under an orchestral style."""
    if not sec.peak or kit not in PEAK_KITS:
        return kit
    return "orchestral" if "orchestral" in sec.traits.genres else PEAK_KITS[kit]


def compose(request: GenerationRequest) -> Arrangement:
    if request.stinger:
        from segue.plugins.synth.stinger import compose_stinger

        return compose_stinger(request)
    base_seed = request_seed(request, with_variant=False)
    seed = request_seed(request, with_variant=True)
    rng = Random(seed)
    words = global_words(request)
    gtraits = traits_of(words)
    bpm = resolve_tempo(request, words, gtraits)
    key = resolve_key(request, gtraits, base_seed)
    bpb, sub, meter = meter_of(request, gtraits)
    bar_s = bpb * 60.0 / bpm
    bars = max(1, round(request.duration_s / bar_s))
    # The low three bits (drum and arpeggio variations) step with the variant, so two
    # variants never share them all by chance.
    variant_bits = (rng.getrandbits(8) & ~7) | ((base_seed + 5 * request.variant) & 7)
    # Variants take the feels in turn (straight, half-time, driving, pushed; half-time's
    # stand-in where it would lose the pulse): another rhythm for every part, and another
    # harmonic rhythm, over the same pulse.
    kit = choose_voices(gtraits)[1]
    synthwave = "synthwave" in gtraits.genres
    lone = alone(gtraits) is not None and kit is None
    # The kit whose half-time the second take plays (a plan's: its loudest section's, below).
    feel_kit = kit

    def feel_of(v: int, rule_kit: str | None = None) -> str:
        """Variant ``v``'s feel on the mood's kit (or by ``rule_kit``'s rule: a plan section's)."""
        k = kit if rule_kit is None else rule_kit
        f = meter_feel(v, bpb, sub)
        if k == "breaks" and (bpb, sub) == (4, 4):
            return f  # drum and bass: each take its own break (``drums.BREAKS``)
        if lone and f in {"halftime", "pushed"} and (bpb, sub) == (4, 4):
            # A lone player's accompaniment strikes every beat in every take
            # (``parts.LONE_FIGURES``): half-time keeps its pulse at any tempo, and the
            # pushed take its beats below 100 BPM too. (The slow fourth take's triplet
            # stroke, as firm as the beat, was heard at 3/2 of the tempo; softer, it folded
            # per bar like the straight take, 0.81-0.97.)
            return f
        if f == "halftime" and not halftime_keeps_the_pulse(bpm, feel_kit, bpb, sub):
            # Fast: the tresillo; 100-136 BPM without a kit that keeps 2 and 4 it drives
            # (a lo-fi tresillo at 112 BPM was heard at half the tempo).
            return FAST_HALFTIME if bpm > 136 else "driving"
        if f == "pushed" and bpm < 100:
            # Slower, pushes were heard at twice the tempo: a triplet feel instead.
            return SLOW_FOURTH
        electronic = (k == "kit" and synthwave) or k in {"four", "chip"}
        if f == "pushed" and electronic and 100 <= bpm <= ELECTRONIC_FOURTH_BPM:
            # The electronic kits (synthwave's drum kit, four-on-the-floor, chiptune):
            # the tresillo (``parts.KIT_FOURTH``). (A rock mood's, on the drum kit at 112
            # BPM, was heard at half the tempo by the comb.)
            return KIT_FOURTH
        if f == "pushed" and k == "four" and ELECTRONIC_FOURTH_BPM < bpm <= FOUR_HALFTIME_BPM:
            # A four-on-the-floor kit above the rolling fourth's tempi keeps half-time as
            # its second take (``halftime_keeps_the_pulse``), so the tresillo is its fourth
            # (straight there, it repeated the first take: techno at 138-140 BPM 0.98-1.00).
            return FAST_HALFTIME
        if f == "pushed" and k == "chip" and bpm > ELECTRONIC_FOURTH_BPM:
            # A fast chiptune's fourth take: the heartbeat (every beat struck and struck
            # again a sixteenth on, ``drums.heartbeat_stroke``), a figure no other take
            # plays there. Straight, it repeated the first take (per sixteenth and per bar
            # 0.98-1.00 at 140-165 BPM); off-beat, the straight take's eighths (0.93-0.96).
            return SLOW_FOURTH
        if f == "pushed" and k in OFFBEAT_KITS and 100 <= bpm <= 136:
            # Frame drums' pushes (folk, 128 BPM) were heard at half the tempo: a polka's
            # off-beats instead.
            return MID_FOURTH
        if f == "pushed" and k != "orchestral":
            # Pushed on the orchestral kit only, from 100 BPM: on the drum kit (synthwave,
            # 108 BPM) its pushes were heard at twice the tempo; on the drum kit above
            # ``KIT_TRESILLO_BPM``, and on frame drums above 136 BPM, the fourth take plays
            # straight again.
            return "straight"
        return f

    # Sections.
    sections: list[Section] = []
    shaped = False  # a plan whose words say its dynamics
    loud: set[int] = set()  # (ids of) its sections they mark fortissimo or louder
    tunes: dict[int, str | None] = {}  # a loud section's tune: the mood's (below)
    plan = request.composition_plan if isinstance(request.composition_plan, dict) else None
    planned = plan_sections(plan, bars) if plan else []
    if planned:
        said: list[Dynamics] = []
        bases: list[float] = []
        for name, start, nbars, s in planned:
            local = read_words(name, 1.5)
            local = local.merge(styles_words(s.get("positive_local_styles"), 1.5))
            local = local.merge(styles_words(s.get("negative_local_styles"), -0.75))
            traits = traits_of(words.merge(local))
            styles = [
                name,
                *[x for x in s.get("positive_local_styles") or [] if isinstance(x, str)],
            ]
            factor, build = section_energy(" ".join(styles))
            said.append(read_dynamics(styles))
            bases.append(min(1.0, max(0.05, traits.energy * factor)))
            peak = factor > 1.0
            sections.append(Section(name, start, nbars, traits, 0.0, name, build, peak=peak))
        # The plan's dynamics: its sections' own words, else the plan's shape as a whole.
        shape = plan_shape(f"{request.prompt or ''} {_plan_text(request)}")
        shape = shape or marks_shape(said)
        said = cue_levels(said, bases, shape)
        levels = plan_dynamics(said, bases, [sec.traits.energy for sec in sections], shape)
        shaped = bool(shape) or any(d.level is not None or d.step for d in said)
        for sec, d, e in zip(sections, said, levels, strict=True):
            sec.energy = e
            if shaped and e >= LOUD_LEVEL:
                # A loud section is played by a loud section's band and drums, whatever
                # the mood's calm (a crescendo to "massive, tutti, apex" from "the quiet
                # moat" kept the calm mood's flute, harp and soft shaker at its top: its
                # percussive energy 17 dB under its harmonic).
                t = sec.traits
                sec.traits = t.with_(energy=max(t.energy, e), percussion=max(t.percussion, e))
                # (Its tune stays the mood's, unless the section names another: a calm
                # mood's flute handing the tune to the battle palette's brass at the top
                # measured the louder section 0.5 LU over the one before, K-weighted.)
                tunes[id(sec)] = choose_voices(t)[0].get("melody")
            # (A section that grows into its level builds. One whose words mark it
            # fortissimo or louder, a crescendo's last, or the plan's climax (its loudest,
            # ``CLIMAX_RISE`` over its quietest, whatever its words) is a peak: its drums
            # strike harder, ``PEAK_DRUMS``, and as an action mood's, ``PEAK_DRIVE``.)
            sec.build = sec.build or d.build or (d.level is None and d.step == 0 and shape > 0)
            top = shape > 0 and sec is sections[-1] and e >= PEAK_LEVEL
            top = top or (shaped and e >= max(levels) and e - min(levels) >= CLIMAX_RISE)
            if (d.level or 0.0) >= PEAK_LEVEL or top:
                sec.peak = True
                loud.add(id(sec))
    else:
        for name, start, nbars, label, factor in auto_sections(bars):
            energy = min(1.0, max(0.05, gtraits.energy * factor))
            sections.append(Section(name, start, nbars, gtraits, energy, label))

    if planned:
        # A plan's second take plays half-time where its loudest section's kit keeps the
        # pulse in it, the drums heard most (the quieter sections' kits play it as they
        # can): a calm mood's crescendo to the orchestral kit at 116 BPM took the soft
        # kit's rule, its half-time drove as the third take does, and takes 1-2 folded per
        # bar 0.99-1.00 alike. (Its fourth take keeps the mood's kit's rule, straight there:
        # pushed as the orchestral kit's, a 32 s plan half on the soft kit was heard at
        # half the tempo.)
        loudest = max(sections, key=lambda sec: sec.energy)
        feel_kit = choose_voices(loudest.traits)[1] or kit
    feel = feel_of(request.variant)
    # A plan's sections on its loudest section's kit play that kit's take where the mood's
    # kit would play another: its fourth, straight on a calm mood's soft kit, pushed on the
    # orchestral kit (an arch at 127 BPM to "crashing gongs and war drums" played its
    # fourth take straight and folded per bar 0.99 like its first). Its other sections,
    # straight there, play the off-beats (``parts.MID_FOURTH``): straight, four of its five
    # sections still folded per bar 0.87-0.91 like the first take's; pushed on the soft
    # kit, a 32 s plan half on it was heard at half the tempo.
    loud_feel = feel_of(request.variant, rule_kit=feel_kit) if planned else feel
    quiet_feel = feel
    if loud_feel != feel and feel == "straight" and 100 <= bpm <= 136 and (bpb, sub) == (4, 4):
        quiet_feel = MID_FOURTH

    # Harmony: one chord per bar, tonic first, a dominant at the loop's end; each variant
    # another progression, drawn unlike the variants before it (see ``takes``).
    scale = list(MODES[key.mode])
    pool = progression_pool(key, gtraits)

    hp = plan_harmony(sections, bars, bpb, sub, key, pool, base_seed, request.variant, feel_of)
    chords, turns = hp.chords, hp.turns
    stroke = heartbeat_stroke(kit)
    ctx = Context(key, bpb, chords, scale, bpm, variant_bits, turns, sub, feel, hp.pedal, stroke)
    if "pentatonic" in gtraits.flags or "asian" in gtraits.genres:
        ctx.scale = [0, 2, 4, 7, 9] if not key.minor else [0, 3, 5, 7, 10]

    parts: dict[tuple[str, str], Part] = {}

    def part(voice: str, role: str) -> Part:
        k = (voice, role)
        if k not in parts:
            pan = {"bass": 0.0, "harmony": 0.0, "arp": -0.35, "melody": 0.15, "counter": 0.4}.get(
                role, 0.0
            )
            if lone:
                pan = 0.0  # one player, in the middle
            parts[k] = Part(voice, role, pan=pan)
        return parts[k]

    genre = gtraits.genres[0] if gtraits.genres else None
    drive = gtraits.energy - 0.6
    motif_seeds: dict[str, int] = {}
    multi = len(sections) > 1

    def arrange(sec: Section, first: bool) -> list[tuple[str, str, list[Note]]]:
        """Every part's notes in ``sec``: (voice, role, notes)."""
        out: list[tuple[str, str, list[Note]]] = []
        t = sec.traits
        e = sec.energy
        bright = t.brightness
        density = 0 if e < 0.3 else 1 if e < 0.7 else 2
        # The tune follows the feel: longer notes in half-time, shorter when driving.
        density = max(0, min(2, density + {"halftime": -1, "driving": 1}.get(ctx.feel, 0)))
        mrng = Random(motif_seeds.setdefault(sec.label, rng.getrandbits(32)))
        r = sec.roles
        if lone and r.get("melody"):
            # A lone soloist (``palette.alone``): its tune in the take's own rhythm over its
            # own thin accompaniment, nothing else.
            # (The accompaniment first: a player accompanying itself is its tune's part
            # in a listing of parts by voice.)
            mv, hv = r["melody"], r.get("harmony")
            if hv:
                out.append(
                    (hv, "harmony", write_accompaniment(ctx, sec, hv, LONE_VELOCITY, bright))
                )
            tune = write_melody(
                ctx,
                sec,
                mv,
                Random(mrng.random()),
                1,
                0.85,
                bright,
                TUNE_OCTAVE.get(mv, 0),
                solo=True,
                alone=hv is None,
            )
            out.append((mv, "melody", tune))
            return out
        if r.get("bass"):
            out.append((r["bass"], "bass", write_bass(ctx, sec, r["bass"], 0.8, bright, genre)))
        if r.get("harmony"):
            hv = r["harmony"]
            style = "sustain"
            if hv in {"piano", "epiano"}:
                style = "pulse"
            elif hv == "brass":
                style = "stabs"
            elif sec.kit == "march" and hv in {"strings", "accordion", "organ", "horn", "trombone"}:
                # A march's chords are an oom-pah's after-beats, not a held wash (held,
                # the strings measured 10-17 dB more harmonic energy than the snare drums'
                # percussive: a march heard as a chorale over a drum).
                style = "pulse"
            out.append((hv, "harmony", write_harmony(ctx, sec, hv, 0.55, bright, style)))
        if r.get("arp"):
            av = r["arp"]
            ostinato = av in {"strings", "cello"} or (av == "pizz" and t.tension > 0.6)
            arp = write_arp(ctx, sec, av, 0.7, bright, Random(mrng.random()), ostinato)
            out.append((av, "arp", arp))
        # The melody rests in the first section of long loops with sparse moods, and the
        # counter line joins when the energy rises.
        rest = sec.label == "A" and e < 0.3 and len(sections) > 2 and first
        # So does a plan's hushed section, where another plays it (a flute's tune over
        # "hushed, barely audible, a few low strings" was as loud as the brass's in the
        # build after it).
        rest = rest or (planned and e < HUSHED and any(s.energy >= HUSHED for s in sections))
        if r.get("melody") and not (rest and "solo" not in t.flags):
            # (A solo mood's soloist plays from the top: "a solo cello elegy" opened on
            # the strings and piano alone.)
            mv = r["melody"]
            tune = write_melody(
                ctx,
                sec,
                mv,
                Random(mrng.random()),
                density,
                0.85,
                bright,
                TUNE_OCTAVE.get(mv, 0),
                # (A plan that says its dynamics: each section's tune near one register,
                # higher as it is louder. Each section's motif wandered its own way, and a
                # flute's tune an octave and a half lower in one section measured 4 dB
                # quieter, K-weighted, than in the softer section before it.)
                centre=0.35 + 0.25 * e if shaped else None,
            )
            out.append((mv, "melody", tune))
        named = r.get("counter") in soloists(t) or named_line(t, r.get("counter"))
        if r.get("counter") and (
            e >= 0.45 or sec.label in {"B", "C"} or len(sections) == 1 or (named and not rest)
        ):
            # (A named counter-line is the duet's second voice: it plays wherever the tune
            # does, as firmly: ``FEATURED_GAIN``.)
            cv = r["counter"]
            if cv in {"choir", "strings", "pad", "organ", "drone", "brass"}:
                notes = write_counter(ctx, sec, cv, 0.5, bright)
            else:
                notes = write_melody(
                    ctx,
                    sec,
                    cv,
                    Random(mrng.random() + 1),
                    # (a plucked one as busy as the tune: sparser, a mandolin's counter-line
                    # died away 14-16 LU under the mix)
                    density if named and VOICES[cv].kind == "pluck" else max(0, density - 1),
                    0.75 if named else 0.6,
                    bright,
                    TUNE_OCTAVE.get(cv, 0),
                )
            out.append((cv, "counter", notes))
        if bpm < 100 and (bpb, sub) == (4, 4):
            out = [
                (v, rl, shifted_bells(n, ctx))
                if rl in {"melody", "counter"} and v in SLOW_BELL_VOICES
                else (v, rl, n)
                for v, rl, n in out
            ]
        out = [
            (v, rl, tremolo(n, bpm, ctx.feel if (bpb, sub) == (4, 4) and v in ROLLED else None))
            if rl in LINES and v in TREMOLO_VOICES
            else (v, rl, n)
            for v, rl, n in out
        ]
        for inst, role in doubling_voices(t, r):
            out += [(inst, role, doubled(n, inst, v)) for v, rl, n in list(out) if rl == role]
        kit: dict[str, list[Note]] = {}
        if sec.kit:
            level = 0.45 + 0.55 * t.percussion
            if sec.kit == "soft":
                level = 0.5
            elif sec.peak:
                level *= PEAK_DRUMS
            played = sec
            if id(sec) in loud and sec.kit != "soft" and sec.energy < PEAK_BUSY:
                # A peak's drums play their busy bar whatever its energy (an arch's
                # climax at 0.68, "raging at full tilt, crashing gongs and war drums",
                # struck four taiko hits a bar on its straight take at 127 BPM: its
                # percussive energy 10.8-11.1 dB under its harmonic, the busier takes'
                # 8.7-9.7).
                played = replace(sec, energy=PEAK_BUSY)
            kit = write_drums(ctx, played, sec.kit, level, multi)
            if id(sec) in loud and sec.kit != "soft" and drive < PEAK_DRIVE:
                # A peak's drums are up front as an action mood's are, whatever the mood
                # (the part gains below): a "thunderous" climax of an airship's crescendo
                # measured its percussive energy 10-14 dB under its harmonic.
                for sound, notes in kit.items():
                    boost = 4.0 if sound in DRIVING_DRUMS else 1.0
                    up = (1.0 + boost * PEAK_DRIVE) / (1.0 + boost * max(0.0, drive))
                    if sec.kit == "frame":
                        up *= (1.0 + FRAME_DRIVE * PEAK_DRIVE) / (
                            1.0 + FRAME_DRIVE * max(0.0, drive)
                        )
                    if ctx.feel == "halftime":
                        up *= (1.0 + HALFTIME_WEIGHT * PEAK_DRIVE) / (
                            1.0 + HALFTIME_WEIGHT * max(0.0, drive)
                        )
                    up *= max(1.0, PEAK_TEMPO / bpm) ** 0.5
                    if ctx.feel == "halftime" and bpm < 100:
                        up *= SLOW_HALF_PEAK
                    for n in notes:
                        n.v *= up
        for sound in EXTRA_PERCUSSION:
            if sound in t.instruments:
                # (A light drum of two hits a bar at least: a calm kit's few shaker
                # strokes left sleigh bells 9 % of its hits.)
                light = [s for s in kit if s not in LOW_DRUMS and len(kit[s]) >= 2 * sec.bars]
                if sound in WITH_THE_SKIN and kit.get("frame_hi"):
                    # Shaken with the take's own high skin, so each take keeps its figure
                    # (one jingle figure in every take folded a tarantella's straight and
                    # flowing takes per bar 0.89 alike).
                    notes = [Note(n.t, n.d, n.p, n.v, n.b) for n in kit["frame_hi"]]
                elif sound in FOLLOW_THE_TICKS and light:
                    busiest = max(light, key=lambda s: len(kit[s]))
                    notes = [Note(n.t, n.d, n.p, n.v, n.b) for n in kit[busiest]]
                else:
                    notes = write_extra_percussion(ctx, sec, sound, 0.8)
                out.append(("drum:" + sound, "drums", notes))
        out += [("drum:" + sound, "drums", notes) for sound, notes in kit.items()]
        return out

    # Sections shape the loudness, not only the texture: each plays louder or softer than
    # the loop's mean energy (and softer notes are darker, in the sampled voices).
    mean_energy = sum(s.energy * s.bars for s in sections) / max(1, bars)

    def level(sec: Section) -> float:
        return 10 ** ((sec.energy - mean_energy) * SECTION_DB_PER_ENERGY / 20)

    for sec in sections:
        sec.roles, sec.kit = choose_voices(sec.traits)
        # (A peak's louder kit plays the take of the kit it stands in for, as the sections
        # before it do. In 3/4 the soft kit stays: a waltz's climax on hand drums or the
        # orchestra's took their oom-pah-pah into its straight and broad takes alike, 0.82-0.85
        # per sixteenth and per bar with TimGM6mb, 0.55-0.58 before.)
        rule_kit = sec.kit
        if (bpb, sub) == (4, 4):
            sec.kit = peak_kit(sec.kit, sec)
        tune = tunes.get(id(sec))
        if tune and sec.roles.get("melody") not in sec.traits.instruments:
            sec.roles["melody"] = tune
            if sec.roles.get("counter") == tune:
                sec.roles["counter"] = None
        gain = level(sec)
        ctx.feel = loud_feel if rule_kit == feel_kit else quiet_feel
        for voice, role, notes in arrange(sec, sec is sections[0]):
            for n in notes:
                n.v *= gain
            part(voice, role).notes += notes
    if bars >= 2:
        # The loop's top enters early, on the tonic halfway through the last bar: the seam
        # then falls inside the first section's texture, with no change of harmony (as a
        # phrase's pickup leads into its downbeat).
        turn_t = (bars - 1) * bpb + turns[bars - 1][0]
        for p in parts.values():
            p.notes = [n for n in p.notes if n.t < turn_t - 1e-6]
            for n in p.notes:
                if not p.voice.startswith("drum:") and n.t + n.d > turn_t:
                    n.d = turn_t - n.t
        head = sections[0]
        energy = head.energy
        if head.build:
            energy = max(0.3, energy * (0.6 + 0.5 / head.bars))
        lead_in = Section(
            head.name, bars - 1, 1, head.traits, energy, head.label, False, head.roles, head.kit
        )
        gain = level(head)
        ctx.feel = loud_feel if head.kit == feel_kit else quiet_feel
        for voice, role, notes in arrange(lead_in, True):
            for n in notes:
                n.v *= gain
            part(voice, role).notes += [n for n in notes if n.t >= turn_t - 1e-6]

    # Mix levels: voice gain x role weight; sends from the space trait.
    space = gtraits.space
    role_gain = {
        "bass": 0.9,
        "harmony": 0.55,
        "arp": 0.6,
        "melody": 0.8,
        "counter": 0.45,
        "drums": 0.85,
    }
    out_parts = []
    # The solo instruments the prompt named, in any section (``palette.soloists``): their
    # counter-line or arpeggio is mixed as a line a listener follows, not an accompaniment.
    lines = {v for sec in sections for v in soloists(sec.traits)}
    # A chamber mood's players, every instrument it names (a duet's harp on the arpeggio,
    # 14-16 LU under the mix as an accompaniment's): each a line a listener follows.
    players = {i for sec in sections if chamber(sec.traits) for i in sec.traits.instruments}
    lines |= players
    named_voices = {i for sec in sections for i in sec.traits.instruments}
    # And a named voice on the counter-line (a carousel's glockenspiel under the
    # accordion's tune: 10-17 LU under the mix at an accompaniment's counter-line).
    lines |= {s.roles["counter"] for s in sections if named_line(s.traits, s.roles.get("counter"))}
    # And a named plucked or struck voice on the arpeggio (a koto's beside a shakuhachi's tune,
    # a harp's named after a bassoon: 9-15 LU under the mix at an accompaniment's arpeggio).
    named_arps = {
        s.roles["arp"]
        for s in sections
        if s.roles.get("arp") in s.traits.instruments and VOICES[s.roles["arp"]].kind in DYING
    }
    length = float(bars * bpb)
    for (voice, role), p in parts.items():
        # (A tune moved later, ``shifted_bells``, may reach past the loop's end.)
        p.notes = [n for n in p.notes if n.t < length - 1e-6]
        if not voice.startswith("drum:") and bars >= 2:
            if VOICES[voice].legato:
                tie_across_seam(p, length)
            anticipate(p, length, 0.5)
        if voice.startswith("drum:"):
            sound = voice[5:]
            # Action moods put the drums up front, beside the orchestra, not under it: the
            # hits between the downbeats most (a downbeat far louder than the bar's end
            # would make every bar line a jolt).
            boost = 4.0 if sound in DRIVING_DRUMS else 1.0
            p.gain = DRUM_GAIN[sound] * role_gain["drums"] * (1.0 + boost * max(0.0, drive))
            if kit == "frame":
                p.gain *= 1.0 + FRAME_DRIVE * max(0.0, drive)
            if kit == "march":
                # A march's drums lead it at every energy (a stately parade's as a
                # drill's: with the drive's boost a martial drill's snare was 5 dB over
                # its band and a stately parade's 11 dB under it.)
                p.gain = DRUM_GAIN[sound] * role_gain["drums"] * MARCH_GAIN
                p.gain *= MARCH_FEEL.get(feel, 1.0)
            if feel == "halftime":
                # Half as many hits, each heavier: the half-time take's drums weigh as
                # much against the orchestra as the other takes' (1.6 dB in an action
                # mood; they were a dB further under it).
                p.gain *= 1.0 + HALFTIME_WEIGHT * max(0.0, drive)
            p.send = 0.15 + 0.4 * space
        else:
            v = VOICES[voice]
            p.gain = v.gain * role_gain[role]
            if voice in lines and role in FEATURED_GAIN:
                p.gain = v.gain * FEATURED_GAIN[role]
            elif role == "arp" and voice in named_arps:
                p.gain = v.gain * FEATURED_GAIN[role] * PLUCKED_LINE
            if voice in lines and role in {"counter", "arp"}:
                if v.kind in DYING:
                    p.gain *= PLUCKED_COUNTER if role == "counter" else PLUCKED_LINE
                if role == "counter" and voice in LOW_COUNTERS:
                    p.gain *= LOW_LINE
                if role == "counter" and v.kind in BOWED:
                    p.gain *= BOWED_COUNTER * (FIDDLER_COUNTER if voice == "folkfiddle" else 1.0)
                if role == "counter" and v.kind == "bells":
                    p.gain *= STRUCK_COUNTER
            if voice in lines and role == "melody" and voice in LOW_LINES and drive <= 0:
                p.gain *= LOW_TUNE
            if voice in lines and role == "harmony" and voice in LOW_LINES:
                # A named horn left the chords (a third soloist, the tune and the counter-line
                # taken: "hurdy gurdy, piccolo and french horn") is heard there as on a line
                # (8-17 LU under the mix at the chords' gain).
                p.gain *= LOW_LINE
            if (
                role == "harmony"
                and voice in NAMED_CHORD_VOICES
                and voice in named_voices
                and voice not in lines
                and not lone
            ):
                p.gain *= NAMED_CHORDS
            if (
                role == "counter"
                and voice in NAMED_CHORD_VOICES
                and voice in named_voices
                and not lone
            ):
                # (And on its held counter-line: a barcarolle's named strings there under an
                # accordion's tune were 11-15 LU under the mix.)
                p.gain *= NAMED_CHORDS
            if (
                role == "harmony"
                and voice == "strings"
                and voice in named_voices
                and bpb == 3
                and sub == 4
                and not lone
            ):
                p.gain *= NAMED_WALTZ_STRINGS
            if role == "bass" and voice in NAMED_BASS and voice in named_voices:
                p.gain *= NAMED_BASS[voice]
            if role == "melody" and v.kind == "pluck" and voice in players:
                # A trio's plucked tune (a banjo's) as firm as its plucked arpeggio: its
                # notes die away under a harmonica's and a dulcimer's (10-14 LU under the
                # mix). (A chamber mood's own: a tarantella's plucked tune led its onsets.)
                p.gain *= PLUCKED_LINE
            elif role == "melody" and v.kind == "pluck" and voice in lines and sub != 3:
                # A named plucked tune over a full accompaniment, firmer still ("banjo and
                # guitar on the bayou porch": the banjo's tune 10-14 LU under the mix at the
                # tune's gain, 8-10 at a trio's, under the palette's harp and drums).
                p.gain *= PLUCKED_TUNE
            if lone and role == "harmony":
                own = any(q.voice == voice and q.role == "melody" for q in parts.values())
                p.gain *= LONE_OWN_GAIN if own else LONE_ACCOMPANIMENT_GAIN
                tune = {q.voice for q in parts.values() if q.role == "melody"}
                if voice == "harp" and not own and tune & LONE_SOFT_PLAYERS:
                    p.gain *= LONE_HARP_UNDER
            if role == "harmony" and v.legato and sub == 3 and bpm < 90:
                p.gain *= SLOW_COMPOUND_HELD_GAIN
            p.send = v.send * (0.4 + 1.2 * space)
            if role in {"melody", "arp"} and genre in {"synthwave", "scifi", "ambient"}:
                p.echo = 0.35
        out_parts.append(p)
    swing = 0.12 if "swing" in gtraits.flags or genre in {"lofi", "jazz"} else 0.0
    return Arrangement(
        bpm=bpm,
        beats_per_bar=bpb,
        key=key,
        bars=bars,
        loop=True,
        length_beats=float(bars * bpb),
        sections=sections,
        parts=out_parts,
        space=space,
        brightness=gtraits.brightness,
        lofi=genre == "lofi",
        swing=swing,
        seed=seed,
        meter=meter,
        level_drums=((drive > 0 or bool(loud)) and kit in LEVELLED_KITS) or kit == "march",
    )
