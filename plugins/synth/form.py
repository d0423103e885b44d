"""Form: a loop's sections (from a composition plan or an automatic A/B/A'/C form) and its seam.

A loop's seam (the jump from the end back to the top) must be the calmest of its bar lines:
sustained notes tie over it and every part anticipates the first downbeat, so the top is
not an attack; anything periodic repeats with a period that divides its section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from segue.plugins.synth.arrangement import Note, Part


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
        hardly"""),
        0.12,
    ),
    **dict.fromkeys(
        _each("""pp pianissimo hushed hush whispered whispering whisper whispers faint faintly
        very-soft very-quiet very-quietly very-softly very-gentle sotto-voce breathing
        whisper-quiet whisper-soft feather-light featherlight feather-soft pin-drop"""),
        0.18,
    ),
    **dict.fromkeys(
        _each("""soft softly quiet quietly gentle gently subdued muted muffled restrained sparse
        sparsely few-instruments a-few distant far-off far-away delicate delicately
        understated low-key hesitant tentative"""),
        0.28,
    ),
    **dict.fromkeys(_each("mp mezzo-piano moderately-soft held-back simmering smouldering"), 0.4),
    **dict.fromkeys(_each("mf mezzo-forte moderate moderately-loud steady"), 0.55),
    **dict.fromkeys(
        _each("""forte loud loudly strong strongly bold powerful big heavy vigorous
        vigorously fierce fiercely forceful forcefully emphatic"""),
        0.72,
    ),
    **dict.fromkeys(
        _each("""ff fortissimo thunderous thundering massive huge enormous immense colossal
        full-orchestra full-force full-power full-blast full-volume full-ensemble full-band
        full-strength tutti all-out everything all-instruments roaring explosive exploding
        overwhelming blazing towering wall-of-sound mighty earth-shaking blasting
        blaring blare blares raging ferocious furious full-tilt deafening fever-pitch
        full-might full-throttle"""),
        0.9,
    ),
    **dict.fromkeys(
        _each("""fff fortississimo peak apex climax climactic culmination culminating pinnacle
        zenith summit high-point highest-point maximum loudest ear-splitting
        ear-shattering"""),
        1.0,
    ),
}
# A mark alone as a whole style ("p", "f"): too common as letters to look for in a phrase.
DYNAMIC_LETTERS = {"p": 0.28, "f": 0.72}
# Words that ask a section to play louder (+1) or softer (-1) than the one before it; the
# first kind also grows through the section (``BUILDS``), but for these, which are louder
# from the section's first bar (a bigger band, an entrance).
STEPS_UP_AT_ONCE = """bigger fuller stronger louder heavier denser larger wider more-intense
more-drums joins join enter enters entering come-in comes-in added livelier busier"""
DYNAMIC_STEPS: dict[str, int] = {
    **dict.fromkeys(
        _each("""build builds building built build-up buildup rise rises rising risen grow grows
        growing swell swells swelling mount mounts mounting gather gathers gathering
        intensify intensifies intensifying intensified escalate escalates escalating surge
        surges surging crescendo cresc climb climbs climbing ascending more-and-more
        ever-louder quicken quickens quickening gaining-strength gains-strength
        gathering-strength strengthen strengthens strengthening heating-up heats-up
        picking-up picks-up ramping-up ramps-up"""),
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
        ease-off eases-off easing-off softening softens"""),
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
        low = _STEPS.sub(" , ", _LEVELS.sub(" , ", low))
        if low.strip() in DYNAMIC_LETTERS:
            return ""
    return low


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


@dataclass
class Dynamics:
    """What a section's words say of its loudness: a level (a mark), a step from the
    section before (+1 louder, -1 softer, 0: none), and whether it grows through."""

    level: float | None
    step: int
    build: bool


def read_dynamics(styles: list[str]) -> Dynamics:
    """A section's dynamics from its name and local styles: its most marked level
    ("thunderous, full orchestra, triumphant peak": a peak's), the sign of its step words."""
    levels: list[float] = []
    step = 0
    build = False
    for style in styles:
        low = style.lower().strip()
        if low in DYNAMIC_LETTERS:
            levels.append(DYNAMIC_LETTERS[low])
            continue
        levels += [DYNAMIC_LEVELS[_key(m)] for m in _LEVELS.findall(low)]
        rest = _LEVELS.sub(" ", low)  # "building" in "a building storm" is still a step
        for m in _STEPS.findall(rest):
            step += DYNAMIC_STEPS[_key(m)]
            build = build or _key(m) in BUILDS
    # The most marked of them: "faint, distant, ppp" is ppp.
    level = max(levels, key=lambda x: abs(x - 0.5)) if levels else None
    return Dynamics(level, (step > 0) - (step < 0), build)


def plan_shape(text: str) -> int:
    """+1 for a plan asked to grow as a whole ("one long crescendo", "builds throughout"),
    -1 to fade ("diminuendo", "fades out"), else 0."""
    total = sum(PLAN_SHAPES[_key(m)] for m in _SHAPES.findall(text.lower()))
    return (total > 0) - (total < 0)


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
        if d.level is not None:
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
