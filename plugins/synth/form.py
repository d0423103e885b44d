"""Form: a loop's sections (from a composition plan or an automatic A/B/A'/C form) and its seam.

A loop's seam (the jump from the end back to the top) must be the calmest of its bar lines:
sustained notes tie over it and every part anticipates the first downbeat, so the top is
not an attack; anything periodic repeats with a period that divides its section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from segue.plugins.synth.arrangement import Note, Part
from segue.plugins.synth.words import NEGATION, alone_words, instrument_of


def _each(words: str) -> list[str]:
    """The words of a table written as text (a phrase's words joined by hyphens)."""
    return words.split()


SECTION_ENERGY = {
    "intro": 0.65,
    "build": 0.85,
    "build-up": 0.85,
    "buildup": 0.85,
    "rising": 0.85,
    "full": 1.15,
    "chorus": 1.1,
    "drop": 1.2,
    "main": 1.0,
    "loop": 1.0,
    "breakdown": 0.65,
    "bridge": 0.8,
    "interlude": 0.7,
    "outro": 0.7,
    "ending": 0.7,
    "verse": 0.9,
    "calm": 0.6,
    "finale": 1.2,
}
# A musician's dynamics, as the level (a section's energy, 0-1) each asks for whatever the
# mood (``plan_dynamics``): marks (ppp-fff), their Italian names and the words a plan is
# written in. (A judged crescendo in "hushed, barely audible" -> "building, rising" ->
# "intensifying, bigger" -> "thunderous, full orchestra, triumphant peak" was read as
# nothing but "full": its first three sections at one level, the second the quietest.)
DYNAMIC_LEVELS: dict[str, float] = {
    **dict.fromkeys(
        _each("""ppp pianississimo silent silence near-silent inaudible barely-audible
        barely-there almost-silent near-silence scarcely-audible hardly-audible
        scarcely-there hardly-there barely-breathing scarcely-breathing barely scarcely
        hardly niente al-niente quasi-niente estinto"""),
        0.12,
    ),
    **dict.fromkeys(
        _each("""pp pianissimo hushed hush whispered whispering whisper whispers faint faintly
        very-soft very-quiet very-quietly very-softly very-gentle sotto-voce breathing
        whisper-quiet whisper-soft feather-light featherlight feather-soft pin-drop
        sottovoce"""),
        0.18,
    ),
    **dict.fromkeys(
        _each("""soft softly quiet quietly gentle gently subdued muted muffled restrained sparse
        sparsely few-instruments a-few distant far-off far-away delicate delicately
        understated low-key hesitant tentative dolce tranquillo calmo leggero leggiero
        delicato"""),
        0.28,
    ),
    **dict.fromkeys(
        _each("""mp mezzo-piano moderately-soft held-back simmering smouldering mezza-voce
        mezzo-voce"""),
        0.4,
    ),
    **dict.fromkeys(_each("mf mezzo-forte moderate moderately-loud steady"), 0.55),
    **dict.fromkeys(
        _each("""forte loud loudly strong strongly bold powerful big heavy vigorous
        vigorously fierce fiercely forceful forcefully emphatic marcato pesante robusto energico
        deciso risoluto con-brio con-forza forzando sforzando sfz fz"""),
        0.72,
    ),
    **dict.fromkeys(
        _each("""ff fortissimo thunderous thundering massive huge enormous immense colossal
        full-orchestra full-force full-power full-blast full-volume full-ensemble full-band
        full-strength tutti all-out everything all-instruments roaring explosive exploding
        overwhelming blazing towering wall-of-sound mighty earth-shaking blasting
        blaring blare blares raging ferocious furious full-tilt deafening fever-pitch
        full-might full-throttle furioso feroce con-fuoco grandioso tutta-forza con-tutta-forza
        strepitoso tumultuoso"""),
        0.9,
    ),
    **dict.fromkeys(
        _each("""fff fortississimo peak apex climax climactic culmination culminating pinnacle
        zenith summit high-point highest-point maximum loudest ear-splitting
        ear-shattering ffff fortissimo-possibile con-tutta-la-forza"""),
        1.0,
    ),
}
# A mark alone as a whole style ("p", "f"): too common as letters to look for in a phrase.
DYNAMIC_LETTERS = {"p": 0.28, "f": 0.72}
# Words that ask a section to play louder (+1) or softer (-1) than the one before it; the
# first kind also grows through the section (``BUILDS``), but for these, which are louder
# from the section's first bar (a bigger band, an entrance).
STEPS_UP_AT_ONCE = """bigger fuller stronger louder heavier denser larger wider more-intense
more-drums joins join enter enters entering come-in comes-in added livelier busier animato"""
DYNAMIC_STEPS: dict[str, int] = {
    **dict.fromkeys(
        _each("""build builds building built build-up buildup rise rises rising risen grow grows
        growing swell swells swelling mount mounts mounting gather gathers gathering
        intensify intensifies intensifying intensified escalate escalates escalating surge
        surges surging crescendo cresc climb climbs climbing ascending more-and-more
        ever-louder quicken quickens quickening gaining-strength gains-strength
        gathering-strength strengthen strengthens strengthening heating-up heats-up
        picking-up picks-up ramping-up ramps-up animando stringendo rinforzando rinf"""),
        1,
    ),
    **dict.fromkeys(_each(STEPS_UP_AT_ONCE), 1),
    **dict.fromkeys(
        _each("""diminuendo decrescendo dim decresc fade fades fading fade-out fades-out
        fading-out fade-away fades-away fading-away die-away dies-away dying-away die-down
        dies-down dying-down recede recedes receding ebb ebbs ebbing wane wanes waning
        dwindle dwindles dwindling subside subsides subsiding settle settles settling
        winding-down wind-down falling-away taper tapers tapering thinning thin-out
        thins-out calming-down softer quieter gentler lighter smaller thinner relent
        relents relenting quieten quietens quietening quieting abate abates abating
        ease-off eases-off easing-off softening softens calando morendo smorzando perdendosi
        mancando sfumando"""),
        -1,
    ),
}
# The step words that grow through their section (its drums build towards its end).
BUILDS = frozenset(w for w, d in DYNAMIC_STEPS.items() if d > 0) - frozenset(
    _each(STEPS_UP_AT_ONCE)
)
# A plan's shape as a whole (its global styles and prompt): the sections that do not say
# their own dynamics step in that direction, in plan order.
PLAN_SHAPES: dict[str, int] = {
    **dict.fromkeys(
        _each("""crescendo long-crescendo one-long-crescendo builds-throughout building-throughout
        slow-build slow-burn steady-build ever-louder ever-building gradual-build
        gradually-building builds-up grows-throughout rising-throughout"""),
        1,
    ),
    **dict.fromkeys(
        _each("""diminuendo decrescendo fades-out fading-out fade-out fades-away fading-away
        dies-away dying-away winds-down winding-down long-fade slow-fade"""),
        -1,
    ),
}
SHAPE_FROM = {1: 0.2, -1: 0.9}  # a shape's first section, where it does not say its level
SHAPE_TO = {1: 0.95, -1: 0.2}  # and its last
DYNAMIC_STEP = 0.15  # a step word's step where no later level bounds it
# How far the mood's energy moves a mark's level away from the middle, per unit from 0.5:
# a driven mood's loud marks up, a calm mood's soft ones down (never a calm mood's loud
# marks down: a crescendo from "the quiet moat" reached only 0.92 at its "apex", its top no
# louder than the section before it; a calm "sparse" intro at 0.28 had as many onsets as
# the battle after it).
MOOD_PULL = 0.2


def _pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """One pattern for ``phrases`` (hyphens stand for a space or a hyphen), longest first,
    so "barely audible" is one phrase and "full orchestra" is not "full"."""
    alts = sorted({p for p in phrases}, key=len, reverse=True)
    body = "|".join(re.escape(p).replace("\\-", "[\\s-]+") for p in alts)
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])")


_LEVELS = _pattern(DYNAMIC_LEVELS)
_STEPS = _pattern(DYNAMIC_STEPS)
_SHAPES = _pattern(PLAN_SHAPES)


def _key(match: str) -> str:
    return re.sub(r"[\s-]+", "-", match)


def without_dynamics(text: str, section: bool) -> str:
    """``text`` without the dynamics words the synth reads there: a plan's shape anywhere,
    a section's marks and steps in a section's words (``segue plan`` does not list them
    as ignored)."""
    low = _SHAPES.sub(" , ", text.lower())
    if section:
        low = _STEPS.sub(" , ", _LEVELS.sub(" , ", _MORE.sub(" , ", _MOST.sub(" , ", low))))
        if low.strip() in DYNAMIC_LETTERS:
            return ""
        # (and the words read by their parts and forms, and the band's grammar words)
        low = _TOKEN.sub(lambda m: " , " if _read_word(m.group(0)) else m.group(0), low)
    return low


def _read_word(word: str) -> bool:
    """Whether a section's ``word`` shapes its dynamics beyond the lists' phrases."""
    return word in SPARSE_WORDS or word in WHOLE_WORDS or word_level(word) != (None, 0)


# Word forms: English adds these to a dynamics word of the lists ("bolder", "faintest",
# "thunderously", "whispery", "loudness"); the stem is looked up, the suffix read (a
# comparative steps that way, a superlative is the word's extreme). (A judged crescendo's
# "a little bolder" and an arch's "whisper-thin" shaped nothing: their stems and parts are
# the lists' words.)
_SUFFIXES = (
    "issimo",
    "issima",
    "iest",
    "ier",
    "ily",
    "ness",
    "like",
    "ish",
    "est",
    "er",
    "ly",
    "ing",
    "ed",
    "es",
    "s",
    "y",
)
COMPARATIVE = ("ier", "er")
SUPERLATIVE = ("issimo", "issima", "iest", "est")
# A level word's extremes (its superlative, "at its most X").
EXTREME = {1: 1.0, -1: 0.12}
_TOKEN = re.compile(r"[a-z][a-z'-]*[a-z]")
# The grammar of a superlative ("at its most violent", "the most savage"), and of a step
# ("more forceful", "less loud"): the next word is the level word, or any word.
_MOST = re.compile(r"(?<![\w-])(?:at (?:its|their|his|her) )?most ([a-z][\w-]*)")
MORE_WORDS = frozenset({"more", "piu", "più"})  # (and "less", "meno": the other way)
_MORE = re.compile(
    r"(?<![\w-])(?<!once )(?<!no )(?<!any )(more|less|piu|più|meno) "
    r"(?!(?:than|of|the|a|an|and|or)\b)([a-z][\w-]*)"
)


def _stems(word: str) -> list[tuple[str, str]]:
    """(stem, suffix) readings of ``word``: as written, then without each English suffix
    (with a dropped "e" or a doubled consonant restored: "gentler", "bigger")."""
    out = [(word, "")]
    for suf in _SUFFIXES:
        if not word.endswith(suf) or len(word) - len(suf) < 3:
            continue
        stem = word[: -len(suf)]
        forms = [stem, stem + "e"]
        if suf.startswith("iss"):
            forms = [stem + "e", stem + "o"]  # (Italian: "dolcissimo", "tranquillissimo")
        elif suf.startswith("i"):
            forms = [stem + "y"]
        if len(stem) > 3 and stem[-1] == stem[-2]:
            forms.append(stem[:-1])
        out += [(f, suf) for f in forms]
    return out


def word_level(word: str) -> tuple[float | None, int]:
    """A word's level and step by its parts and forms ("whisper-thin": a whisper's level;
    "bolder": a step up; "faintest": a faint word's extreme), or (None, 0)."""
    for part in [word, *word.split("-")] if "-" in word else [word]:
        for stem, suf in _stems(part):
            if stem in DYNAMIC_LEVELS:
                level = DYNAMIC_LEVELS[stem]
                side = 1 if level >= 0.5 else -1
                if suf in COMPARATIVE:
                    return None, side
                if suf in SUPERLATIVE:
                    return EXTREME[side], 0
                return level, 0
            if stem in DYNAMIC_STEPS and suf not in COMPARATIVE + SUPERLATIVE:
                return None, DYNAMIC_STEPS[stem]
    return None, 0


def word_side(word: str) -> int:
    """Which way a word points, +1 loud or -1 soft (by its level, else its step), 0 where
    the lists say nothing of it (``word_level``)."""
    level, step = word_level(word)
    if level is not None:
        return 1 if level >= 0.5 else -1
    return step


def section_energy(text: str) -> tuple[float, bool]:
    """The energy factor of a section's structural word (an intro, a chorus, a drop: of
    the mood's energy; a later entry of the table wins) and whether it builds."""
    low = text.lower()
    factor = 1.0
    build = False
    for word, f in SECTION_ENERGY.items():
        if re.search(rf"\b{re.escape(word)}\b", low):
            factor = f
            build = build or word.startswith("build") or word == "rising"
    return factor, build


# What a section's words say of its band, which a plan's words always name whatever their
# adjectives (closed-class words and the synth's own instruments, no word list of moods):
# a player alone is quieter; every instrument named, and the drums and brass among them,
# louder; the whole band louder again; "at its most X" is the section's extreme. (A judged
# crescendo from "murmuring, wraith-like, a solitary anvil" to "cataclysmic, with every
# ounce of strength, booming drums and crashing gongs" played its four sections within 1.1
# LU: none of its words was in the lists.)
SPARSE_WORDS = frozenset(_each("solitary lone single alone only just solo unaccompanied"))
WHOLE_WORDS = frozenset(_each("all every whole entire together massed"))
PERCUSSION = frozenset(
    _each("""drums taiko snare anvil frame bongo conga tambourine castanets woodblock
    cowbell triangle shaker steeldrum""")
)
BRASS = frozenset(_each("brass horn trumpet trombone tuba"))
CUE_INSTRUMENT = 0.5  # per instrument named (up to CUE_MOST_NAMED)
CUE_MOST_NAMED = 4
CUE_LOUD = 1.0  # drums named, brass named, the whole band: each
CUE_SPARSE = -1.0  # a player alone
CUE_MOST = 3.0  # "at its most X" of a word the lists do not hold
# A plan's sections that say no level or step of their own, when their cues differ, span
# from a soft level (the least cue) to a peak's (the most, where it names a loud band: at
# least CUE_LOUD_BAND), the others between by their cue.
CUE_SOFT = 0.2
CUE_PEAK = 0.95
CUE_LOUD_BAND = 1.5
CUE_QUIET_TOP = 0.55  # the top of a plan whose cues name no loud band, at least


def instruments_named(text: str) -> set[str]:
    """The synth's voices ``text`` names ("booming drums and crashing gongs": drums),
    longest phrase first."""
    words = re.findall(r"[a-z][a-z-]*", text.lower())
    out: set[str] = set()
    i = 0
    while i < len(words):
        for n in (3, 2, 1):
            voice = instrument_of(" ".join(words[i : i + n])) if i + n <= len(words) else None
            if voice:
                out.add(voice)
                i += n
                break
        else:
            i += 1
    return out


def ensemble_cue(text: str) -> float | None:
    """How loud a section's band is by its words (``CUE_*``), None when they say nothing
    of it."""
    low = NEGATION.sub(" , ", text.lower())  # ("no drums" names none)
    words = set(re.findall(r"[a-z][a-z-]*", low))
    voices = instruments_named(low)
    if words & SPARSE_WORDS or alone_words(low):
        return CUE_SPARSE
    whole = bool(words & WHOLE_WORDS)
    if not voices and not whole:
        return None
    cue = CUE_INSTRUMENT * min(len(voices), CUE_MOST_NAMED)
    cue += CUE_LOUD * (bool(voices & PERCUSSION) + bool(voices & BRASS) + whole)
    return cue


@dataclass
class Dynamics:
    """What a section's words say of its loudness: a level (a mark), a step from the
    section before (+1 louder, -1 softer, 0: none), and whether it grows through; its
    band's cue (``ensemble_cue``; None: its words say nothing of it), and whether its
    level is the plan's reading of its cues (``cue_levels``), not a mark."""

    level: float | None
    step: int
    build: bool
    cue: float | None = None
    derived: bool = False


def read_dynamics(styles: list[str]) -> Dynamics:
    """A section's dynamics from its name and local styles: its most marked level
    ("thunderous, full orchestra, triumphant peak": a peak's), the sign of its step words,
    read in the lists and in their words' parts and forms (``word_level``), and in the
    grammar of a superlative ("at its most X") and a step ("more X", "less X")."""
    levels: list[float] = []
    step = 0
    build = False
    most = False
    for style in styles:
        low = style.lower().strip()
        if low in DYNAMIC_LETTERS:
            levels.append(DYNAMIC_LETTERS[low])
            continue
        for m in _MOST.finditer(low):
            side = word_side(m.group(1))
            if side:
                levels.append(EXTREME[side])
            else:
                most = True  # (an unknown word's extreme: the section's, its loudest)
        low = _MOST.sub(" , ", low)
        for m in _MORE.finditer(low):
            # ("more X" of an unknown X: more of it, louder)
            step += (word_side(m.group(2)) or 1) * (1 if m.group(1) in MORE_WORDS else -1)
        low = _MORE.sub(" , ", low)
        levels += [DYNAMIC_LEVELS[_key(m)] for m in _LEVELS.findall(low)]
        rest = _LEVELS.sub(" ", low)  # "building" in "a building storm" is still a step
        for m in _STEPS.findall(rest):
            step += DYNAMIC_STEPS[_key(m)]
            build = build or _key(m) in BUILDS
        rest = _STEPS.sub(" , ", rest)
        for word in _TOKEN.findall(rest):
            level, side = word_level(word)
            if level is not None:
                levels.append(level)
            step += side
    # The most marked of them: "faint, distant, ppp" is ppp.
    level = max(levels, key=lambda x: abs(x - 0.5)) if levels else None
    cue = ensemble_cue(" ".join(styles))
    if most:
        cue = (cue or 0.0) + CUE_MOST
    return Dynamics(level, (step > 0) - (step < 0), build, cue)


def cue_levels(said: list[Dynamics], bases: list[float], shape: int = 0) -> list[Dynamics]:
    """``said`` with a level for each section that says neither a level nor a step, in a
    plan with no ``shape``, read from its cues (``ensemble_cue``) relative to each other
    (in a shaped plan they step with the shape, ``plan_dynamics``): the least cued soft,
    the most a peak where it names a loud band (a step under the loudest mark, where the
    plan's words mark one louder), the others between by their rank and their cue (its
    sections with no cue rank as 0; sections as cued as each other between a quieter and a
    louder one lie evenly between them). A plan's first section with no cue of any kind,
    before a section the plan's words mark loud, starts soft (unless the plan as a whole
    fades). A plan whose cues do not differ keeps its levels."""
    out = list(said)
    n = len(said)
    free = [i for i, d in enumerate(said) if d.level is None and d.step == 0]
    if shape:
        # (A plan with a shape, its own or its marks', steps its other sections with it:
        # ranked by their cues, a crescendo's last section in words the synth does not
        # read fell to the soft end, under a section before it that named more players.)
        free = []
    scores = {i: said[i].cue or 0.0 for i in free}
    if len(free) >= 2 and any(said[i].cue is not None for i in free):
        lo, hi = min(scores.values()), max(scores.values())
        if hi > lo:
            loudest = max(free, key=scores.__getitem__)
            top = CUE_PEAK if hi >= CUE_LOUD_BAND else max(CUE_QUIET_TOP, bases[loudest])
            marks = [d.level for d in said if d.level is not None]
            if marks and max(marks) >= top - DYNAMIC_STEP:
                top = max(CUE_QUIET_TOP, min(top, max(marks) - DYNAMIC_STEP))
            ranks = sorted(set(scores.values()))
            for i in free:
                # (Half by rank, half by how far: a climax cued far over the others does
                # not crowd them all down to the soft end.)
                x = 0.5 * ranks.index(scores[i]) / (len(ranks) - 1)
                x += 0.5 * (scores[i] - lo) / (hi - lo)
                out[i] = replace(said[i], level=CUE_SOFT + (top - CUE_SOFT) * x, derived=True)
            levels = [d.level for d in out]
            i = 0
            while i < n:
                j = i + 1
                while j < n and out[i].derived and out[j].derived and levels[j] == levels[i]:
                    j += 1
                if j - i >= 2:
                    _spread(out, levels, i, j)
                i = j
    first = out[0]
    if shape >= 0 and n > 1 and first.level is None and first.step == 0 and first.cue is None:
        loud = [d.level for d in out[1:] if d.level is not None]
        if loud and max(loud) >= 0.7:
            out[0] = replace(first, level=CUE_SOFT, derived=True)
    return out


def _spread(out: list[Dynamics], levels: list[float | None], i: int, j: int) -> None:
    """Sections ``i``..``j`` (as cued as each other, at one level) lie evenly from the
    quieter section beside them to the louder one (towards the one beside them where the
    run is at the plan's start or end), in plan order."""
    level = levels[i]
    assert level is not None
    # (The nearest levels beside the run: a step's section between has none yet.)
    before = next((x for x in reversed(levels[:i]) if x is not None), None)
    after = next((x for x in levels[j:] if x is not None), None)
    count = j - i
    if before is not None and after is not None and (before - level) * (after - level) < 0:
        new = [before + (after - before) * (k + 1) / (count + 1) for k in range(count)]
    elif before is None and after is not None and after != level:
        new = [level + (after - level) * k / (count + 1) for k in range(count)]
    elif after is None and before is not None and before != level:
        new = [level + (before - level) * (count - 1 - k) / (count + 1) for k in range(count)]
    else:
        return
    for k, value in enumerate(new):
        out[i + k] = replace(out[i + k], level=value)


def plan_shape(text: str) -> int:
    """+1 for a plan asked to grow as a whole ("one long crescendo", "builds throughout"),
    -1 to fade ("diminuendo", "fades out"), else 0."""
    total = sum(PLAN_SHAPES[_key(m)] for m in _SHAPES.findall(text.lower()))
    return (total > 0) - (total < 0)


def marks_shape(said: list[Dynamics]) -> int:
    """+1 where a plan's own marks rise in plan order (two or more levels its words give,
    each over the one before, and no step the other way), -1 where they fall, else 0: the
    plan's shape as its marks say it, for the sections that say nothing. (A crescendo
    marked "soft" -> "growing" -> "loud" -> a climax in words the synth does not read
    played its climax at the mood's level, under the "loud" section before it.)"""
    marks = [d.level for d in said if d.level is not None and not d.derived]
    if len(marks) < 2:
        return 0
    for sign in (1, -1):
        rising = all(sign * (b - a) > 0 for a, b in pairwise(marks))
        if rising and all(d.step != -sign for d in said):
            return sign
    return 0


def plan_dynamics(
    said: list[Dynamics], bases: list[float], moods: list[float], shape: int
) -> list[float]:
    """Each section's energy: a section whose words give its level plays at that level
    (a loud one higher in a driven mood, a soft one lower in a calm one); one that steps
    louder or softer (by its words, or by the plan's ``shape`` where it says nothing) lies
    evenly between the levels around it, or a step from the one before; the others play
    their mood's energy times their structural word's factor (``bases``)."""
    n = len(said)
    energy: list[float | None] = [None] * n
    steps = [d.step or (shape if d.level is None else 0) for d in said]
    for i, d in enumerate(said):
        if d.level is not None and d.derived:
            energy[i] = d.level  # (the plan's own reading of its cues: not the mood's)
        elif d.level is not None:
            # (A loud mark only up, a soft one only down: away from the middle.)
            pull = MOOD_PULL * (moods[i] - 0.5)
            energy[i] = d.level + (max(0.0, pull) if d.level >= 0.5 else min(0.0, pull))
        elif steps[i] == 0:
            energy[i] = bases[i]
    if shape and n > 1:
        # The shape's ends: where the first and last sections do not say, it starts soft
        # (loud) and ends loud (soft).
        if energy[0] is None and said[0].step in (0, shape):
            energy[0] = SHAPE_FROM[shape]
        if energy[-1] is None and steps[-1] == shape:
            energy[-1] = SHAPE_TO[shape]
    i = 0
    while i < n:
        if energy[i] is not None:
            i += 1
            continue
        j = i
        while j < n and energy[j] is None:
            j += 1
        before = energy[i - 1] if i > 0 else None
        after = energy[j] if j < n else None
        run = steps[i:j]
        if before is None:
            before = bases[i] - steps[i] * DYNAMIC_STEP
        rising = after is not None and all(s == (after > before) - (after < before) for s in run)
        for k in range(i, j):
            if rising and after is not None:
                energy[k] = before + (after - before) * (k - i + 1) / (j - i + 1)
            else:
                prev = energy[k - 1] if k > 0 and energy[k - 1] is not None else before
                energy[k] = prev + steps[k] * DYNAMIC_STEP
        i = j
    return [min(1.0, max(0.05, e if e is not None else 0.5)) for e in energy]


def plan_sections(plan: dict[str, Any] | None, total_bars: int) -> list[tuple[str, int, int, Any]]:
    """(name, start_bar, bars, section dict) from a plan, boundaries rounded to whole bars."""
    sections = plan.get("sections") if isinstance(plan, dict) else None
    if not isinstance(sections, list) or not sections:
        return []
    durs = []
    for s in sections:
        d = s.get("duration_ms", 0) if isinstance(s, dict) else 0
        durs.append(max(0.0, float(d)) if isinstance(d, int | float) else 0.0)
    total = sum(durs)
    if total <= 0:
        durs = [1.0] * len(sections)
        total = float(len(sections))
    count = min(len(sections), total_bars)
    out = []
    acc = 0.0
    start = 0
    for i in range(count):
        acc += durs[i]
        end = total_bars if i == count - 1 else round(acc / total * total_bars)
        end = max(end, start + 1)
        end = min(end, total_bars - (count - 1 - i))
        s = sections[i] if isinstance(sections[i], dict) else {}
        name = str(s.get("section_name", f"Section {i + 1}"))
        out.append((name, start, end - start, s))
        start = end
    return out


def auto_sections(total_bars: int) -> list[tuple[str, int, int, str, float]]:
    """An A/B/A'/C form in 8-bar (or 4-bar) sections: (name, start, bars, label, energy)."""
    if total_bars < 8:
        return [("A", 0, total_bars, "A", 1.0)]
    size = 8 if total_bars >= 24 else 4
    labels = [("A", 0.85), ("B", 1.0), ("A", 0.92), ("C", 1.1)]
    out = []
    start = 0
    i = 0
    while start < total_bars:
        bars = min(size, total_bars - start)
        if total_bars - (start + bars) < size // 2:
            bars = total_bars - start  # no stub at the end
        label, energy = labels[i % len(labels)]
        out.append((f"{label}{i // len(labels) or ''}", start, bars, label, energy))
        start += bars
        i += 1
    return out


def tie_across_seam(part: Part, length: float) -> None:
    """Sustained notes that end at the loop's end and start again at its top become one
    note across the seam (the renderer folds it), so the top is not re-attacked."""
    firsts = {round(n.p): n for n in reversed(part.notes) if n.t < 1e-6}
    tied: set[int] = set()
    for n in part.notes:
        first = firsts.get(round(n.p))
        if first is None or id(first) in tied or n is first:
            continue
        if abs(n.t + n.d - length) < 0.1:
            n.d = length - n.t + first.d
            tied.add(id(first))
    part.notes = [n for n in part.notes if id(n) not in tied]


def anticipate(part: Part, length: float, early: float) -> None:
    """The notes on the loop's first downbeat start ``early`` beats before the seam and
    hold across it (a push into the top, as a bass or a tune anticipates a downbeat): the
    loop point is then inside them, not an attack of them."""
    at = length - early
    firsts = [n for n in part.notes if n.t < 1e-6]
    if not firsts:
        return
    kept = []
    for n in part.notes:
        if n.t < 1e-6 or n.t >= at - 1e-6:
            continue
        if n.t + n.d > at:
            n.d = at - n.t
        kept.append(n)
    for n in firsts:
        kept.append(Note(at, early + n.d, n.p, n.v, n.b))
    part.notes = kept


def repeat_period(bars: int) -> int:
    """The longest of 8, 4, 2 bars that divides ``bars`` at least twice (else 1)."""
    return next((p for p in (8, 4, 2) if bars % p == 0 and bars > p), 1)
