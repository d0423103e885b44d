"""The composer: from a request to an arrangement (form, harmony, melody, rhythm, voices).

Time is counted in beats. A loop is a whole number of bars, and its seam (the jump from the
end back to the top) must be the calmest of its bar lines:

- the last bar's dominant resolves halfway through it, so the tonic holds across the seam;
- from there the first section's texture enters early (a pickup into the top), so a change
  of section never falls on the seam;
- every part pushes the first downbeat (its notes start half a beat early and hold across),
  and sustained notes tie over it, so the top is not an attack;
- nothing periodic (fills, timpani, cadences) happens only at the top or only before it.

The key is made unmistakable: tonic pedal in the bass, the tonic chord's third in the bass
line and on the tune's strong beats, tonic-triad common tones in the tune, no borrowed
chords in major. Sections (from a composition plan, or automatic A/B/A'/C forms) change the
arrangement at their boundaries. Composition choices use ``random.Random`` seeded from a
SHA-256 of the request (never ``hash()``), so a request always gives the same piece, and
another ``variant`` gives another take in the same tempo and key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from random import Random
from typing import Any

from segue.core.request import GenerationRequest
from segue.plugins.synth.drums import DRUM_GAIN, DRUM_TUNING, bar_pattern
from segue.plugins.synth.instruments import VOICES
from segue.plugins.synth.words import (
    MODES,
    Key,
    Traits,
    Words,
    bpm_in_prompt,
    key_in_prompt,
    parse_key,
    read_words,
    styles_words,
    tempo_from_words,
    traits_of,
)


@dataclass
class Note:
    t: float  # start, beats from the track start
    d: float  # length, beats
    p: float  # MIDI pitch (drums: ignored, or a timpani pitch)
    v: float  # velocity 0..1
    b: float = 0.5  # brightness 0..1


@dataclass
class Part:
    voice: str  # a VOICES name, or "drum:<sound>"
    role: str
    notes: list[Note] = field(default_factory=list)
    gain: float = 1.0
    pan: float = 0.0
    send: float = 0.3
    echo: float = 0.0


@dataclass
class Section:
    name: str
    start_bar: int
    bars: int
    traits: Traits
    energy: float
    label: str  # sections sharing a label share motifs
    build: bool = False
    roles: dict[str, str | None] = field(default_factory=dict)
    kit: str | None = None


@dataclass
class Arrangement:
    bpm: float
    beats_per_bar: int
    key: Key
    bars: int
    loop: bool
    length_beats: float  # loop length (loops) or the whole file (stingers)
    sections: list[Section]
    parts: list[Part]
    space: float
    brightness: float
    lofi: bool = False
    swing: float = 0.0
    seed: int = 0
    length_s: float | None = None  # stingers: exact file length


# --- seeds ----------------------------------------------------------------------------------------
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


# --- harmony --------------------------------------------------------------------------------------
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
    "heroic": ["I IV V I", "I V vi IV", "I V IV V", "I vi IV V", "I IV I V", "I iii IV V"],
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
    "sad": ["i iv i V", "i bVI iv V", "i bVI i V", "i iv bVI V", "i bVI iv i"],
    "tense": ["i bII i V", "i i bVI V", "i iv i bII", "i bVI i V", "i ii° V i"],
    "dorian": ["i IV i IV", "i IV bVII i", "i v IV i", "i bIII IV i"],
    "mixolydian": ["I bVII IV I", "I v IV I", "I bVII I IV"],
    "phrygian": ["i bII i bII", "i bII bVII i", "i bII biii bII"],
    "lydian": ["I II I II", "I II vii I", "I II V I"],
    "locrian": ["i° bII i° bv"],
}
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


def _pool(key: Key, traits: Traits) -> list[str]:
    if key.mode == "major":
        return PROGRESSIONS["heroic" if traits.energy > 0.65 else "major"]
    if key.mode in {"minor", "harmonic minor"}:
        if traits.tension > 0.7:
            return PROGRESSIONS["tense"]
        if traits.energy < 0.35:
            return PROGRESSIONS["sad"]
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


# --- helpers --------------------------------------------------------------------------------------
def _nearest(pitches: list[int], target: float) -> int:
    return min(pitches, key=lambda p: (abs(p - target), p))


def _pitches_in(pcs: list[int], lo: int, hi: int) -> list[int]:
    return [p for p in range(lo, hi + 1) if p % 12 in pcs]


def _voicing(pcs: list[int], lo: int, hi: int, prev: list[int] | None, size: int) -> list[int]:
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


# --- sections -------------------------------------------------------------------------------------
SECTION_ENERGY = {
    "intro": 0.65,
    "build": 0.85,
    "build-up": 0.85,
    "buildup": 0.85,
    "rising": 0.85,
    "climax": 1.2,
    "full": 1.15,
    "tutti": 1.2,
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
    "quiet": 0.6,
    "sparse": 0.6,
    "finale": 1.2,
}


def _section_energy(text: str) -> tuple[float, bool]:
    low = text.lower()
    factor = 1.0
    build = False
    for word, f in SECTION_ENERGY.items():
        if re.search(rf"\b{re.escape(word)}\b", low):
            factor = f
            build = build or word.startswith("build") or word == "rising"
    return factor, build


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


# --- palettes -------------------------------------------------------------------------------------
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


def mood_palette(t: Traits) -> dict[str, str | None]:
    """Default voices for a section's character when no genre says otherwise."""
    if t.energy >= 0.72 and t.valence < 0.3:  # battle, epic, danger
        return {
            "bass": "cello",
            "harmony": "strings",
            "arp": "strings",
            "melody": "brass",
            "counter": "choir" if t.energy > 0.85 else None,
            "kit": "orchestral",
        }
    if t.energy >= 0.6 and t.valence >= 0.3:  # heroic, triumphant, upbeat
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


KIT_WORDS = {"taiko": "orchestral", "frame": "frame", "shaker": "soft"}
FALLBACK = {
    "bass": ["bass", "cello", "pluckbass"],
    "harmony": ["pad", "strings", "organ"],
    "arp": ["harp", "piano", "pizz", "guitar"],
    "melody": ["flute", "bells", "strings"],
    "counter": [None],
}


def choose_voices(t: Traits) -> tuple[dict[str, str | None], str | None]:
    palette: dict[str, str | None] = {}
    for g in t.genres:
        if g in GENRES:
            palette = dict(GENRES[g])
            break
    if not palette:
        palette = mood_palette(t)
    kit = palette.pop("kit", None)
    roles: dict[str, str | None] = {r: palette.get(r) for r in ROLES}
    claimed: set[str] = set()
    for inst in t.instruments:
        if inst in KIT_WORDS:
            kit = KIT_WORDS[inst] if kit != "orchestral" or inst == "taiko" else kit
            continue
        if inst == "drums":
            if kit in {None, "soft"}:
                kit = "orchestral" if "orchestral" in t.genres else "kit"
            continue
        if inst not in VOICES:
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
    for role, voice in roles.items():
        if voice is not None and voice in t.avoided:
            roles[role] = next((v for v in FALLBACK[role] if v not in t.avoided), None)
    if "vocals" in t.flags and roles.get("counter") is None and "choir" not in t.avoided:
        roles["counter"] = "choir"  # no singer here: a wordless choir stands in
    if any(w in t.avoided for w in ("drums", "taiko", "orchestral")) and kit in {
        "kit",
        "orchestral",
        "four",
        "frame",
    }:
        kit = "soft" if "drums" not in t.avoided else None
    if t.percussion < 0.2 and kit not in {None, "soft", "lofi"}:
        kit = "soft"
    return roles, kit


# --- rhythms --------------------------------------------------------------------------------------
MOTIFS_4 = {
    0: [[16], [8, 8], [12, 4], [8, 4, 4]],
    1: [[4, 4, 8], [6, 2, 8], [4, 4, 4, 4], [8, 4, 4], [6, 2, 4, 4], [4, 2, 2, 8]],
    2: [
        [2, 2, 4, 2, 2, 4],
        [3, 3, 2, 4, 4],
        [2, 2, 2, 2, 4, 4],
        [4, 2, 2, 4, 2, 2],
        [3, 3, 2, 2, 2, 4],
    ],
}
MOTIFS_3 = {
    0: [[12], [8, 4]],
    1: [[4, 4, 4], [6, 2, 4], [8, 2, 2]],
    2: [[2, 2, 4, 4], [2, 2, 2, 2, 4], [3, 3, 2, 2, 2]],
}


@dataclass
class Context:
    key: Key
    bpb: int
    chords: list[Chord]  # one per bar of the loop
    scale: list[int]
    bpm: float
    variant_bits: int
    # Bars whose harmony changes inside the bar: bar -> (beat, chord from that beat on).
    turns: dict[int, tuple[float, Chord]] = field(default_factory=dict)

    def chord_at(self, bar: int, beat: float = 0.0) -> Chord:
        """The chord sounding ``beat`` beats into ``bar``."""
        bar %= len(self.chords)
        turn = self.turns.get(bar)
        if turn is not None and beat >= turn[0] - 1e-6:
            return turn[1]
        return self.chords[bar]

    def spans(self, bar: int) -> list[tuple[float, float, Chord]]:
        """(start beat, end beat, chord) for each chord in ``bar``."""
        first = self.chords[bar % len(self.chords)]
        turn = self.turns.get(bar % len(self.chords))
        if turn is None:
            return [(0.0, float(self.bpb), first)]
        return [(0.0, turn[0], first), (turn[0], float(self.bpb), turn[1])]


def _melody(
    ctx: Context,
    sec: Section,
    voice: str,
    motif_rng: Random,
    density: int,
    vel: float,
    bright: float,
    octave_shift: int = 0,
) -> list[Note]:
    """A melody over the section: motif, its sequence, repeat, and a cadence at the end of
    each whole phrase (4 bars, or 2 in a 4-bar section)."""
    v = VOICES[voice]
    lo, hi = v.low + 12 * octave_shift, v.high + 12 * octave_shift
    tonic = ctx.key.tonic
    pool = (MOTIFS_4 if ctx.bpb == 4 else MOTIFS_3)[density]
    motif = motif_rng.choice(pool)
    alt = motif_rng.choice(pool)
    contour = [motif_rng.choice((-2, -1, -1, 1, 1, 2, 0)) for _ in range(8)]
    notes: list[Note] = []
    prev = float(lo + (hi - lo) * 0.45)
    scale_pcs = [(tonic + s) % 12 for s in ctx.scale]
    home_pcs = set(ctx.chords[0].pcs(tonic))
    home_third = ctx.chords[0].pcs(tonic)[1]
    # Phrases of 4 bars (2 in a 4-bar section) end in a cadence bar; a phrase the section
    # cuts short runs on into the next bar line. So the section's last bar (before the
    # loop's seam, for the last section) is a cadence only if bars inside it are too.
    phrase = 2 if sec.bars == 4 else 4
    for i in range(sec.bars):
        bar = sec.start_bar + i
        phrase_pos = i % phrase
        last_bar = phrase_pos == phrase - 1
        rhythm = motif if phrase_pos in (0, 2) else alt
        if last_bar:
            rhythm = [8, 8] if ctx.bpb == 4 else [8, 4]
            if density == 0:
                rhythm = [ctx.bpb * 4]
        step = 0
        shift = (1 if phrase_pos == 1 else 0) + (2 if phrase_pos == 2 and sec.label != "A" else 0)
        for j, dur in enumerate(rhythm):
            ch = ctx.chord_at(bar, step / 4)
            chord_pcs = ch.pcs(tonic)
            cs = [(tonic + s) % 12 for s in chord_scale(ctx.scale, ch)]
            chord_p = _pitches_in(chord_pcs, lo, hi)
            scale_p = _pitches_in(cs, lo, hi) or _pitches_in(scale_pcs, lo, hi)
            strong = step % 8 == 0 or j == 0 or ch != ctx.chord_at(bar, (step - 1) / 4)
            if strong or last_bar:
                target = prev + contour[(j + shift) % len(contour)] * 2
                # Strong beats sit on a chord tone the tonic triad shares (a common tone: the
                # tune keeps the key's home notes while the harmony moves), else on the
                # chord's root or third; the fifth only when nothing else is near.
                core = [q for q in chord_p if q % 12 in home_pcs] or [
                    q for q in chord_p if q % 12 in chord_pcs[:2]
                ]
                p = _nearest(core, target) if core else _nearest(chord_p, target)
                # The tonic's third, the mode's own note, when the chord holds it and it is
                # near: on the tonic chord's first note in major (where it ranks after the
                # tonic and the fifth), on every strong beat in minor (where it ranks second).
                thirds = [q for q in chord_p if q % 12 == home_third and abs(q - target) <= 4]
                if thirds and (ctx.key.minor or (ch.root == 0 and j == 0)):
                    p = _nearest(thirds, target)
                if abs(p - target) > 4:
                    p = _nearest(chord_p, target)
                if last_bar and j == len(rhythm) - 1 and bar == len(ctx.chords) - 1:
                    p = _nearest(chord_p, prev)
            else:
                idx = scale_p.index(_nearest(scale_p, prev))
                move = contour[(j + shift) % len(contour)]
                move = max(-2, min(2, move)) or 1
                idx = max(0, min(len(scale_p) - 1, idx + move))
                p = scale_p[idx]
            # keep the line in range and singable: leaps over a sixth fold back
            if abs(p - prev) > 9:
                p = _nearest(chord_p if strong else scale_p, prev)
            rest = density == 2 and not strong and motif_rng.random() < 0.08
            beat = bar * ctx.bpb + step / 4
            if not rest:
                d = dur / 4 * (0.92 if v.legato or voice in {"flute", "brass", "lead"} else 1.0)
                accent = 1.0 if step % 4 == 0 else 0.82
                notes.append(Note(beat, d, p, vel * accent, bright))
                prev = float(p)
            step += dur
    return notes


def _counter(ctx: Context, sec: Section, voice: str, vel: float, bright: float) -> list[Note]:
    """Sustained guide tones (thirds and sevenths), one per half bar or bar, voice-led."""
    v = VOICES[voice]
    lo, hi = v.low, min(v.high, v.low + 19)
    tonic = ctx.key.tonic
    notes = []
    prev = (lo + hi) / 2
    half = ctx.bpb == 4 and sec.energy > 0.9
    for i in range(sec.bars):
        bar = sec.start_bar + i
        spans = ctx.spans(bar)
        if half and len(spans) == 1:
            mid = ctx.bpb / 2
            spans = [(0.0, mid, spans[0][2]), (mid, float(ctx.bpb), spans[0][2])]
        for k, (a, b, ch) in enumerate(spans):
            pcs = ch.pcs(tonic)
            guide = [pcs[1], pcs[-1]] if len(pcs) > 2 else pcs
            cands = _pitches_in(guide, lo, hi) or _pitches_in(pcs, lo, hi)
            p = _nearest(cands, prev + (1 if (i + k) % 2 else -1))
            notes.append(Note(bar * ctx.bpb + a, (b - a) * 0.98, p, vel, bright))
            prev = p
    return notes


def _harmony(
    ctx: Context, sec: Section, voice: str, vel: float, bright: float, style: str
) -> list[Note]:
    v = VOICES[voice]
    tonic = ctx.key.tonic
    notes: list[Note] = []
    prev: list[int] | None = None
    lo = 52 if voice not in {"drone", "organ"} else v.low
    hi = 74
    size = 4 if sec.energy > 0.6 and voice in {"strings", "pad", "choir", "organ"} else 3
    drone = _nearest(_pitches_in([tonic], 36, 48), 42)
    for i in range(sec.bars):
        bar = sec.start_bar + i
        start = bar * ctx.bpb
        for a, b, ch in ctx.spans(bar):
            if voice == "drone":
                chord_notes = [drone, drone + 7]
            else:
                chord_notes = _voicing(ch.pcs(tonic), lo, hi, prev, size)
                prev = chord_notes
            if style == "sustain":
                for p in chord_notes:
                    notes.append(Note(start + a, b - a, p, vel, bright))
                continue
            if style == "pulse":
                step = 1.0 if sec.energy < 0.7 else 0.5
                hits = [k * step for k in range(round(ctx.bpb / step))]
                length = step * 0.8
            else:  # stabs
                hits = [0, 1.5, 3] if ctx.bpb == 4 else [0, 1.5]
                if ctx.variant_bits & 2:
                    hits = [0, 0.75, 1.5, 3] if ctx.bpb == 4 else [0, 2]
                length = 0.4
            for h in hits:
                if not a - 1e-6 <= h < b - 1e-6:
                    continue
                accent = 1.0 if h == 0 else 0.8 if style == "stabs" else 1.0 if h == int(h) else 0.7
                for p in chord_notes:
                    notes.append(Note(start + h, length, p, vel * accent, bright))
    return notes


ARP_PATTERNS = {
    "up": [0, 1, 2, 3],
    "updown": [0, 1, 2, 3, 2, 1],
    "alberti": [0, 2, 1, 2],
    "broken": [0, 2, 1, 3],
    "pendulum": [0, 1, 0, 2],
}


def _arp(
    ctx: Context, sec: Section, voice: str, vel: float, bright: float, rng: Random, ostinato: bool
) -> list[Note]:
    """Broken chords (or a low ostinato) on an even grid, accented on the beats."""
    v = VOICES[voice]
    tonic = ctx.key.tonic
    e = sec.energy
    rate = 1.0 if e < 0.25 else 0.5 if e < 0.78 else 0.25
    if voice in {"piano", "harp", "guitar", "koto"} and rate < 0.5 and ctx.bpb == 4:
        rate = 0.5 if e < 0.9 else 0.25
    if ctx.bpm < 92 and e < 0.5:
        rate = 1.0  # slow and gentle: one note a beat keeps the pulse unambiguous
    if e < 0.12 and ctx.bpm >= 100 and ctx.bpb == 4:
        rate = 2.0  # sparse: the bass keeps the beat
    if (ctx.bpm > 150 or ctx.bpm < 100) and rate < 0.5:
        rate = 0.5
    pattern = ARP_PATTERNS[rng.choice(sorted(ARP_PATTERNS))]
    lo = v.low if not ostinato else max(v.low, 48)
    notes: list[Note] = []

    def sequence(ch: Chord) -> list[int]:
        pcs = ch.pcs(tonic)
        if ostinato:
            root = _nearest(_pitches_in([pcs[0]], lo, lo + 12), lo + 6)
            if sec.traits.tension > 0.7:
                return [root, root, root + 1, root]
            return [root, root, root + 7 if ctx.variant_bits & 1 else root + 12, root]
        # Root position: the accented first note of the pattern is the chord's root.
        base = _pitches_in([pcs[0]], lo, lo + 11)[0]
        ladder = _pitches_in(pcs, base, base + 19)
        return [ladder[k % len(ladder)] for k in pattern]

    for i in range(sec.bars):
        bar = sec.start_bar + i
        k = 0
        t = 0.0
        while t < ctx.bpb - 1e-6:
            seq = sequence(ctx.chord_at(bar, t))
            p = seq[k % len(seq)]
            on_beat = abs(t - round(t)) < 1e-6
            accent = 1.0 if on_beat else 0.45
            d = rate * (0.5 if ostinato else 1.6 if voice in {"harp", "guitar", "koto"} else 0.9)
            notes.append(Note(bar * ctx.bpb + t, d, p, vel * accent, bright))
            t += rate
            k += 1
    return notes


def _bass(
    ctx: Context, sec: Section, voice: str, vel: float, bright: float, genre: str | None
) -> list[Note]:
    v = VOICES[voice]
    e = sec.energy
    notes: list[Note] = []
    home = ctx.chords[0]
    for i in range(sec.bars):
        bar = sec.start_bar + i
        for a, b, ch in ctx.spans(bar):
            # A tonic pedal: the second bar of each phrase keeps the tonic in the bass.
            if i % 4 == 1 and bar not in ctx.turns:
                ch = home
            notes += [
                n
                for n in _bass_bar(ctx, bar, ch, v.low, e, voice, vel, bright, genre)
                if a - 1e-6 <= n.t - bar * ctx.bpb < b - 1e-6
            ]
    return notes


def _bass_bar(
    ctx: Context,
    bar: int,
    ch: Chord,
    low: int,
    e: float,
    voice: str,
    vel: float,
    bright: float,
    genre: str | None,
) -> list[Note]:
    """A whole bar of the bass line on chord ``ch`` (the caller keeps the chord's span)."""
    notes: list[Note] = []
    root = _nearest(_pitches_in([(ctx.key.tonic + ch.root) % 12], low, low + 11), low + 5)
    rel = [(t - ch.root) % 12 for t in ch.tones]
    third = root + (rel[1] if len(rel) > 2 else 4)
    fifth = root + (rel[2] if len(rel) > 2 else 7)
    # On the tonic chord the bass also sounds its third: the one note that tells major from
    # minor, where the bass (the loudest, lowest part) otherwise gives only roots.
    home = ch.root == 0
    start = bar * ctx.bpb
    if genre in {"synthwave", "chiptune"} or (voice == "synthbass" and e > 0.5):
        for k in range(ctx.bpb * 2):
            p = root + (12 if k % 2 and genre != "electronic" else 0)
            if home and k % 4 == 3:
                p = third
            notes.append(Note(start + k / 2, 0.42, p, vel * (1.0 if k % 2 == 0 else 0.8), bright))
    elif genre == "jazz":
        tones = [root, third, fifth, root + 9]
        for k in range(ctx.bpb):
            notes.append(Note(start + k, 0.9, tones[k % 4], vel, bright))
    elif e > 0.72:
        off = 0.75 if ctx.bpm >= 100 else 0.5
        for k in range(ctx.bpb * 2):
            p = root
            if k % 4 == 3:
                p = third if home else fifth if ctx.variant_bits & 1 else root + 12
            notes.append(Note(start + k / 2, 0.4, p, vel * (1.0 if k % 2 == 0 else off), bright))
    elif e > 0.38:
        line = [root, third if home else root, fifth if home else root, root]
        if ctx.bpb == 3:
            line = [root, third if home else fifth, fifth if home else root]
        for k in range(ctx.bpb):
            notes.append(Note(start + k, 0.85, line[k % 4], vel * (1.0 if k == 0 else 0.8), bright))
    else:  # gentle: the root on every beat, the downbeat strongest
        for k in range(ctx.bpb):
            p = third if home and k == ctx.bpb - 2 else root
            notes.append(Note(start + k, 0.9, p, vel * (1.0 if k == 0 else 0.7), bright))
    return notes


def _drums(
    ctx: Context, sec: Section, kit: str, level: float, multi: bool
) -> dict[str, list[Note]]:
    out: dict[str, list[Note]] = {}
    steps = ctx.bpb * 4
    timp = _nearest(_pitches_in([ctx.key.tonic], 40, 52), 45)
    tuning = {
        name: _pitches_in([(ctx.key.tonic + above) % 12], lo, hi)[0]
        for name, (lo, hi, above) in DRUM_TUNING.items()
    }
    # Anything periodic repeats with a period that divides the section, so the bar line at
    # the section's end (the loop's seam, for the last one) is like the ones inside it.
    period = _period(sec.bars)
    for i in range(sec.bars):
        bar = sec.start_bar + i
        last = i == sec.bars - 1
        # A fill leads into every section and back into the loop's top.
        fill = (last and (sec.bars >= 2 or bar == len(ctx.chords) - 1)) or (
            i % 8 == 7 and period == 8 and ctx.variant_bits & 4 > 0
        )
        e = sec.energy
        if sec.build:
            e = max(0.3, e * (0.6 + 0.5 * (i + 1) / sec.bars))
        # A crash marks a section's start, but not the loop's top: it would mark the seam.
        crash = i == 0 and multi and bar > 0
        hits = bar_pattern(
            kit,
            ctx.bpb,
            e,
            fill,
            crash,
            ctx.variant_bits + (i // 2),
            ctx.bpm,
            sec.traits.brightness,
        )
        for step, sound, vel in hits:
            if step >= steps:
                continue
            pitch = tuning.get(sound, 0)
            note = Note(bar * ctx.bpb + step / 4, 0.25, pitch, vel * level, sec.traits.brightness)
            out.setdefault(sound, []).append(note)
        if kit == "orchestral" and i % min(4, period) == 0:
            out.setdefault("timp", []).append(Note(bar * ctx.bpb, 1, timp, 0.8 * level, 0.5))
    return out


def _tie_across_seam(part: Part, length: float) -> None:
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


def _anticipate(part: Part, length: float, early: float) -> None:
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


def _period(bars: int) -> int:
    """The longest of 8, 4, 2 bars that divides ``bars`` at least twice (else 1)."""
    return next((p for p in (8, 4, 2) if bars % p == 0 and bars > p), 1)


# --- the whole piece ------------------------------------------------------------------------------
def _global_words(request: GenerationRequest) -> Words:
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


def compose(request: GenerationRequest) -> Arrangement:
    if request.stinger:
        from segue.plugins.synth.stinger import compose_stinger

        return compose_stinger(request)
    base_seed = request_seed(request, with_variant=False)
    seed = request_seed(request, with_variant=True)
    rng = Random(seed)
    words = _global_words(request)
    gtraits = traits_of(words)
    bpm = resolve_tempo(request, words, gtraits)
    key = resolve_key(request, gtraits, base_seed)
    bpb = 3 if "waltz" in gtraits.flags or "waltz" in gtraits.genres else 4
    bar_s = bpb * 60.0 / bpm
    bars = max(1, round(request.duration_s / bar_s))
    variant_bits = rng.getrandbits(8)

    # Sections.
    sections: list[Section] = []
    plan = request.composition_plan if isinstance(request.composition_plan, dict) else None
    planned = plan_sections(plan, bars) if plan else []
    if planned:
        for name, start, nbars, s in planned:
            local = read_words(name, 1.5)
            local = local.merge(styles_words(s.get("positive_local_styles"), 1.5))
            local = local.merge(styles_words(s.get("negative_local_styles"), -0.75))
            traits = traits_of(words.merge(local))
            text = " ".join(
                [name, *[x for x in s.get("positive_local_styles") or [] if isinstance(x, str)]]
            )
            factor, build = _section_energy(text)
            energy = min(1.0, max(0.05, traits.energy * factor))
            sections.append(Section(name, start, nbars, traits, energy, name, build))
    else:
        for name, start, nbars, label, factor in auto_sections(bars):
            energy = min(1.0, max(0.05, gtraits.energy * factor))
            sections.append(Section(name, start, nbars, gtraits, energy, label))

    # Harmony: one chord per bar, tonic first, a dominant at the loop's end.
    scale = list(MODES[key.mode])
    pool = _pool(key, gtraits)
    chords: list[Chord] = []
    prog_rng = Random(seed ^ 0x5EED)
    label_prog: dict[str, list[str]] = {}
    for sec in sections:
        prog = label_prog.setdefault(sec.label, prog_rng.choice(pool).split())
        for i in range(sec.bars):
            chords.append(chord(prog[i % len(prog)]))
    tonic_chord = chord("I" if not key.minor else "i" if key.mode != "locrian" else "i°")
    turns: dict[int, tuple[float, Chord]] = {}
    if bars >= 2:
        chords[-1] = chord(CADENCE.get(key.mode, "V"))
        if key.mode in {"major", "minor", "harmonic minor"} and bars >= 4:
            chords[-2] = chord("IV" if key.mode == "major" else "iv")
        # The dominant resolves inside the last bar, and the tonic holds across the seam:
        # the loop point is the one bar line with no change of harmony.
        turns[bars - 1] = (float(bpb // 2), tonic_chord)
    chords[0] = tonic_chord
    ctx = Context(key, bpb, chords, scale, bpm, variant_bits, turns)
    if "pentatonic" in gtraits.flags or "asian" in gtraits.genres:
        ctx.scale = [0, 2, 4, 7, 9] if not key.minor else [0, 3, 5, 7, 10]

    parts: dict[tuple[str, str], Part] = {}

    def part(voice: str, role: str) -> Part:
        k = (voice, role)
        if k not in parts:
            pan = {"bass": 0.0, "harmony": 0.0, "arp": -0.35, "melody": 0.15, "counter": 0.4}.get(
                role, 0.0
            )
            parts[k] = Part(voice, role, pan=pan)
        return parts[k]

    genre = gtraits.genres[0] if gtraits.genres else None
    motif_seeds: dict[str, int] = {}
    multi = len(sections) > 1

    def arrange(sec: Section, first: bool) -> list[tuple[str, str, list[Note]]]:
        """Every part's notes in ``sec``: (voice, role, notes)."""
        out: list[tuple[str, str, list[Note]]] = []
        t = sec.traits
        e = sec.energy
        bright = t.brightness
        density = 0 if e < 0.3 else 1 if e < 0.7 else 2
        mrng = Random(motif_seeds.setdefault(sec.label, rng.getrandbits(32)))
        r = sec.roles
        if r.get("bass"):
            out.append((r["bass"], "bass", _bass(ctx, sec, r["bass"], 0.8, bright, genre)))
        if r.get("harmony"):
            hv = r["harmony"]
            style = "sustain"
            if hv in {"piano", "epiano"}:
                style = "pulse"
            elif hv == "brass":
                style = "stabs"
            out.append((hv, "harmony", _harmony(ctx, sec, hv, 0.55, bright, style)))
        if r.get("arp"):
            av = r["arp"]
            ostinato = av in {"strings", "cello"} or (av == "pizz" and t.tension > 0.6)
            arp = _arp(ctx, sec, av, 0.7, bright, Random(mrng.random()), ostinato)
            out.append((av, "arp", arp))
        # The melody rests in the first section of long loops with sparse moods, and the
        # counter line joins when the energy rises.
        if r.get("melody") and not (sec.label == "A" and e < 0.3 and len(sections) > 2 and first):
            mv = r["melody"]
            out.append(
                (mv, "melody", _melody(ctx, sec, mv, Random(mrng.random()), density, 0.85, bright))
            )
        if r.get("counter") and (e >= 0.45 or sec.label in {"B", "C"} or len(sections) == 1):
            cv = r["counter"]
            if cv in {"choir", "strings", "pad", "organ", "drone", "brass"}:
                notes = _counter(ctx, sec, cv, 0.5, bright)
            else:
                notes = _melody(
                    ctx, sec, cv, Random(mrng.random() + 1), max(0, density - 1), 0.6, bright
                )
            out.append((cv, "counter", notes))
        if sec.kit:
            level = 0.45 + 0.55 * t.percussion
            if sec.kit == "soft":
                level = 0.5
            for sound, notes in _drums(ctx, sec, sec.kit, level, multi).items():
                out.append(("drum:" + sound, "drums", notes))
        return out

    for sec in sections:
        sec.roles, sec.kit = choose_voices(sec.traits)
        for voice, role, notes in arrange(sec, sec is sections[0]):
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
        for voice, role, notes in arrange(lead_in, True):
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
    length = float(bars * bpb)
    for (voice, role), p in parts.items():
        if not voice.startswith("drum:") and bars >= 2:
            if VOICES[voice].legato:
                _tie_across_seam(p, length)
            _anticipate(p, length, 0.5)
        if voice.startswith("drum:"):
            sound = voice[5:]
            p.gain = DRUM_GAIN[sound] * role_gain["drums"]
            p.send = 0.15 + 0.4 * space
        else:
            v = VOICES[voice]
            p.gain = v.gain * role_gain[role]
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
    )
