"""Prompt understanding: from words (prompt, plan styles, request fields) to musical traits.

Everything here is plain data and pure functions, so ``docs/generators.md`` can list the
vocabulary and tests can check it. A word contributes a *target* for each trait it knows
(tempo, valence, energy...); the section's traits are the weighted mean of the targets, pulled
from a neutral default. Negated words ("no drums", "without brass", "Avoid: vocals.", a plan's
negative styles) remove instruments and genres and push mood traits the other way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from segue.core.prompts import KEY_MODE_WORDS, PITCH_NAMES, TEMPO_PHRASE, stated_key

NOTE_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
PC_NAME = list(PITCH_NAMES)

MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
}
MODE_ALIASES = {
    "major": "major",
    "maj": "major",
    "ionian": "major",
    "minor": "minor",
    "min": "minor",
    "m": "minor",
    "aeolian": "minor",
    "dorian": "dorian",
    "phrygian": "phrygian",
    "lydian": "lydian",
    "mixolydian": "mixolydian",
    "locrian": "locrian",
    "harmonic minor": "harmonic minor",
}
MINOR_LIKE = {"minor", "dorian", "phrygian", "locrian", "harmonic minor"}

_ACC = r"(?:#|♯|b|♭|-sharp|-flat|\s+sharp|\s+flat)"
_MODE_WORDS = KEY_MODE_WORDS  # the mode words core reads in prompts (segue.core.prompts)
_KEY_FIELD = re.compile(
    rf"^\s*(?P<note>[A-G])(?P<acc>{_ACC})?\s*-?\s*(?P<mode>{_MODE_WORDS}|m)?\s*$", re.IGNORECASE
)
# What is written as a key but names no note ("in H minor", German for B minor; "key of X").
_NOT_A_NOTE = r"[H-Z](?:#|♯|♭|b)?"
_BAD_KEY_PROMPT = re.compile(
    rf"\b(?:[Ii]n\s+(?P<in>{_NOT_A_NOTE}[\s-]+(?i:{_MODE_WORDS}))"
    rf"|[Kk]ey(?:\s+of|:)\s+(?P<of>{_NOT_A_NOTE}(?:[\s-]+(?i:{_MODE_WORDS}))?)"
    rf"|(?P<h>H[\s-]+(?i:major|minor)))(?![\w#♯♭])"
)
MIN_BPM, MAX_BPM = 20.0, 300.0  # the score's range for a mood's bpm


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0..11
    mode: str  # a MODES name

    @property
    def minor(self) -> bool:
        return self.mode in MINOR_LIKE

    @property
    def name(self) -> str:
        return f"{PC_NAME[self.tonic]} {self.mode}"


def _accidental(acc: str | None) -> int:
    acc = (acc or "").strip().lower().lstrip("-")
    if acc in {"#", "♯", "sharp"}:
        return 1
    if acc in {"b", "♭", "flat"}:
        return -1
    return 0


def parse_key(text: str) -> Key | None:
    """A key field ("D major", "F# minor", "Bb dorian", "C#m", "E"), or None if unreadable."""
    m = _KEY_FIELD.match(text or "")
    if not m:
        return None
    tonic = (NOTE_PC[m.group("note").lower()] + _accidental(m.group("acc"))) % 12
    mode_word = re.sub(r"\s+", " ", (m.group("mode") or "major")).lower()
    if m.group("mode") == "M":  # "CM" is C major in chord shorthand
        mode_word = "major"
    return Key(tonic, MODE_ALIASES[mode_word])


def key_in_prompt(prompt: str) -> Key | None:
    """The first key the prompt states, read as the tempo/key transformer reads it
    (``segue.core.prompts.stated_key``: "in F# minor", "key of G", "Dorian" alone on D)."""
    stated = stated_key(prompt or "")
    return None if stated is None else Key(stated.tonic, MODE_ALIASES[stated.mode])


def unreadable_key_in_prompt(prompt: str) -> str | None:
    """A key the prompt asks for that names no note A-G ("in H minor", "key of X"), as
    written, or None."""
    m = _BAD_KEY_PROMPT.search(prompt or "")
    if m is None:
        return None
    return " ".join((m.group("in") or m.group("of") or m.group("h")).split())


def tempo_in_prompt(prompt: str) -> float | None:
    """The tempo the prompt asks for ("120 BPM"), in range or not, or None: the first
    phrase the tempo/key transformer reads as a tempo (``segue.core.prompts.TEMPO_PHRASE``)."""
    m = TEMPO_PHRASE.search(prompt or "")
    return float(m.group(1)) if m else None


def bpm_in_prompt(prompt: str) -> float | None:
    """The prompt's tempo when the synth can play it (``MIN_BPM`` to ``MAX_BPM``)."""
    bpm = tempo_in_prompt(prompt)
    if bpm is not None and MIN_BPM <= bpm <= MAX_BPM:
        return bpm
    return None


# --- vocabulary -------------------------------------------------------------------------------
# Traits are 0..1 except valence (-1 minor .. +1 major). ``tempo`` is BPM.
TRAITS = ("valence", "energy", "brightness", "space", "tension", "percussion")
NEUTRAL = {
    "valence": 0.2,
    "energy": 0.5,
    "brightness": 0.55,
    "space": 0.45,
    "tension": 0.2,
    "percussion": 0.5,
}


def _m(tempo: float | None = None, **traits: float) -> dict[str, float]:
    out = dict(traits)
    if tempo is not None:
        out["tempo"] = tempo
    return out


MOOD_WORDS: dict[str, dict[str, float]] = {
    # calm family
    "calm": _m(
        74, valence=0.4, energy=0.12, brightness=0.35, space=0.65, tension=0.0, percussion=0.1
    ),
    "peaceful": _m(
        72, valence=0.6, energy=0.1, brightness=0.4, space=0.65, tension=0.0, percussion=0.08
    ),
    "serene": _m(
        70, valence=0.5, energy=0.1, brightness=0.45, space=0.75, tension=0.0, percussion=0.05
    ),
    "tranquil": _m(
        70, valence=0.5, energy=0.1, brightness=0.4, space=0.7, tension=0.0, percussion=0.05
    ),
    "gentle": _m(
        78, valence=0.5, energy=0.2, brightness=0.4, space=0.55, tension=0.0, percussion=0.15
    ),
    "relaxed": _m(
        84, valence=0.5, energy=0.25, brightness=0.4, space=0.5, tension=0.0, percussion=0.3
    ),
    "soft": _m(None, energy=0.2, brightness=0.35, percussion=0.15),
    "warm": _m(None, valence=0.5, brightness=0.35),
    "dreamy": _m(76, valence=0.3, energy=0.2, brightness=0.45, space=0.85, percussion=0.1),
    "lullaby": _m(66, valence=0.6, energy=0.08, brightness=0.35, space=0.6, percussion=0.0),
    "cozy": _m(82, valence=0.7, energy=0.25, brightness=0.4, space=0.4, percussion=0.3),
    "wandering": _m(88, valence=0.4, energy=0.35, space=0.55, tension=0.1, percussion=0.3),
    "curious": _m(96, valence=0.4, energy=0.4, brightness=0.6, tension=0.2, percussion=0.35),
    "exploration": _m(92, valence=0.4, energy=0.4, space=0.55, percussion=0.35),
    "explore": _m(92, valence=0.4, energy=0.4, space=0.55, percussion=0.35),
    "pastoral": _m(84, valence=0.7, energy=0.3, brightness=0.55, space=0.5, percussion=0.2),
    "nostalgic": _m(80, valence=0.0, energy=0.25, brightness=0.4, space=0.6, percussion=0.25),
    "romantic": _m(76, valence=0.5, energy=0.3, brightness=0.45, space=0.6, percussion=0.15),
    "tender": _m(72, valence=0.4, energy=0.2, brightness=0.4, space=0.6, percussion=0.1),
    # A chapel's or a cloister's hush: slow, in major, a big room, hardly a drum.
    "reverent": _m(
        64, valence=0.4, energy=0.1, brightness=0.4, space=0.85, tension=0.05, percussion=0.05
    ),
    "march": _m(
        112, valence=0.2, energy=0.65, brightness=0.55, space=0.5, tension=0.35, percussion=0.85
    ),
    "evening": _m(
        80, valence=0.3, energy=0.22, brightness=0.35, space=0.6, tension=0.05, percussion=0.15
    ),
    "hopeful": _m(96, valence=0.8, energy=0.5, brightness=0.65, space=0.55, percussion=0.4),
    # happy family
    "happy": _m(116, valence=1.0, energy=0.6, brightness=0.7, tension=0.0, percussion=0.55),
    "joyful": _m(120, valence=1.0, energy=0.65, brightness=0.75, tension=0.0, percussion=0.6),
    "cheerful": _m(118, valence=1.0, energy=0.6, brightness=0.7, tension=0.0, percussion=0.55),
    "bright": _m(None, valence=0.7, brightness=0.85),
    "upbeat": _m(124, valence=0.8, energy=0.7, brightness=0.7, percussion=0.75),
    "uplifting": _m(112, valence=0.9, energy=0.6, brightness=0.7, percussion=0.5),
    "playful": _m(
        124, valence=0.9, energy=0.55, brightness=0.75, space=0.25, tension=0.1, percussion=0.5
    ),
    "whimsical": _m(
        112, valence=0.7, energy=0.45, brightness=0.75, space=0.35, tension=0.15, percussion=0.35
    ),
    "quirky": _m(116, valence=0.6, energy=0.5, brightness=0.7, space=0.3, percussion=0.45),
    "lively": _m(128, valence=0.8, energy=0.7, brightness=0.7, percussion=0.7),
    "festive": _m(126, valence=1.0, energy=0.75, brightness=0.75, percussion=0.75),
    # dark family
    "tense": _m(
        100, valence=-0.6, energy=0.5, brightness=0.4, space=0.45, tension=0.85, percussion=0.55
    ),
    "uneasy": _m(
        92, valence=-0.6, energy=0.4, brightness=0.4, space=0.5, tension=0.8, percussion=0.45
    ),
    "suspense": _m(
        96, valence=-0.6, energy=0.45, brightness=0.35, space=0.55, tension=0.9, percussion=0.5
    ),
    "suspenseful": _m(
        96, valence=-0.6, energy=0.45, brightness=0.35, space=0.55, tension=0.9, percussion=0.5
    ),
    "watchful": _m(96, valence=-0.4, energy=0.4, tension=0.7, percussion=0.45),
    "anxious": _m(110, valence=-0.6, energy=0.55, tension=0.85, percussion=0.55),
    "stealth": _m(92, valence=-0.5, energy=0.35, brightness=0.35, tension=0.7, percussion=0.4),
    "sneaky": _m(100, valence=-0.2, energy=0.4, brightness=0.45, tension=0.55, percussion=0.4),
    "dark": _m(None, valence=-0.9, brightness=0.2, tension=0.5),
    "ominous": _m(
        80, valence=-0.9, energy=0.35, brightness=0.25, space=0.7, tension=0.8, percussion=0.4
    ),
    "mysterious": _m(
        84, valence=-0.4, energy=0.3, brightness=0.45, space=0.75, tension=0.5, percussion=0.2
    ),
    "mystery": _m(
        84, valence=-0.4, energy=0.3, brightness=0.45, space=0.75, tension=0.5, percussion=0.2
    ),
    "eerie": _m(
        70, valence=-0.7, energy=0.2, brightness=0.5, space=0.9, tension=0.9, percussion=0.1
    ),
    "creepy": _m(
        72, valence=-0.8, energy=0.25, brightness=0.4, space=0.85, tension=0.9, percussion=0.15
    ),
    "haunting": _m(
        70, valence=-0.5, energy=0.2, brightness=0.45, space=0.9, tension=0.6, percussion=0.1
    ),
    "spooky": _m(
        88, valence=-0.6, energy=0.35, brightness=0.5, space=0.7, tension=0.7, percussion=0.3
    ),
    "horror": _m(
        66, valence=-1.0, energy=0.25, brightness=0.3, space=0.9, tension=1.0, percussion=0.2
    ),
    "sad": _m(
        66, valence=-0.9, energy=0.15, brightness=0.3, space=0.65, tension=0.2, percussion=0.08
    ),
    "melancholic": _m(
        68, valence=-0.8, energy=0.18, brightness=0.3, space=0.65, tension=0.2, percussion=0.1
    ),
    "melancholy": _m(
        68, valence=-0.8, energy=0.18, brightness=0.3, space=0.65, tension=0.2, percussion=0.1
    ),
    "somber": _m(
        64, valence=-0.9, energy=0.15, brightness=0.25, space=0.6, tension=0.3, percussion=0.1
    ),
    "mournful": _m(
        62, valence=-1.0, energy=0.12, brightness=0.25, space=0.7, tension=0.3, percussion=0.05
    ),
    "lonely": _m(66, valence=-0.7, energy=0.12, brightness=0.3, space=0.8, percussion=0.05),
    "tragic": _m(
        64, valence=-1.0, energy=0.3, brightness=0.3, space=0.7, tension=0.4, percussion=0.15
    ),
    "defeat": _m(62, valence=-1.0, energy=0.2, brightness=0.25, space=0.7, percussion=0.1),
    "desperate": _m(150, valence=-0.8, energy=0.9, brightness=0.5, tension=0.9, percussion=0.9),
    # epic / action family
    "epic": _m(
        132, valence=-0.2, energy=0.9, brightness=0.7, space=0.65, tension=0.4, percussion=0.95
    ),
    "heroic": _m(
        120, valence=0.8, energy=0.8, brightness=0.75, space=0.55, tension=0.2, percussion=0.8
    ),
    "triumphant": _m(
        116, valence=1.0, energy=0.85, brightness=0.85, space=0.55, tension=0.0, percussion=0.8
    ),
    "victory": _m(
        116, valence=1.0, energy=0.8, brightness=0.85, space=0.55, tension=0.0, percussion=0.75
    ),
    "victorious": _m(116, valence=1.0, energy=0.8, brightness=0.85, tension=0.0, percussion=0.75),
    "majestic": _m(96, valence=0.7, energy=0.65, brightness=0.65, space=0.7, percussion=0.6),
    "grand": _m(100, valence=0.5, energy=0.7, brightness=0.65, space=0.7, percussion=0.65),
    "noble": _m(96, valence=0.7, energy=0.55, brightness=0.6, space=0.6, percussion=0.5),
    "cinematic": _m(None, energy=0.6, space=0.65, percussion=0.6),
    "battle": _m(
        140, valence=-0.4, energy=0.95, brightness=0.7, space=0.45, tension=0.6, percussion=1.0
    ),
    "combat": _m(
        140, valence=-0.4, energy=0.95, brightness=0.7, space=0.45, tension=0.6, percussion=1.0
    ),
    "fight": _m(142, valence=-0.4, energy=0.95, brightness=0.7, tension=0.6, percussion=1.0),
    "war": _m(
        128, valence=-0.6, energy=0.9, brightness=0.6, space=0.6, tension=0.6, percussion=1.0
    ),
    "boss": _m(148, valence=-0.7, energy=1.0, brightness=0.7, tension=0.8, percussion=1.0),
    "danger": _m(150, valence=-0.7, energy=0.9, brightness=0.6, tension=0.85, percussion=0.95),
    "chase": _m(156, valence=-0.5, energy=0.95, brightness=0.7, tension=0.7, percussion=1.0),
    "aggressive": _m(148, valence=-0.6, energy=1.0, brightness=0.75, tension=0.7, percussion=1.0),
    "intense": _m(140, valence=-0.4, energy=0.9, brightness=0.65, tension=0.7, percussion=0.95),
    "urgent": _m(150, valence=-0.5, energy=0.9, tension=0.8, percussion=0.9),
    "frantic": _m(
        166, valence=-0.6, energy=1.0, brightness=0.7, space=0.35, tension=0.85, percussion=1.0
    ),
    "pounding": _m(None, energy=0.95, percussion=1.0),
    "powerful": _m(None, energy=0.85, percussion=0.85),
    "adventurous": _m(120, valence=0.7, energy=0.7, brightness=0.7, percussion=0.7),
    "adventure": _m(120, valence=0.7, energy=0.7, brightness=0.7, percussion=0.7),
    "energetic": _m(132, valence=0.5, energy=0.85, brightness=0.7, percussion=0.85),
}

# Synonyms and inflections read as one of the words above.
MOOD_ALIASES = {
    "calming": "calm",
    "calmly": "calm",
    "peace": "peaceful",
    "serenity": "serene",
    "relaxing": "relaxed",
    "chill": "relaxed",
    "mellow": "relaxed",
    "laid-back": "relaxed",
    "wonder": "curious",
    "curiosity": "curious",
    "explore": "explore",
    "exploring": "exploration",
    "joy": "joyful",
    "fun": "playful",
    "silly": "whimsical",
    "cute": "playful",
    "tension": "tense",
    "unease": "uneasy",
    "suspenseful": "suspense",
    "anxiety": "anxious",
    "darkness": "dark",
    "sinister": "ominous",
    "menacing": "ominous",
    "foreboding": "ominous",
    "mysterious": "mysterious",
    "enigmatic": "mysterious",
    "haunted": "haunting",
    "scary": "creepy",
    "sorrow": "sad",
    "sorrowful": "sad",
    "grief": "mournful",
    "dirge": "mournful",
    "lament": "mournful",
    "elegy": "mournful",
    "requiem": "mournful",
    "funeral": "mournful",
    "sadness": "sad",
    "melancholia": "melancholic",
    "heroes": "heroic",
    "hero": "heroic",
    "triumph": "triumphant",
    "glory": "triumphant",
    "glorious": "triumphant",
    "fanfare": "triumphant",
    "win": "victory",
    "battles": "battle",
    "fighting": "fight",
    "warfare": "war",
    "dangerous": "danger",
    "peril": "danger",
    "action": "intense",
    "panic": "frantic",
    "hectic": "frantic",
    "energy": "energetic",
    "defeated": "defeat",
    "game over": "defeat",
    "death": "tragic",
    "stealthy": "stealth",
    "creeping": "sneaky",
    # Everyday words for the same characters (a prompt's "sunny, merry and bouncy" is not
    # filler: under a score-wide "epic" it decides whether the market is a battle).
    "sunny": "cheerful",
    "cheery": "cheerful",
    "jolly": "cheerful",
    "merry": "joyful",
    "carefree": "happy",
    "bouncy": "playful",
    "jaunty": "playful",
    "lighthearted": "playful",
    "light-hearted": "playful",
    "goofy": "quirky",
    "bustling": "lively",
    "celebratory": "festive",
    "breezy": "relaxed",
    "smooth": "relaxed",
    "meditative": "calm",
    "soothing": "gentle",
    "graceful": "gentle",
    "sweet": "tender",
    "innocent": "tender",
    "sultry": "romantic",
    "ethereal": "dreamy",
    "dream": "dreamy",
    "dreams": "dreamy",
    "dreaming": "dreamy",
    "mystical": "mysterious",
    "wistful": "nostalgic",
    "bittersweet": "nostalgic",
    "longing": "nostalgic",
    "rustic": "pastoral",
    "brooding": "ominous",
    "grim": "dark",
    "gloomy": "somber",
    "dreary": "somber",
    "sombre": "somber",
    "fierce": "aggressive",
    "relentless": "intense",
    "chaotic": "frantic",
    "frenzied": "frantic",
    "thunderous": "powerful",
    "climactic": "epic",
    "dramatic": "cinematic",
    "bold": "heroic",
    "proud": "noble",
    "elegant": "noble",
    "stately": "majestic",
    "regal": "majestic",
    # Quiet hours and low spirits: calm words (under an "epic" style they keep the scene
    # slow and quiet, see ``traits_of``).
    "quiet": "calm",
    "hushed": "calm",
    # "Still and reverent", "a still pond": a calm word ("Moonlight in the empty cloister,
    # still and reverent" read no character word, and under the style's "epic" it was a
    # battle: taiko, a brass tune and a choir at 64 BPM). Only where it describes (the
    # adverb, "the battle still rages", says nothing of the mood).
    "still and": "calm",
    "and still": "calm",
    "so still": "calm",
    "very still": "calm",
    "still night": "calm",
    "still lake": "calm",
    "still pond": "calm",
    "still water": "calm",
    "still waters": "calm",
    "still air": "calm",
    "stillness": "calm",
    "motionless": "calm",
    "contemplative": "calm",
    "reflective": "calm",
    "reverence": "reverent",
    "reverential": "reverent",
    "prayerful": "reverent",
    "devotional": "reverent",
    "devout": "reverent",
    "lazy": "relaxed",
    "sleepy": "lullaby",
    "drowsy": "lullaby",
    "slumber": "lullaby",
    # a lullaby by its other names and spellings (each also 6/8: ``COMPOUND_WORDS``)
    "lullabies": "lullaby",
    "lullabye": "lullaby",
    "lullabyes": "lullaby",
    "hushabye": "lullaby",
    "rock-a-bye": "lullaby",
    "berceuse": "lullaby",
    "berceuses": "lullaby",
    "cradle song": "lullaby",
    "cradle songs": "lullaby",
    "marching": "march",
    "military": "march",
    "martial": "march",
    "marches": "march",
    "parade": "march",
    "parades": "march",
    "ghostly": "haunting",
    "desolate": "lonely",
    "gothic": "ominous",
    "dusk": "evening",
    "twilight": "evening",
    "sunset": "evening",
    "nightfall": "evening",
    # Fair days are festive, whatever the score's style: an "epic orchestral" village fair is
    # a celebration in a big hall, not a battle at 132 BPM in minor.
    "festival": "festive",
    "carnival": "festive",
    "fiesta": "festive",
    "fairground": "festive",
    "funfair": "festive",
    "village fair": "festive",
    "county fair": "festive",
    "harvest fair": "festive",
    "town fair": "festive",
    "celebration": "festive",
    "celebrations": "festive",
    "celebrate": "festive",
    "celebrating": "festive",
    "feast": "festive",
    "feasting": "festive",
}

TEMPO_WORDS = {
    "very slow": 56,
    "slow": 68,
    "slowly": 68,
    "largo": 52,
    "adagio": 66,
    "lento": 60,
    "andante": 84,
    "moderate": 100,
    "moderato": 104,
    "medium tempo": 100,
    "mid-tempo": 100,
    "allegro": 132,
    "uptempo": 128,
    "up-tempo": 128,
    "brisk": 130,
    "fast": 150,
    "very fast": 172,
    "vivace": 150,
    "presto": 172,
    "driving": 136,
    "lively": 128,
    "quick": 144,
    "rapid": 160,
    "leisurely": 76,
    "unhurried": 76,
    "laid-back": 84,
}

# Words that add drive without being a mood in themselves.
DRIVE_WORDS = {
    "driving": _m(None, energy=0.85, percussion=0.9),
    "ostinato": _m(None, energy=0.6, tension=0.6),
}

# Instrument words -> voice names (see instruments.VOICES).
INSTRUMENT_WORDS = {
    "harp": "harp",
    "harps": "harp",
    "lyre": "harp",
    "guitar": "guitar",
    "guitars": "guitar",
    "acoustic guitar": "guitar",
    "lute": "guitar",
    "ukulele": "guitar",
    "uke": "guitar",
    "classical guitar": "guitar",
    "nylon guitar": "guitar",
    "mandolin": "mandolin",
    "banjo": "banjo",
    "koto": "koto",
    "oud": "guitar",
    "sitar": "sitar",
    "shamisen": "shamisen",
    "harpsichord": "harpsichord",
    "clavichord": "harpsichord",
    "accordion": "accordion",
    "concertina": "accordion",
    "harmonica": "harmonica",
    "mouth organ": "harmonica",
    "bagpipe": "bagpipe",
    "bagpipes": "bagpipe",
    "uilleann pipes": "bagpipe",
    "saxophone": "sax",
    "sax": "sax",
    "alto sax": "sax",
    "tenor sax": "sax",
    "bassoon": "bassoon",
    "contrabassoon": "bassoon",
    "pizzicato": "pizz",
    "pizz": "pizz",
    "flute": "flute",
    "flutes": "flute",
    "piccolo": "piccolo",
    "piccolos": "piccolo",
    "fife": "piccolo",
    "clarinet": "clarinet",
    "clarinets": "clarinet",
    "oboe": "oboe",
    "oboes": "oboe",
    "english horn": "oboe",
    "cor anglais": "oboe",
    "shawm": "oboe",
    "dulcimer": "dulcimer",
    "hammered dulcimer": "dulcimer",
    "cimbalom": "dulcimer",
    "santur": "dulcimer",
    "bouzouki": "bouzouki",
    "bouzoukis": "bouzouki",
    "cittern": "bouzouki",
    "whistle": "flute",
    "tin whistle": "flute",
    "pan flute": "panflute",
    "panpipes": "panflute",
    "pan pipes": "panflute",
    "recorder": "recorder",
    "shakuhachi": "shakuhachi",
    "ocarina": "ocarina",
    "didgeridoo": "drone",
    "theremin": "theremin",
    "piano": "piano",
    "felt piano": "piano",
    "keys": "epiano",
    "electric piano": "epiano",
    "rhodes": "epiano",
    "e-piano": "epiano",
    "strings": "strings",
    "string": "strings",
    "violin": "violin",  # one player ("a lone violin"); the section is "violins", "strings"
    "violins": "strings",
    "solo violin": "violin",
    "viola": "viola",
    "violas": "viola",
    "erhu": "folkfiddle",
    "hurdy-gurdy": "folkfiddle",
    "nyckelharpa": "folkfiddle",
    "fiddle": "strings",
    "string ensemble": "strings",
    "cello": "cello",
    "cellos": "cello",
    "low strings": "cello",
    "double bass": "contrabass",
    "contrabass": "contrabass",
    "upright bass": "contrabass",
    "string bass": "contrabass",
    "brass": "brass",
    "horn": "horn",
    "horns": "horn",
    "french horn": "horn",
    "trumpet": "trumpet",
    "cornet": "trumpet",
    "bugle": "trumpet",
    "trombone": "trombone",
    "tuba": "tuba",
    "sousaphone": "tuba",
    "brass stabs": "brass",
    "choir": "choir",
    "choral": "choir",
    "voices": "choir",
    "chant": "choir",
    "vocal pad": "choir",
    "choir pad": "choir",
    "ooh": "choir",
    "aah": "choir",
    "pad": "pad",
    "pads": "pad",
    "synth pad": "pad",
    "drone": "drone",
    "drones": "drone",
    "bells": "bells",
    "bell": "bells",
    "chimes": "bells",
    "glockenspiel": "bells",
    "celesta": "celesta",
    "celeste": "celesta",
    "tubular bells": "bells",
    "music box": "musicbox",
    "musicbox": "musicbox",
    "kalimba": "kalimba",
    "thumb piano": "kalimba",
    "mbira": "kalimba",
    "marimba": "marimba",
    "xylophone": "xylophone",
    "vibraphone": "vibraphone",
    "vibes": "vibraphone",
    "steel drums": "steeldrum",
    "steel drum": "steeldrum",
    "steel pan": "steeldrum",
    "steelpan": "steeldrum",
    "handpan": "steeldrum",
    "hang drum": "steeldrum",
    "mallets": "marimba",
    "organ": "organ",
    "church organ": "organ",
    "pipe organ": "organ",
    "hammond": "organ",
    "synth": "lead",
    "synth lead": "lead",
    "lead": "lead",
    "arpeggio": "arp",
    "arpeggios": "arp",
    "arpeggiator": "arp",
    "arpeggiated": "arp",
    "bass": "bass",
    # (a sub bass and a reese bass are synthesizers: "jungle ... a booming reese bass" had
    # an electric bass doubling the synth bass)
    "sub bass": "synthbass",
    "reese bass": "synthbass",
    "reese": "synthbass",
    "bassline": "bass",
    "synth bass": "synthbass",
    "808 bass": "synthbass",
    "bass guitar": "bass",
    "electric bass": "bass",
    "808": "drums",
    "808s": "drums",
    "drum machine": "drums",
    "drum kit": "drums",
    "kit": "drums",
    # A march's own drums (a snare-led military kit: ``palette.KIT_WORDS``).
    "snare drum": "snare",
    "side drum": "snare",
    "field drum": "snare",
    "military drum": "snare",
    "military drums": "snare",
    "marching drum": "snare",
    "marching drums": "snare",
    "parade drum": "snare",
    "drum corps": "snare",
    "drumline": "snare",
    "drum line": "snare",
    "tenor drum": "snare",  # a drumline's tenors play its snares' rudiments
    "tenor drums": "snare",
    "drum cadence": "snare",
    "snare cadence": "snare",
    "kick drum": "drums",
    "bass drum": "drums",
    "cymbals": "drums",
    "hi-hat": "drums",
    "taiko": "taiko",
    "taikos": "taiko",
    "war drums": "taiko",
    "timpani": "taiko",
    "drums": "drums",
    "drum": "drums",
    "percussion": "drums",
    "beat": "drums",
    "toms": "taiko",
    "tribal drums": "taiko",
    "hand drums": "frame",
    "bodhran": "frame",
    "frame drum": "frame",
    "tambourine": "tambourine",
    "tambourines": "tambourine",
    "hand drum": "frame",
    "djembe": "conga",
    "congas": "conga",
    "conga": "conga",
    "bongos": "bongo",
    "bongo": "bongo",
    "tabla": "bongo",
    "castanets": "castanets",
    "castanet": "castanets",
    "triangle": "triangle",
    "cowbell": "cowbell",
    "maracas": "shaker",
    "shaker": "shaker",
    "shakers": "shaker",
    "hi-hats": "drums",
    "hihats": "drums",
    "kick": "drums",
    "snare": "snare",
    "woodblock": "woodblock",
    "woodblocks": "woodblock",
    "wood block": "woodblock",
    "wood blocks": "woodblock",
    "temple blocks": "woodblock",
    "anvil": "anvil",
    "anvils": "anvil",
    "hammer on anvil": "anvil",
    # Instruments of the world and of the band, as the General MIDI preset (or kit sound)
    # nearest in how it is played and sounds.
    "ney": "shakuhachi",  # end-blown reed flute
    "ney flute": "shakuhachi",
    "biwa": "shamisen",  # Japanese and Chinese lutes, plucked with a plectrum
    "pipa": "shamisen",
    "guzheng": "koto",  # the long zithers
    "zither": "koto",
    "qanun": "dulcimer",
    "kanun": "dulcimer",
    "shehnai": "oboe",  # double reeds
    "shenai": "oboe",
    "zurna": "oboe",
    "duduk": "oboe",
    "vihuela": "guitar",
    "guitarron": "pluckbass",
    "guitarrón": "pluckbass",
    "electric guitar": "guitar",
    "distorted guitar": "guitar",
    "slide guitar": "guitar",
    "steel guitar": "guitar",
    "spanish guitar": "guitar",
    "flamenco guitar": "guitar",
    "12-string guitar": "guitar",
    "slap bass": "bass",
    "fretless bass": "bass",
    "electro bass": "synthbass",
    "honky-tonk piano": "piano",
    "upright piano": "piano",
    "prepared piano": "piano",
    "calliope": "organ",  # a steam organ
    "steam organ": "organ",
    "singing bowl": "bells",
    "singing bowls": "bells",
    "whistling": "flute",
    "gregorian chant": "choir",
    "brushes": "brush",  # the jazz kit's brushed snare
    "brushed snare": "brush",
    "brushed drums": "brush",
    "crash cymbal": "drums",
    "darbuka": "conga",  # goblet and barrel drums, played by hand
    "doumbek": "conga",
    "dholak": "bongo",
    "cajon": "frame",
    "tapan": "frame",
    "davul": "frame",
    "sistrum": "shaker",
    # A strap of jingles shaken through the bar (the General MIDI kit's jingle bell).
    "sleigh bells": "sleighbells",
    "sleighbells": "sleighbells",
    "jingle bells": "sleighbells",
    # Instruments named with a word of their kind, size or make: the voice of the kind
    # ("penny whistle" played the tin whistle's flute, and ``segue plan`` listed "penny"
    # among the words it ignored).
    "penny whistle": "flute",
    "irish whistle": "flute",
    "tin flute": "flute",
    "wooden flute": "flute",
    "bamboo flute": "flute",
    "dizi": "flute",
    "bansuri": "flute",
    "concert harp": "harp",
    "celtic harp": "harp",
    "kora": "harp",
    "acoustic bass": "bass",  # General MIDI's acoustic bass
    "bowed bass": "contrabass",
    "bass clarinet": "clarinet",
    "alto saxophone": "sax",
    "tenor saxophone": "sax",
    "soprano sax": "sax",
    "soprano saxophone": "sax",
    "baritone sax": "sax",
    "baritone saxophone": "sax",
    "flugelhorn": "trumpet",
    "muted trumpet": "trumpet",
    "euphonium": "trombone",  # a tenor brass line (General MIDI has no euphonium)
    "baritone horn": "trombone",
    "hunting horn": "horn",
    "post horn": "horn",
    "war horn": "horn",
    "alphorn": "horn",
    "church bells": "bells",
    "hand bells": "bells",
    "handbells": "bells",
    "wind chimes": "bells",
    "crotales": "bells",
    "toy piano": "celesta",  # struck metal bars under a keyboard
    "electric organ": "organ",
    "harmonium": "organ",
    "reed organ": "organ",
    "pump organ": "organ",
    "melodica": "harmonica",  # a blown free reed
    "twelve-string guitar": "guitar",
    "mountain dulcimer": "dulcimer",
    "appalachian dulcimer": "dulcimer",
    "balalaika": "bouzouki",
    "mandola": "mandolin",
    "banjolele": "banjo",
    "highland bagpipes": "bagpipe",
    "string quartet": "strings",
    "kettle drum": "taiko",  # timpani
    "kettledrums": "taiko",
    "claves": "woodblock",
    "square lead": "chip",  # the 8-bit pulse waves
    "square wave": "chip",
    "pulse wave": "chip",
}

# Genre words -> genre names (see composer.GENRES).
GENRE_WORDS = {
    "orchestral": "orchestral",
    "orchestra": "orchestral",
    "symphonic": "orchestral",
    "full orchestra": "orchestral",
    "cinematic": "orchestral",
    "film score": "orchestral",
    "synthwave": "synthwave",
    "retrowave": "synthwave",
    "outrun": "synthwave",
    "80s": "synthwave",
    "cyberpunk": "synthwave",
    "vaporwave": "synthwave",
    "chiptune": "chiptune",
    "8-bit": "chiptune",
    "8 bit": "chiptune",
    "8bit": "chiptune",
    "16-bit": "chiptune",
    "retro game": "chiptune",
    "nes": "chiptune",
    "gameboy": "chiptune",
    "lo-fi": "lofi",
    "lofi": "lofi",
    "lo fi": "lofi",
    "hip hop": "lofi",
    "hip-hop": "lofi",
    "chillhop": "lofi",
    "boom bap": "lofi",
    "ambient": "ambient",
    "atmospheric": "ambient",
    "drone music": "ambient",
    "soundscape": "ambient",
    "new age": "ambient",
    "celtic": "celtic",
    "irish": "celtic",
    "scottish": "celtic",
    "folk": "folk",
    "medieval": "medieval",
    "tavern": "medieval",
    "renaissance": "medieval",
    "bard": "medieval",
    "jazz": "jazz",
    "jazzy": "jazz",
    "noir": "jazz",
    "swing": "jazz",
    "lounge": "jazz",
    "electronic": "electronic",
    "edm": "electronic",
    "techno": "electronic",
    "house": "electronic",
    "trance": "electronic",
    "dance": "electronic",
    "rock": "rock",
    "metal": "rock",
    "punk": "rock",
    "fantasy": "fantasy",
    "fairy tale": "fantasy",
    "magical": "fantasy",
    "enchanted": "fantasy",
    "magic": "fantasy",
    "sci-fi": "scifi",
    "scifi": "scifi",
    "space": "scifi",
    "futuristic": "scifi",
    "cosmic": "scifi",
    "horror": "horror",
    "japanese": "asian",
    "chinese": "asian",
    "asian": "asian",
    "oriental": "asian",
    "zen": "asian",
    "desert": "desert",
    "arabian": "desert",
    "middle eastern": "desert",
    "egyptian": "desert",
    "western": "western",
    "cowboy": "western",
    "tribal": "tribal",
    "jungle": "tribal",
    "waltz": "waltz",
    "waltzes": "waltz",
    "minuet": "waltz",
    "minuets": "waltz",
    "underwater": "underwater",
    "aquatic": "underwater",
    "trailer": "orchestral",
    "hybrid": "orchestral",
    "sea shanty": "folk",
    "shanty": "folk",
    "shanties": "folk",
    "balkan": "folk",
    "mariachi": "western",
    "disco": "electronic",
    "electro": "electronic",
    "drum and bass": "electronic",
    "dnb": "electronic",
    "breakbeat": "electronic",
    "breakbeats": "electronic",
    "neurofunk": "electronic",
    "junglist": "electronic",
    "jungle music": "electronic",
    "jungle breaks": "electronic",
    "jungle breakbeat": "electronic",
    "jungle breakbeats": "electronic",
    "old school jungle": "electronic",
    "arcade": "chiptune",
}

NEGATION = re.compile(
    r"(?:\bavoid\s*:?\s*([^.;!?]*)|\b(?:no|without|not|never|minus|sans)\s+([\w\- ]+?)"
    r"(?=[,.;!?]|\band\b|\bor\b|\bbut\b|\bwith\b|$))",
    re.IGNORECASE,
)
_WORD_SPLIT = re.compile(r"[^\w#♯♭\-']+")


@dataclass
class Words:
    """What a piece of text says: matched words with their weights (negative when avoided)."""

    moods: dict[str, float] = field(default_factory=dict)
    tempo_words: dict[str, float] = field(default_factory=dict)
    instruments: dict[str, float] = field(default_factory=dict)  # voice -> weight (order kept)
    genres: dict[str, float] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)  # e.g. "pentatonic", "swing", "waltz", "3/4"

    def merge(self, other: Words, scale: float = 1.0) -> Words:
        out = Words(
            dict(self.moods),
            dict(self.tempo_words),
            dict(self.instruments),
            dict(self.genres),
            set(self.flags) | other.flags,
        )
        for mine, theirs in (
            (out.moods, other.moods),
            (out.tempo_words, other.tempo_words),
            (out.instruments, other.instruments),
            (out.genres, other.genres),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0.0) + v * scale
        return out


def _phrases(text: str) -> list[str]:
    """Words and two/three-word phrases of ``text``, lower-case, in order."""
    words = [w.strip("-'") for w in _WORD_SPLIT.split(text.lower())]
    words = [w for w in words if w]
    out = []
    for i in range(len(words)):
        out.append(words[i])
        if i + 1 < len(words):
            out.append(words[i] + " " + words[i + 1])
        if i + 2 < len(words):
            out.append(" ".join(words[i : i + 3]))
    return out


# Singular words whose plural is another instrument ("keys" is an electric piano, "voices"
# a choir): never read as that plural.
NOT_PLURALS = frozenset({"key", "voice", "beat", "lead"})


def spellings(phrase: str) -> list[str]:
    """``phrase`` as written, then with hyphens and spaces swapped ("frame-drum",
    "hurdy gurdy")."""
    out = [phrase]
    for other in (phrase.replace("-", " "), phrase.replace(" ", "-")):
        if other not in out:
            out.append(other)
    return out


def instrument_of(phrase: str) -> str | None:
    """The voice an instrument phrase names, read through hyphens and plurals ("hand
    drum", "frame-drum", "congas", "steel-drum"), or None."""
    for form in spellings(phrase):
        if form in INSTRUMENT_WORDS:
            return INSTRUMENT_WORDS[form]
    for form in spellings(phrase):
        head, _, last = form.rpartition(" ")
        head = head + " " if head else ""
        if last.endswith("s") and not last.endswith("ss") and last[:-1] not in NOT_PLURALS:
            other = head + last[:-1]
        elif not last.endswith("s") and last not in NOT_PLURALS:
            other = head + last + "s"
        else:
            continue
        if other in INSTRUMENT_WORDS:
            return INSTRUMENT_WORDS[other]
    return None


def _spelled(phrase: str, table: dict[str, Any] | frozenset[str] | set[str]) -> str | None:
    """The spelling of ``phrase`` that ``table`` has (hyphens or spaces), or None."""
    return next((f for f in spellings(phrase) if f in table), None)


_CLAUSE_SPLIT = re.compile(r"[,.;:!?()\[\]{}|]+")
VOCAL_WORDS = frozenset({"vocals", "vocal", "singing", "voice"})


# Genre names made of instrument words: "drum and bass" names neither drums nor a bass.
_GENRE_NAMES = re.compile(r"\bdrum\s+(?:and|n|'n'|&)\s+bass\b")


def _genre_name_words(text: str) -> set[str]:
    """The instrument words of ``text`` that only stand in a genre's name (``_GENRE_NAMES``):
    "bass" and "drum" in "drum and bass", unless the text names them elsewhere too."""
    low = text.lower()
    rest = _GENRE_NAMES.sub(" , ", low)
    if rest == low:
        return set()
    named = set(_phrases(rest))
    return {w for w in ("drum", "bass", "drum and", "and bass") if w not in named}


def _inside_instruments(text: str) -> set[str]:
    """Words and phrases that, wherever ``text`` has them, are part of a longer instrument
    phrase of one clause naming another voice: "bass" in "upright bass" (a double bass,
    not a second bass line), "drums" in "taiko drums", "flute" in "ney flute", "singing" in
    "singing bowls" (no choir)."""
    inside: set[str] = set()
    outside: set[str] = set()
    for clause in _CLAUSE_SPLIT.split(text.lower()):
        words = [w for w in (w.strip("-'") for w in _WORD_SPLIT.split(clause)) if w]
        covered: set[tuple[int, int]] = set()
        for n in (3, 2):
            for i in range(len(words) - n + 1):
                voice = instrument_of(" ".join(words[i : i + n]))
                if voice is None:
                    continue
                for j in range(i, i + n):
                    for k in range(j + 1, i + n + 1):
                        sub = " ".join(words[j:k])
                        if k - j < n and (
                            instrument_of(sub) not in (None, voice) or sub in VOCAL_WORDS
                        ):
                            covered.add((j, k))
        for j in range(len(words)):
            for k in range(j + 1, min(j + 3, len(words)) + 1):
                (inside if (j, k) in covered else outside).add(" ".join(words[j:k]))
    return inside - outside


# "Rock a bye", "rockabye": the lullaby (one word, ``MOOD_ALIASES``), no rock.
_ROCK_A_BYE = re.compile(r"(?<![\w-])rock[\s-]*a[\s-]*bye?(?![\w-])", re.IGNORECASE)


def _scan(text: str, weight: float, into: Words) -> None:
    text = _ROCK_A_BYE.sub("rock-a-bye", text)
    phrases = _phrases(text)
    # Negated clauses keep every word ("no taiko drums" avoids the drums too).
    # ("bass" in "drum and bass" is none: "drum and bass ... deep sub bass" is one bass)
    inside = _inside_instruments(_GENRE_NAMES.sub(" , ", text.lower())) if weight > 0 else set()
    inside |= _genre_name_words(text)
    seen: set[str] = set()
    danced = 0.0  # the electronic genre's weight that a "dance" or a "house" gave
    jungled = 0.0  # the tribal genre's weight that a "jungle" gave
    folk_dance = False
    housed = place_house(text)
    jungle_dnb = jungle_genre(text)
    # A fiddle in a folk dance: one fiddler's line, not the strings' chords (``FIDDLERS``).
    danced_form = any(_spelled(w, FOLK_FORMS | FOLK_DANCES) for w in phrases)
    for written in phrases:
        if written in seen:
            continue
        seen.add(written)
        # Moods, genres and flags read through hyphens ("laid back", "lo fi", "hip-hop").
        p = next(
            (
                f
                for f in spellings(written)
                if f in MOOD_WORDS
                or f in MOOD_ALIASES
                or f in GENRE_WORDS
                or f in TEMPO_WORDS
                or f in FLAG_WORDS
            ),
            written,
        )
        mood = MOOD_ALIASES.get(p, p)
        if mood in MOOD_WORDS:
            into.moods[mood] = into.moods.get(mood, 0.0) + weight
        if p in DRIVE_WORDS:
            into.moods["_" + p] = into.moods.get("_" + p, 0.0) + weight
        if p in TEMPO_WORDS and weight > 0:
            into.tempo_words[p] = into.tempo_words.get(p, 0.0) + weight
        v = None if written in inside else instrument_of(written)
        if v == "strings" and danced_form and written in FIDDLERS:
            v = "folkfiddle"
        if v is not None:
            into.instruments[v] = into.instruments.get(v, 0.0) + weight
        if p in GENRE_WORDS and not (p == "house" and housed):
            g = GENRE_WORDS[p]
            if p == "jungle":
                jungled += weight
                if weight > 0 and jungle_dnb:
                    # "Jungle ... amen breaks", "a jungle track with breakbeats and sub bass":
                    # the genre (drum and bass's forebear), not the forest.
                    into.flags |= {"dnb", "breakbeat"}
                    into.genres["electronic"] = into.genres.get("electronic", 0.0) + weight
            into.genres[g] = into.genres.get(g, 0.0) + weight
            if p in GUESSED_ELECTRONIC:
                danced += weight
        if p in FOLK_DANCES or p in FOLK_FORMS or written in FOLK_NAMES:
            folk_dance = True
        if weight > 0:
            if p in {"pentatonic"}:
                into.flags.add("pentatonic")
            if p in BREAKBEAT_WORDS:
                into.flags.add("breakbeat")
            if p in DNB_WORDS:
                into.flags.add("dnb")
            if p in {"swing", "swung", "shuffle", "jazzy", "lo-fi", "lofi"}:
                into.flags.add("swing")
            if p in WALTZ_WORDS:
                into.flags.add("waltz")
            if p in COMPOUND_WORDS:
                into.flags.add("compound")
            if p in VOCAL_WORDS and written not in inside:
                into.flags.add("vocals")
            if p in FESTIVE_SCENE_WORDS:
                into.flags.add("festive scene")
            if p in SOLO_WORDS:
                into.flags.add("solo")
            if written.replace("-", " ") == "hurdy gurdy" and written not in inside:
                into.flags.add("hurdy gurdy")  # the fiddle's tune over a drone (``palette``)
            if p in CHAMBER_WORDS:
                into.flags.add("chamber")
            if written == "cello":
                into.flags.add("cellist")  # one cello ("cellos", "low strings": the section)
            if written == "viola":
                into.flags.add("violist")  # one viola ("violas": the section's chords)
    if weight > 0 and one_player_words(text):
        into.flags.add("solo")  # "a single harp", "one clarinet": a lone player
    lone = alone_words(text)
    if weight > 0 and lone:
        # The player alone (``palette.lone_roles``), as "unaccompanied"; "a lone X" and
        # "a solo X" keep their thin accompaniment.
        into.flags |= {"solo", "unaccompanied"}
    elif weight > 0 and lone is False:
        into.flags -= {"solo", "unaccompanied"}
    elif weight < 0 and re.search(r"\b(?:accompaniment|backing|accompanist)\b", text.lower()):
        into.flags |= {"solo", "unaccompanied"}  # "no accompaniment": the player alone
    if jungled and "dnb" in into.flags:
        # "Old school jungle breaks", "jungle music": drum and bass's forebear, no forest.
        left = into.genres.get("tribal", 0.0) - jungled
        if left > 1e-9:
            into.genres["tribal"] = left
        else:
            into.genres.pop("tribal", None)
    if danced > 0 and (
        folk_dance
        or into.moods.get("festive", 0.0) > 0
        or any(into.genres.get(g, 0.0) > 0 for g in (*FOLK_GENRES, "waltz"))
        or any(into.instruments.get(i, 0.0) > 0 for i in FOLK_INSTRUMENTS)
    ):
        # A festival's, a folk dance (a jig, a reel, a polka...), a waltz or a dance with
        # an accordion, a fiddle, castanets, a guitar... is danced to a band, not to a drum
        # machine ("a village dance waltz with fiddle" was a four-on-the-floor synth piece,
        # "firelight dance with castanets and guitar" a synth lead over a synth bass; only
        # an electronic word says so: techno, EDM, club, a "house" that is no place).
        left = into.genres.get("electronic", 0.0) - danced
        if left > 1e-9:
            into.genres["electronic"] = left
        else:
            into.genres.pop("electronic", None)
    # "slow" inside "very slow" counts once, as the longer phrase
    if "very slow" in into.tempo_words:
        into.tempo_words.pop("slow", None)
    if "very fast" in into.tempo_words:
        into.tempo_words.pop("fast", None)


def read_words(text: str, weight: float = 1.0) -> Words:
    """Scan ``text``: avoided phrases count with ``-weight / 2``, the rest with ``weight``."""
    words = Words()
    negatives: list[str] = []

    def cut(m: re.Match[str]) -> str:
        negatives.append(m.group(1) or m.group(2) or "")
        return " , "

    positive = NEGATION.sub(cut, text or "")
    _scan(positive, weight, words)
    for neg in negatives:
        _scan(neg, -weight / 2, words)
    return words


def styles_words(styles: Any, weight: float) -> Words:
    """Words of a plan's style list (strings); negative lists pass a negative weight."""
    out = Words()
    if isinstance(styles, list | tuple):
        for s in styles:
            if isinstance(s, str):
                if weight >= 0:
                    out = out.merge(read_words(s, weight))
                else:
                    w = Words()
                    _scan(s, weight, w)
                    out = out.merge(w)
    return out


@dataclass(frozen=True)
class Traits:
    """A section's resolved character: everything the composer needs from words."""

    valence: float = NEUTRAL["valence"]
    energy: float = NEUTRAL["energy"]
    brightness: float = NEUTRAL["brightness"]
    space: float = NEUTRAL["space"]
    tension: float = NEUTRAL["tension"]
    percussion: float = NEUTRAL["percussion"]
    tempo: float | None = None  # what the mood words suggest
    moods: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()  # asked for, strongest first
    avoided: frozenset[str] = frozenset()  # voices and genres asked to avoid
    genres: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()

    def with_(self, **changes: Any) -> Traits:
        return replace(self, **changes)


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return max(lo, min(hi, x))


# Words of size, not character: "epic" says how big, not whether it is a battle.
SCALE_WORDS = frozenset({"epic", "cinematic", "grand", "powerful", "majestic"})
# A character word whose energy is under this is calm (calm, gentle, lullaby, sad, dusk...).
CALM_ENERGY = 0.35


def calm_word(mood: str) -> bool:
    """Whether ``mood`` is a calm character: a mood word with a tempo and little energy
    (calm, gentle, lullaby, sad, dusk...; not a word of size, nor "soft" or "warm", which
    say how an instrument plays: "epic, soft strings" stays epic)."""
    target = MOOD_WORDS.get(mood)
    return (
        target is not None
        and mood not in SCALE_WORDS
        and "tempo" in target
        and target.get("energy", 1.0) < CALM_ENERGY
    )


def calm_character(words: Words) -> bool:
    """Whether ``words`` name a calm character of their own (``calm_word``)."""
    return any(w > 0 and calm_word(m) for m, w in words.moods.items())


def traits_of(words: Words) -> Traits:
    """Resolve words into traits: a weighted mean of the mood targets around NEUTRAL.

    Under a calm character word a word of size (often the score-wide style's "epic
    orchestral") keeps only its room (``space``): an epic lullaby is a slow, quiet
    lullaby in a big hall, not 132 BPM in minor."""
    totals = dict.fromkeys(TRAITS, 0.0)
    weights = dict.fromkeys(TRAITS, 0.0)
    tempo_sum = tempo_w = 0.0
    calm = calm_character(words)
    for mood, w in words.moods.items():
        target = DRIVE_WORDS[mood[1:]] if mood.startswith("_") else MOOD_WORDS[mood]
        if calm and mood in SCALE_WORDS and w > 0:
            target = {t: v for t, v in target.items() if t == "space"}
        for t in TRAITS:
            if t in target:
                totals[t] += w * (target[t] - NEUTRAL[t])
                weights[t] += abs(w)
        if "tempo" in target and w > 0:
            tempo_sum += w * target["tempo"]
            tempo_w += w
    values = {}
    for t in TRAITS:
        lo = -1.0 if t == "valence" else 0.0
        values[t] = _clamp(NEUTRAL[t] + totals[t] / max(1.0, weights[t]), lo, 1.0)
    # Genres colour the traits too (lo-fi is dull, chiptune bright and dry...).
    for genre, w in words.genres.items():
        if w <= 0:
            continue
        for t, v in GENRE_TRAITS.get(genre, {}).items():
            if t in values:
                values[t] = values[t] * 0.5 + v * 0.5
    tempo = tempo_sum / tempo_w if tempo_w else None
    pos_moods = tuple(
        m
        for m, w in sorted(words.moods.items(), key=lambda kv: -kv[1])
        if w > 0 and not m.startswith("_")
    )
    instruments = tuple(
        v for v, w in sorted(words.instruments.items(), key=lambda kv: -kv[1]) if w > 0
    )
    genres = tuple(g for g, w in sorted(words.genres.items(), key=lambda kv: -kv[1]) if w > 0)
    avoided = frozenset(
        [v for v, w in words.instruments.items() if w < 0]
        + [g for g, w in words.genres.items() if w < 0]
    )
    return Traits(
        tempo=tempo,
        moods=pos_moods,
        instruments=instruments,
        genres=genres,
        avoided=avoided,
        flags=frozenset(words.flags),
        **values,
    )


GENRE_TRAITS: dict[str, dict[str, float]] = {
    "lofi": {"brightness": 0.25, "energy": 0.35, "space": 0.35, "percussion": 0.6},
    "chiptune": {"brightness": 0.85, "space": 0.1, "percussion": 0.8},
    "ambient": {"energy": 0.15, "space": 0.9, "percussion": 0.05},
    "synthwave": {"brightness": 0.65, "space": 0.7, "percussion": 0.8},
    "electronic": {"energy": 0.75, "percussion": 0.9},
    "rock": {"energy": 0.85, "percussion": 0.95, "brightness": 0.7},
    "orchestral": {"space": 0.65},
    "horror": {"tension": 0.9, "valence": -0.8, "space": 0.85},
    "underwater": {"brightness": 0.15, "space": 0.85},
    "scifi": {"space": 0.75},
    "jazz": {"brightness": 0.45, "space": 0.4},
}

GENRE_TEMPO = {
    "lofi": 80,
    "chiptune": 140,
    "ambient": 70,
    "synthwave": 108,
    "electronic": 126,
    "rock": 136,
    "jazz": 112,
    "celtic": 112,
    "medieval": 100,
    "waltz": 96,
    "horror": 68,
    "tribal": 120,
    "western": 100,
    "asian": 84,
    "desert": 100,
    "underwater": 72,
}


# Drum and bass (``DNB_WORDS``) is played at 160-176 BPM (172 unless the words lean): a
# word's tempo moves it a quarter of its distance from 120.
DNB_BPM = (160.0, 172.0, 176.0)


def tempo_from_words(words: Words, traits: Traits) -> float:
    """Explicit tempo words first, then what the moods suggest, then the genre's, then 100
    (drum and bass kept to its own tempi, ``DNB_BPM``)."""
    if "dnb" in traits.flags:
        lo, mid, hi = DNB_BPM
        if words.tempo_words:
            total = sum(words.tempo_words.values())
            said = sum(TEMPO_WORDS[w] * v for w, v in words.tempo_words.items()) / total
        else:
            said = traits.tempo if traits.tempo is not None else 120.0
        return float(round(max(lo, min(hi, mid + 0.25 * (said - 120.0)))))
    if words.tempo_words:
        total = sum(words.tempo_words.values())
        return sum(TEMPO_WORDS[w] * v for w, v in words.tempo_words.items()) / total
    if traits.tempo is not None:
        tempo = traits.tempo
        for g in traits.genres[:1]:
            if g in GENRE_TEMPO:
                tempo = 0.5 * tempo + 0.5 * GENRE_TEMPO[g]
        return tempo
    for g in traits.genres:
        if g in GENRE_TEMPO:
            return float(GENRE_TEMPO[g])
    return 100.0


# Compound meters (6/8; 12/8 when asked): dances and cradle songs in threes of eighths.
COMPOUND_WORDS = frozenset(
    {"jig", "jigs", "slip jig", "slip jigs", "tarantella", "tarantellas", "lullaby"}
    | {"barcarolle", "barcarolles", "barcarole", "barcaroles", "barcarola"}
    | {"siciliana", "sicilianas", "siciliano", "sicilienne", "compound meter", "6/8", "12/8"}
    # a lullaby's other names and spellings (``MOOD_ALIASES``): "lullabies for the nursery"
    # or "a berceuse" were a 4/4 piece at 100 BPM
    | {"lullabies", "lullabye", "lullabyes", "hushabye", "rock-a-bye", "berceuse", "berceuses"}
    | {"cradle song", "cradle songs"}
)
# Triple meter (3/4), plurals too ("waltzes at the ball" was in 4/4).
WALTZ_WORDS = frozenset({"waltz", "waltzes", "minuet", "minuets", "3/4", "triple meter"})
METER_IN_PROMPT = re.compile(r"(?<![\d/])(6/8|12/8|9/8|3/4)(?![\d/])")


def meter_in_prompt(text: str) -> str | None:
    """A time signature written in ``text`` ("6/8", "12/8", "3/4"; 9/8 reads as 6/8)."""
    m = METER_IN_PROMPT.search(text or "")
    if m is None:
        return None
    return "6/8" if m.group(1) == "9/8" else m.group(1)


# Scenes a folk-dance band plays (``palette.festive``), when their character is bright or
# they have none of their own but a size: a market, a dance, a wedding. Not characters
# (a night market can be melancholic, a dance of the dead eerie); a dance here is no
# electronic genre ("harvest festival dance" was a four-on-the-floor synth piece).
FOLK_GENRES = frozenset({"folk", "celtic", "medieval", "western"})
FOLK_DANCES = frozenset({"folk dance", "barn dance", "hoedown", "ceilidh"})
# A dance played on these is a folk dance ("a village dance waltz with fiddle": not synth
# bass, pads and an arpeggiator).
FOLK_INSTRUMENTS = frozenset(
    {"folkfiddle", "accordion", "bagpipe", "bouzouki", "mandolin", "banjo", "dulcimer"}
    | {"frame", "tambourine"}
    # and the woodwinds ("a spring orchard dance, oboe and bassoon" had a four-on-the-floor
    # kit, a synth bass and pads under them)
    | {"flute", "recorder", "clarinet", "oboe", "bassoon", "harmonica"}
    # and the other acoustic players (a flamenco's guitar and castanets, a harp, a tuba);
    # not the sections, keys and drums a club track has too (strings, piano, organ, bass)
    | {"guitar", "castanets", "harp", "violin", "viola", "cello", "tuba", "trumpet", "horn"}
    | {"trombone", "sax", "piccolo", "panflute", "ocarina", "sitar", "koto", "shamisen"}
    | {"marimba", "xylophone", "kalimba", "steeldrum", "harpsichord"}
)
# Folk dances' own names: a dance one of these names is a band's ("a stomping jig in the
# cider house, fiddle and bodhran" was synth lead, arpeggio and bass).
FOLK_FORMS = frozenset(
    {"jig", "jigs", "slip jig", "reel", "reels", "hornpipe", "hornpipes", "polka", "polkas"}
    | {"tarantella", "flamenco", "fandango", "mazurka", "hora", "klezmer", "square dance"}
    | {"gigue", "galliard", "schottische", "sardana", "tango", "csardas", "czardas", "bourree"}
    | {"saltarello", "quadrille", "sea shanty", "shanty", "shanties"}
    | {"step dance", "step dancing", "stepdance", "step dancers"}
)
# One fiddler, written: in a folk dance (a reel, a jig, a hornpipe, a step dance) the folk
# fiddle's line (``instruments``: folkfiddle), not the string section's ("fiddle" elsewhere;
# "fiddles" always). A reel's fiddle was the strings' chords, no line; a step dance's a
# 17-note string counter-line 15 LU under the mix; "a brisk jig on the ferry deck, tin
# whistle and fiddle" the whistle's tune over the strings' chords and no counter-line.
FIDDLERS = frozenset({"fiddle", "fiddler"})
# Written names of folk players the vocabulary reads as another voice (a fiddle is the
# string section's when no band plays; a bodhran a frame drum).
FOLK_NAMES = frozenset({"fiddle", "fiddles", "fiddler", "fiddlers", "bodhran", "bodhrán"})
# Genre words that only guess electronic music: a "dance" or a "house" gives the
# electronic genre unless a band or a folk dance is named beside it.
GUESSED_ELECTRONIC = frozenset({"dance", "house"})
# A "house" that is a place ("in the cider house", "a haunted house", "the old farm
# house"): an article or a possessive, then at most one word that is no house genre's.
HOUSE_GENRES = frozenset(
    {"deep", "tech", "acid", "progressive", "tropical", "electro", "minimal", "funky", "future"}
    | {"soulful", "chicago", "french", "disco", "vocal", "afro", "melodic", "lofi", "lo-fi"}
    | {"jackin", "garage", "piano", "dance", "club"}
)
_PLACE_HOUSE = re.compile(
    r"\b(?:the|a|an|this|that|our|my|his|her|their|its|whose|[\w-]+'s)\s+(?:([\w-]+)\s+)?house\b"
)


def place_house(text: str) -> bool:
    """Whether every "house" of ``text`` is a place ("the cider house", "a haunted
    house", "grandma's house"), not the club genre ("deep house", "a deep house groove",
    "basement house session")."""
    low = text.lower()
    total = len(re.findall(r"\bhouse\b", low))
    places = [m for m in _PLACE_HOUSE.finditer(low) if m.group(1) not in HOUSE_GENRES]
    return total > 0 and len(places) == total


FESTIVE_SCENE_WORDS = frozenset(
    {"market", "markets", "marketplace", "market day", "bazaar", "fair day", "wedding"}
    | {"fair", "fairs"}
    | {"dance", "dances", "dancing"}
    | FOLK_DANCES
)
# Drum and bass and its kin (160-176 BPM): a breakbeat kit, not four on the floor.
DNB_WORDS = frozenset(
    {"drum and bass", "dnb", "neurofunk", "junglist", "jungle music", "jungle breaks"}
    | {"jungle breakbeat", "jungle breakbeats", "old school jungle"}
)
BREAKBEAT_WORDS = DNB_WORDS | {"breakbeat", "breakbeats"}
# Beside "jungle", the genre's words ("chopped amen breaks", "a reese bass") and the
# forest's ("vines", "birds", "the canopy"): ``jungle_genre`` weighs them.
_JUNGLE_GENRE = re.compile(
    r"(?<![\w-])(?:amen|amens|breaks|breakbeats?|reese|sub[\s-]?bass|rave|ravers?|ragga|"
    r"rollers?|dubplates?|mc|sound ?system|warehouse|pirate radio|bassline|wobbl\w*)(?![\w-])"
)
_JUNGLE_FOREST = re.compile(
    r"(?<![\w-])(?:rain ?forests?|forests?|vines?|birds?|birdsong|canopy|trees?|explorers?|"
    r"expedition|temples?|ruins|rivers?|tribal|leaves|parrots?|monkeys?|wildlife|undergrowth|"
    r"humid|tropical|safari|swamps?|animals?|insects?|frogs?|beasts?|tigers?|jaguars?|"
    r"panthers?|snakes?|ferns?|mosquito\w*|thicket)(?![\w-])"
)


def jungle_genre(text: str) -> bool:
    """Whether a "jungle" of ``text`` is the music (drum and bass's forebear: "jungle ...
    chopped amen breaks", "jungle, reese bass"), not the forest: more of the genre's words
    beside it than of the forest's ("jungle vines and birds" stays a place)."""
    low = text.lower()
    if not re.search(r"(?<![\w-])jungle(?![\w-])", low):
        return False
    return len(_JUNGLE_GENRE.findall(low)) > len(_JUNGLE_FOREST.findall(low))


# A mood played by one instrument ("a lone French horn", "a solo cello elegy"): the named
# instrument leads, with no counter-line the prompt did not name over it.
SOLO_WORDS = frozenset({"solo", "lone", "alone", "unaccompanied"})
# Words that leave a named player by itself, as "unaccompanied" does ("a bassoon all by
# itself" had the harp, string chords, a cello's bass and frame drums under it; "clarinet
# alone" a harp's chords 14 LU under the tune): ``alone_words``. ("Solo" and "lone" keep
# the thin accompaniment whose attacks are the pulse: "a lonely shepherd's tune on a solo
# oboe" alone at 66 BPM was heard at twice its tempo.)
_ALONE = re.compile(
    r"(?<![\w-])(?:unaccompanied|alone|(?:all )?by (?:it|him|her)self|"
    r"on (?:its|his|her) own)(?![\w-])"
)
# "just a cello", "only the flute": the player alone when an instrument follows.
_JUST = re.compile(r"(?<![\w-])(?:just|only) (?:an? |one |the )?([a-z][\w-]*(?: [a-z][\w-]*)?)")
# An accompaniment beside a soloist: "a guitar solo over the band", "violin solo with
# orchestra", "backed by strings" (no lone player; the soloist leads the band).
_ACCOMPANIED = re.compile(
    r"(?<![\w-])(?:accompanied|accompaniment|backed|backing|(?:with|over|and|against|"
    r"above|before|fronting|beside|alongside|plus) (?:an? |the |full |whole |big |small |"
    r"its |his |her |their )*(?:orchestras?|bands?|ensembles?|rhythm section|tutti))(?![\w-])"
)


# One player named by its number ("a single harp", "a solitary bassoon", "one clarinet", "the
# sole trumpet", "a lonely cello", "a single mournful viola"): a lone player, as "lone" (its
# thin accompaniment: ``one_player_words``). "A single harp in the moonlit cloister" was the
# calm palette's band, its acoustic bass the loudest part (-1.9 LU), the harp's tune -8 LU.
ONE_WORDS = frozenset({"single", "solitary", "sole", "one"})
_ONE = re.compile(r"(?<![\w-])(single|solitary|sole|lonely|one) ([a-z][\w-]*)(?: ([a-z][\w-]*))?")


def _one_instrument(phrase: str) -> bool:
    """Whether ``phrase`` names one instrument as written: a "harp", a "French horn", not
    "harps" or "violins" (several players, a section)."""
    if _spelled(phrase, INSTRUMENT_WORDS) is None:
        return False
    last = phrase.rsplit(" ", 1)[-1]
    return not (last.endswith("s") and not last.endswith("ss") and instrument_of(phrase[:-1]))


def one_player_words(text: str) -> bool:
    """Whether ``text`` names one player by its number: "a single harp", "a solitary
    bassoon", "one clarinet", "the sole trumpet", "a lonely cello" (the instrument right
    after the word, or after one word describing it: "a single mournful viola"; after
    "lonely" right after it only: "a lonely waltz at the old piano" is a mood)."""
    for m in _ONE.finditer(text.lower()):
        word, first, second = m.groups()
        if word == "lonely":
            phrases = [first, f"{first} {second}"] if second else [first]
        else:
            phrases = [first, f"{first} {second}", second] if second else [first]
        if any(_one_instrument(p) for p in phrases):
            return True
    return False


def alone_words(text: str) -> bool | None:
    """True when ``text`` leaves its player by itself ("clarinet alone", "a bassoon all by
    itself", "on its own", "just a cello", "unaccompanied"), False when it puts an
    accompaniment beside it ("a guitar solo over the band", "violin solo with orchestra":
    the accompaniment wins over any solo word), None when it says neither."""
    low = text.lower()
    if _ACCOMPANIED.search(low):
        return False
    if _ALONE.search(low):
        return True
    for m in _JUST.finditer(low):
        first = m.group(1).split()[0]
        if instrument_of(m.group(1)) or instrument_of(first):
            return True
    return None


# A mood played by the two or three players it names ("a duet for violin and harp", "a
# cabin trio: dulcimer, banjo and harmonica"): they lead, over a thin accompaniment.
CHAMBER_WORDS = frozenset({"duet", "duets", "duo", "trio"})
FLAG_WORDS = frozenset(
    COMPOUND_WORDS
    | FESTIVE_SCENE_WORDS
    | SOLO_WORDS
    | ONE_WORDS
    | CHAMBER_WORDS
    | WALTZ_WORDS
    | {"pentatonic", "swing", "swung", "shuffle", "jazzy", "lo-fi", "lofi"}
    | {"vocals", "vocal", "singing", "voice"}
    | BREAKBEAT_WORDS
)

# Words that carry no musical instruction (articles, links, generic nouns of prompts).
FILLER = frozenset(
    """a an the and or but with without over under of in on at to for from by into as
    like some very more less much few no not never avoid music track song tune score
    theme loop seamless sound sounds feel feeling style game soundtrack background piece
    instrumental vocals vocal singing voice bpm key major minor mode tempo beat beats
    sharp flat cinematic short brief band bands ensemble""".split()  # noqa: SIM905
    # (length: duration_s says it; "band", "ensemble": its players are named beside it)
)


# English function words and the generic verbs, adverbs and nouns of prompts: never a
# musical instruction, so never listed as ignored.
STOP_WORDS = frozenset(
    """about above across after again against all almost along also although always am
    among another any anything are around away back be because been before behind being
    below beneath beside besides between beyond both can cannot could did do does doing
    done down during each either else enough even ever every everything except far few
    first for get gets getting give gives go goes going got had has have having he her
    here hers him his how however i if its it's itself just keep keeps kept last least
    left let lets made make makes making many may maybe me might mine most must my near
    nearly neither next nor nothing now off often once one ones only onto other others
    our ours out own per perhaps put quite rather really run runs same several shall she
    should since so somehow something sometimes somewhat still such take takes taking than
    that that's their theirs them then there these they thing things this those though
    through throughout thus till too toward towards until up upon us use used uses using
    want was way ways we well were what whatever when where whether which while who whom
    whose why will within would yet you your yours lot lots bit kind sort almost slightly
    fairly mostly simply also very stay stays sit sits hold holds holding land lands carry
    carries leave leaves answer answers stays minutes minute seconds second hours player
    players listener listeners moment moments time times live recording recorded
    production produced mix mixed quality studio""".split()  # noqa: SIM905
)
# What the synth writes in every piece (a tune, chords, a bass line, a pulse...): asking for
# it is honoured, not ignored; and "sting" is the stinger field's own word.
STRUCTURE_WORDS = frozenset(
    """melody melodies tune tunes theme themes motif motifs line lines chord chords harmony
    harmonies bassline notes note rhythm rhythms pulse groove countermelody
    counter-melody phrase phrases section sections intro outro sting stinger stab stabs
    hits""".split()  # noqa: SIM905
)


def ignored_words(text: str, known_words: frozenset[str] = frozenset()) -> list[str]:
    """The content words of ``text`` the synth does not act on (in order, each once): what
    is neither a mood, tempo, instrument, genre, key or meter word, nor filler, a stop
    word or a part every piece has (``STRUCTURE_WORDS``), nor in ``known_words``. Words
    of an avoided clause ("no vocals", "avoid: lo-fi") are not listed: the synth never
    plays what it does not know, and pushes what it knows the other way."""
    known: set[str] = set(known_words)
    text = NEGATION.sub(" , ", _ROCK_A_BYE.sub("rock-a-bye", text or ""))
    phrases = _phrases(text)
    vocab = (
        set(MOOD_WORDS)
        | set(MOOD_ALIASES)
        | set(TEMPO_WORDS)
        | set(DRIVE_WORDS)
        | set(INSTRUMENT_WORDS)
        | set(GENRE_WORDS)
        | set(MODE_ALIASES)
        | set(MODES)
        | FLAG_WORDS
        # (a folk dance's name makes a dance a band's: "a lively polka dance in the town
        # hall" is no electronic piece)
        | FOLK_FORMS
        | FOLK_DANCES
    )
    for p in phrases:
        if _spelled(p, vocab) or instrument_of(p):
            known.update(p.split())
    if jungle_genre(text):
        # (the genre's words beside "jungle" choose drum and bass: "amen breaks", "reese")
        known.update(w for m in _JUNGLE_GENRE.findall(text.lower()) for w in m.split())
    out: list[str] = []
    for w in (w.strip("-'").removesuffix("'s") for w in _WORD_SPLIT.split(text.lower())):
        if (
            len(w) < 3
            or w in known
            or w in FILLER
            or w in STOP_WORDS
            or w in STRUCTURE_WORDS
            or w in NOTE_PC
            or any(c.isdigit() for c in w)
            or w in out
        ):
            continue
        out.append(w)
    return out
