"""Harmony: chords from Roman numerals, progressions per mode and mood, voicings."""

from __future__ import annotations

import re
from dataclasses import dataclass

from segue.plugins.synth.words import Key, Traits

_ROMAN = re.compile(r"^(b|#)?(VII|VI|IV|V|III|II|I|vii|vi|iv|v|iii|ii|i)(°|o|\+|7|sus4)?$")
_DEGREE = {"i": 0, "ii": 2, "iii": 4, "iv": 5, "v": 7, "vi": 9, "vii": 11}


@dataclass(frozen=True)
class Chord:
    root: int  # semitones above the tonic
    tones: tuple[int, ...]  # semitones above the tonic, root first

    def pcs(self, tonic: int) -> list[int]:
        return [(tonic + t) % 12 for t in self.tones]


def chord(numeral: str) -> Chord:
    m = _ROMAN.match(numeral)
    if not m:
        raise ValueError(f"bad numeral {numeral!r}")
    acc, num, suffix = m.groups()
    root = _DEGREE[num.lower()] + (-1 if acc == "b" else 1 if acc == "#" else 0)
    if suffix in {"°", "o"}:
        ints = (0, 3, 6)
    elif suffix == "+":
        ints = (0, 4, 8)
    elif suffix == "sus4":
        ints = (0, 5, 7)
    elif num.isupper():
        ints = (0, 4, 7)
    else:
        ints = (0, 3, 7)
    if suffix == "7":
        ints = (*ints, 10 if num.isupper() or num.islower() else 11)
    return Chord(root % 12, tuple((root + i) % 12 for i in ints))


PROGRESSIONS: dict[str, list[str]] = {
    "major": [
        "I IV V I",
        "I vi IV V",
        "I IV I V",
        "I V I IV",
        "I ii V I",
        "I IV vi V",
        "I vi I V",
        "I IV ii V",
    ],
    "heroic": ["I IV V I", "I V vi IV", "I vi IV V", "I IV I V", "I iii IV V", "I IV vi V"],
    "minor": [
        "i bVI i V",
        "i iv V i",
        "i bVI iv V",
        "i bVII bVI V",
        "i iv bVI V",
        "i bVI bVII i",
        "i iv i V",
        "i bIII iv V",
    ],
    # Minor action moods: more chords (the minor v and iv, the modal bVII beside bVI and V),
    # minor ones above all, so the mode stays unmistakable.
    "epic": [
        "i iv bVI V",
        "i bVI iv bVII",
        "i v bVI iv",
        "i iv v i",
        "i bVII iv V",
        "i bVI bVII i",
        "i iv bVII i",
        "i v iv V",
    ],
    "sad": ["i iv i V", "i bVI iv V", "i bVI i V", "i iv bVI V", "i bVI iv i"],
    "tense": ["i bII i V", "i i bVI V", "i iv i bII", "i bVI i V", "i ii° V i"],
    # The modes' pools: each progression opens on the tonic and comes back to it once,
    # on the second bar, the third or the fourth, so that takes drawn unlike each other
    # (``takes``) share few of their tonic bars. In mixolydian IV never follows the tonic
    # (F mixolydian's I IV is Bb major's V I: heard as a cadence into the parent scale's
    # key), and bVII goes with IV or v, never with ii (bVII and ii after I I were heard in
    # ii, or in the parent scale's key).
    "dorian": [
        "i IV i IV",
        "i IV bVII i",
        "i v IV i",
        "i bIII IV i",
        "i bVII i IV",
        "i v i bVII",
        "i bVII v i",
        "i v i IV",
        "i i v bVII",
        "i i IV v",
    ],
    "mixolydian": [
        "I bVII IV I",
        "I v IV I",
        "I bVII I IV",
        "I v I IV",
        "I ii IV I",
        "I ii I IV",
        "I I v bVII",
        "I I bVII v",
        "I bVII v I",
        "I v bVII I",
    ],
    "phrygian": ["i bII i bII", "i bII bvii i", "i bII bIII bII"],
    # Lydian: I and II alone (II's third is the mode's raised fourth), each progression
    # another rhythm of the two. Its V and vii are the parent scale's tonic and dominant
    # chords: takes that played them were heard in the key a fifth up (C lydian's I II
    # vii I and I II V I in G major); vi, the tonic's relative minor, was heard as the
    # centre (C lydian's I II vi I in A minor), and so was II held two bars (B lydian's
    # I II II I in C# major).
    "lydian": ["I II I II", "I I II I", "I II I I", "I I I II"],
    "locrian": ["i° bII i° bV"],
}
# Modes whose pools come home every other bar, at other places in each progression.
HOMING = frozenset({"dorian", "mixolydian"})
# The chord that ends a loop (resolving onto bar one) and the stinger cadences.
CADENCE = {
    "major": "V",
    "minor": "V",
    "harmonic minor": "V",
    "dorian": "IV",
    "mixolydian": "bVII",
    "phrygian": "bII",
    "lydian": "II",
    "locrian": "bII",
}


def progression_pool(key: Key, traits: Traits) -> list[str]:
    if key.mode == "major":
        return PROGRESSIONS["heroic" if traits.energy > 0.65 else "major"]
    if key.mode in {"minor", "harmonic minor"}:
        if traits.tension > 0.7:
            return PROGRESSIONS["tense"]
        if traits.energy < 0.35:
            return PROGRESSIONS["sad"]
        if traits.energy > 0.65 and key.mode == "minor":
            return PROGRESSIONS["epic"]
        return PROGRESSIONS["minor"]
    return PROGRESSIONS.get(key.mode, PROGRESSIONS["minor"])


def chord_scale(scale: list[int], ch: Chord) -> list[int]:
    """The scale with the chord's altered tones in place of their neighbours."""
    s = set(scale)
    altered = [t for t in ch.tones if t not in s]
    for t in altered:
        for nb in ((t - 1) % 12, (t + 1) % 12):
            if nb in s and nb not in ch.tones and nb != 0:
                s.discard(nb)
        s.add(t)
    return sorted(s)


def nearest(pitches: list[int], target: float) -> int:
    return min(pitches, key=lambda p: (abs(p - target), p))


def pitches_in(pcs: list[int], lo: int, hi: int) -> list[int]:
    return [p for p in range(lo, hi + 1) if p % 12 in pcs]


def close_voicing(pcs: list[int], lo: int, hi: int, prev: list[int] | None, size: int) -> list[int]:
    """A close voicing of ``size`` notes in [lo, hi], led smoothly from ``prev``."""
    pcs = list(dict.fromkeys(pcs))
    best: list[int] | None = None
    best_cost = 1e9
    centre = (lo + hi) / 2
    for inv in range(len(pcs)):
        order = pcs[inv:] + pcs[:inv]
        for base in range(lo, lo + 12):
            if base % 12 != order[0]:
                continue
            notes = [base]
            for pc in (order * 2)[1:size]:
                nxt = notes[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                notes.append(nxt)
            if notes[-1] > hi + 3:
                continue
            if prev:
                cost = sum(min(abs(n - q) for q in prev) for n in notes)
            else:
                cost = abs(sum(notes) / len(notes) - centre)
            if cost < best_cost:
                best, best_cost = notes, cost
    return best or [lo + (pcs[0] - lo) % 12]
