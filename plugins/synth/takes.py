"""The harmonic plan of a take: its chords bar by bar, the chords that arrive inside a bar,
and whether its bass holds a tonic pedal.

Variants of a mood are other takes a composer writes of one cue: the same key, tempo and
meter, another harmony under another tune. Chords of one key share notes, so two takes
whose basses sit on the same root on the same beats are heard alike whatever else differs;
so each variant's plan is drawn knowing the earlier variants' (the three before it): per
section label, the progression of the mood's pool whose bass (the chord roots half bar by
half bar, pedals included) coincides least with theirs; a chord still on an earlier take's
root gives way to one a third away (``substitutes``); in minor keys the loop's closing
dominant is approached from iv, bVI or bVII. Only the first take (variant 0) holds the
tonic pedal in each phrase's second bar; the others' basses move there, unless that leaves
a take's bass on the tonic for less than a third of the loop. Dorian and mixolydian pools
(``HOMING``) come home every other bar, at another place in each progression: there no
take holds the pedal, and the broad take holds only a section's first tonic.

The key stays heard in every take: the loop and each section open on the tonic, the loop
ends on the dominant, which resolves across the seam, and a take keeps as many bars on the
tonic chord as the pool's own draw gave it and no more on any other chord (measured: a
dominant, a relative or a subdominant held a bar longer was heard as the centre).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import gcd
from random import Random

from segue.plugins.synth.arrangement import Section
from segue.plugins.synth.harmony import CADENCE, HOMING, Chord, chord
from segue.plugins.synth.parts import moves_off_the_pedal
from segue.plugins.synth.words import MODES, Key

# The chord before the loop's closing dominant, in the order variants take them (a major
# key's ii there was heard as its mediant's minor key: IV only).
PRE_CADENCE = {
    "major": ("IV",),
    "minor": ("iv", "bVI", "bVII"),
    "harmonic minor": ("iv", "bVI"),
}
EARLIER = 3  # a take is drawn unlike this many takes before it


def substitutes(ch: Chord, mode: str) -> list[Chord]:
    """The mode's major and minor triads that share two notes with ``ch`` (a third away:
    ii for IV, IV for vi, V for iii, iv for bVI...), but none that pulls towards another
    centre (``WEAK_ROOTS``); those that keep the key's tonic note first."""
    scale = MODES.get(mode, MODES["major"])
    out = []
    for i, root in enumerate(scale):
        tones = (root, scale[(i + 2) % 7], scale[(i + 4) % 7])
        if (tones[1] - root) % 12 not in (3, 4) or (tones[2] - root) % 12 != 7:
            continue  # diminished or augmented: not a chord to stand in for another
        if root == ch.root or root in WEAK_ROOTS or len(set(tones) & set(ch.tones)) < 2:
            continue
        out.append(Chord(root, tones))
    return sorted(out, key=lambda c: (0 not in c.tones, c.root))


@dataclass
class HarmonicPlan:
    chords: list[Chord]  # one per bar of the loop
    turns: dict[int, tuple[float, Chord]] = field(default_factory=dict)  # bar -> (beat, chord)
    pedal: bool = True  # the bass holds the tonic in each phrase's second bar

    def bass_roots(self, sections: Sequence[Section], bpb: int) -> list[int]:
        """The bass's root (semitones above the tonic) in each half bar of the loop."""
        bars = len(self.chords)
        out: list[int] = []
        for sec in sections:
            for i in range(sec.bars):
                b = sec.start_bar + i
                first = self.chords[b].root
                if self.pedal and i % 4 == 1 and b != bars - 1:
                    first = 0
                turn = self.turns.get(b)
                second = turn[1].root if turn is not None and turn[0] <= bpb / 2 else first
                out += [first, second]
        return out


def hash_label(label: str) -> int:
    """A stable number for a section label (``hash()`` changes between processes)."""
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:4], "big")


def progression_step(variant: int, size: int) -> int:
    """How far along a pool of ``size`` progressions ``variant`` starts: 0, 3, 6... apart,
    and when that comes round to a used one (a pool of 3 or 6), the next unused one, so
    the first ``size`` variants all take different progressions."""
    orbits = gcd(3, size)
    order = [(j + 3 * k) % size for j in range(orbits) for k in range(size // orbits)]
    return order[variant % size]


def _keep_pedal(
    plan: HarmonicPlan, sections: Sequence[Section], bpb: int, sub: int, key: Key, feel: str
) -> HarmonicPlan:
    """A take whose bass sits on the tonic for less than a third of the loop keeps the
    pedal (without it a short loop of I IV vi IV V was heard in the key of IV)."""
    if plan.pedal or moves_off_the_pedal(feel, sub, key.mode):
        return plan
    roots = plan.bass_roots(sections, bpb)
    plan.pedal = roots.count(0) < len(roots) / 3
    return plan


def plan_harmony(
    sections: Sequence[Section],
    bars: int,
    bpb: int,
    sub: int,
    key: Key,
    pool: Sequence[str],
    base_seed: int,
    variant: int,
    feel_of: Callable[[int], str],
) -> HarmonicPlan:
    """Variant ``variant``'s plan, each of the takes before it drawn first (they are what
    it is drawn unlike); ``feel_of(v)`` is variant ``v``'s feel."""
    plans: list[HarmonicPlan] = []
    for v in range(max(0, variant - 2 * EARLIER), variant + 1):
        plan = _draw(
            sections, bars, bpb, sub, key, pool, base_seed, v, feel_of(v), plans[-EARLIER:]
        )
        plans.append(_keep_pedal(plan, sections, bpb, sub, key, feel_of(v)))
    return plans[-1]


def _draw(
    sections: Sequence[Section],
    bars: int,
    bpb: int,
    sub: int,
    key: Key,
    pool: Sequence[str],
    base_seed: int,
    variant: int,
    feel: str,
    avoid: list[HarmonicPlan],
) -> HarmonicPlan:
    labels = list(dict.fromkeys(sec.label for sec in sections))
    step = progression_step(variant, len(pool))
    orders = {}
    for label in labels:
        first = Random(base_seed ^ hash_label(label)).randrange(len(pool))
        orders[label] = [pool[(first + step + j) % len(pool)] for j in range(len(pool))]
    pres = PRE_CADENCE.get(key.mode, ())
    pre_order = [pres[(variant + j) % len(pres)] for j in range(len(pres))]
    choice: dict[str, str] = {label: order[0] for label, order in orders.items()}
    # The pool's own draw: the first of the pool's order for each label, IV (iv) before
    # the dominant; the first take plays it.
    pre = pres[0] if pres else None
    plan = _realise(sections, bars, bpb, sub, key, choice, pre, variant, feel)
    if not avoid:
        return plan
    avoided = [p.bass_roots(sections, bpb) for p in avoid]
    # The key stays as clear as in the pool's own draw: as many bars on the tonic chord
    # or more, no more on any other (the dominant, heard longer, is heard as the centre;
    # the relative too) but a bar more on ii or IV.
    drawn = _weight(plan)

    def clear(plan: HarmonicPlan) -> bool:
        w = _weight(plan)
        return w[0] >= drawn[0] and all(w[r] <= drawn[r] + (r in SLACK) for r in w if r)

    def cost(labels_choice: dict[str, str], pre: str | None) -> tuple[bool, int, int]:
        plan = _realise(sections, bars, bpb, sub, key, labels_choice, pre, variant, feel)
        roots = plan.bass_roots(sections, bpb)
        same = [sum(a == b for a, b in zip(roots, other, strict=False)) for other in avoided]
        return not clear(plan), max(same), sum(same)

    # Greedy, label by label then the cadence; ties keep the pool's own order (the draw).
    for label in labels:
        choice[label] = min(
            orders[label], key=lambda p: (*cost({**choice, label: p}, pre), orders[label].index(p))
        )
    if pre_order:
        pre = min(pre_order, key=lambda c: (*cost(choice, c), pre_order.index(c)))
    plan = _realise(sections, bars, bpb, sub, key, choice, pre, variant, feel)
    # Where the bass still sits on an earlier take's root, another chord under the bar (a
    # substitute a third away: ii for IV, IV for vi...), except on the tonic (the key),
    # a section's first bar and in the loop's cadence.
    roots = plan.bass_roots(sections, bpb)
    subs: dict[int, Chord] = {}
    firsts = {sec.start_bar for sec in sections}
    for b in range(1, bars - 2):
        taken = {other[h] for other in avoided for h in (2 * b, 2 * b + 1)}
        if b in firsts or roots[2 * b] not in taken or plan.chords[b].root == 0:
            continue
        fresh = [c for c in substitutes(plan.chords[b], key.mode) if c.root not in taken]
        if fresh:
            subs[b] = fresh[0]
    while subs:
        other = _realise(sections, bars, bpb, sub, key, choice, pre, variant, feel, subs)
        if clear(other):
            return other
        subs.pop(max(subs))  # fewer substitutes, from the loop's end
    return plan


WEAK_ROOTS = frozenset({3, 4, 8, 9, 10})  # iii/bIII, vi/bVI, bVII: other centres near by
SLACK: frozenset[int] = frozenset()  # roots that may take a bar more than the draw gave them


def _weight(plan: HarmonicPlan) -> dict[int, int]:
    """Bars per chord root (the tonic chord's under 0)."""
    out = dict.fromkeys(range(12), 0)
    for ch in plan.chords:
        out[ch.root] += 1
    return out


def _realise(
    sections: Sequence[Section],
    bars: int,
    bpb: int,
    sub: int,
    key: Key,
    label_prog: dict[str, str],
    pre: str | None,
    variant: int,
    feel: str,
    subs: dict[int, Chord] | None = None,
) -> HarmonicPlan:
    """The chords bar by bar from each label's progression (``subs``: bars reharmonised),
    with the loop's cadence."""
    chords: list[Chord] = []
    tonic_chord = chord("I" if not key.minor else "i" if key.mode != "locrian" else "i°")
    home = key.mode in HOMING  # a pool that comes home every other bar (see below)
    for sec in sections:
        prog = [chord(c) for c in label_prog[sec.label].split()]
        # Half-time (and the broad feel of 3/4 and compound meters): the tonic, opening
        # each section, holds two bars in sections of four bars and more, the others one.
        # Held as long as the tonic, a subdominant, a dominant or a mode's neighbour chord
        # (a mixolydian bVII) is heard as the centre: the piece in the key a fourth or a
        # fifth away, a mixolydian tune in its parent major scale.
        # A pool that comes home every other bar holds only the section's first tonic
        # (each held, the broad take's tonic fell on three bars of four: on most of the
        # other takes' tonic bars).
        span = 2 if feel == "halftime" and sec.bars >= 4 else 1
        k = 0
        while len(chords) < sec.start_bar + sec.bars:
            ch = prog[k % len(prog)]
            held = span if ch.tones == tonic_chord.tones and (k == 0 or not home) else 1
            if k == 0 and moves_off_the_pedal(feel, sub, key.mode):
                held = 1  # see moves_off_the_pedal: the straight take holds this tonic
            chords += [ch] * min(held, sec.start_bar + sec.bars - len(chords))
            k += 1
    for b, ch in (subs or {}).items():
        chords[b] = ch
    turns: dict[int, tuple[float, Chord]] = {}
    if bars >= 2:
        chords[-1] = chord(CADENCE.get(key.mode, "V"))
        if pre is not None and bars >= 4:
            chords[-2] = chord(pre)
            if chords[-3] == chords[-2] and bars >= 5:
                # Not the same chord for two bars before the cadence (with the driving
                # feel's turn, two and a half, beside one and a half of tonic: a short loop
                # heard in the key a fourth up): the tonic comes back before it.
                chords[-3] = tonic_chord
        # The dominant resolves inside the last bar, and the tonic holds across the seam:
        # the loop point is the one bar line with no change of harmony.
        turns[bars - 1] = (float(bpb // 2), tonic_chord)
    chords[0] = tonic_chord
    if key.mode in {"major", "minor", "harmonic minor"}:
        # A dominant that leads to the tonic (at a phrase's or the loop's end) takes its
        # seventh: the key's fourth degree beside its leading tone, the tritone only this
        # key's dominant holds, so the piece is not heard in the key a fifth up.
        dominant = chord("V").tones
        for b, ch in enumerate(chords):
            nxt = turns[b][1] if b in turns else chords[(b + 1) % bars]
            if ch.tones == dominant and nxt.tones == tonic_chord.tones:
                chords[b] = chord("V7")
    if feel == "driving":
        # Driving variants move the harmony twice as often in each phrase's second bar
        # (where the others hold a tonic pedal): halfway through it, the next bar's chord
        # arrives, when it is a primary chord (I, IV, V; a longer ii, iii or vi would
        # outweigh the key).
        for sec in sections:
            for b in range(sec.start_bar + 1, sec.start_bar + sec.bars - 1, 4):
                if b not in turns and b + 1 < bars - 1 and chords[b + 1].root in {0, 5, 7}:
                    turns[b] = (float(bpb // 2), chords[b + 1])
    if feel == "pushed":
        # Pushed: the next bar's chord arrives on the and of 4, anticipated (the bass, the
        # comping and a drum hit there), wherever the harmony changes at the bar line.
        for b in range(bars - 1):
            if b not in turns and chords[b + 1] != chords[b]:
                turns[b] = (bpb - 0.5, chords[b + 1])
    # Nor does a pool that comes home every other bar need a pedal: held in the first take's
    # bass, the tonic sounded on three bars of four there, on the others' tonic bars.
    pedal = variant == 0 and not home and not moves_off_the_pedal(feel, sub, key.mode)
    return HarmonicPlan(chords, turns, pedal)
