"""Text helpers for prompt transformers (``segue_transform_prompt``).

The built-in transformers (style, tempo/key, instrumental) use them, and so may any
plugin's: add phrases to a prompt without repeating what it already says, and add styles
to a composition plan without touching the score's copy. Documented in docs/plugins.md.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_SENTENCE_END = (".", "!", "?", ";", ":")


def says(text: str, phrase: str) -> bool:
    """Whether ``text`` already contains ``phrase`` as whole words (case-insensitive)."""
    words = r"\s+".join(re.escape(w) for w in phrase.split())
    if not words:
        return True
    return re.search(rf"(?<!\w){words}(?!\w)", text, re.IGNORECASE) is not None


def append_phrases(prompt: str, phrases: Iterable[str]) -> str:
    """``prompt`` followed by ``phrases``, comma-separated ("a, b" or "a. b" after a sentence)."""
    added = ", ".join(p.strip() for p in phrases if p and p.strip())
    if not added:
        return prompt
    base = prompt.rstrip().rstrip(",").rstrip()
    if not base:
        return added
    if base.endswith(_SENTENCE_END):
        return f"{base} {added}"
    return f"{base}, {added}"


def dedupe(items: Iterable[str]) -> list[str]:
    """Items in order, without case-insensitive repeats."""
    seen: set[str] = set()
    out = []
    for item in items:
        folded = item.strip().casefold()
        if folded and folded not in seen:
            seen.add(folded)
            out.append(item.strip())
    return out


def plan_with_styles(
    plan: dict[str, Any], positive: Iterable[str] = (), negative: Iterable[str] = ()
) -> dict[str, Any]:
    """A copy of a composition plan with global styles added (the original is not touched)."""
    out = copy.deepcopy(plan)
    out["positive_global_styles"] = dedupe([*out.get("positive_global_styles", []), *positive])
    out["negative_global_styles"] = dedupe([*out.get("negative_global_styles", []), *negative])
    return out


# --- tempo and key phrases --------------------------------------------------------------

# "120 BPM", "92.5 bpm", "84 beats per minute".
TEMPO_PHRASE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:bpm|beats per minute)\b", re.IGNORECASE)
# Keys a prompt states: one reading for the tempo/key transformer, `segue validate` and the
# synth (which plays it when the mood has no `key`).
# - a note (either case), an optional accidental and a mode word: "D major", "f# minor",
#   "B-flat dorian", "Eb harmonic minor";
# - but "a"/"A" before a mode word is an article ("a minor change", "A major battle",
#   "a dorian tune") unless "in", "key" or "key of" comes first ("in A minor");
# - "key of G" / "key: G": a note alone is its major key;
# - a mode word alone ("Dorian sea shanty", "in mixolydian") is that mode on its white-key
#   tonic, the scale of the white notes that mode names (``BARE_MODE_TONIC``): C ionian,
#   D dorian, E phrygian, F lydian, G mixolydian, A aeolian, B locrian, and A harmonic minor.
#   "major" and "minor" alone are English, not keys.
_ACCIDENTAL = r"(?:#|♯|b|♭|-sharp|-flat|\s+sharp|\s+flat)"
KEY_MODE_WORDS = (
    r"harmonic\s+minor|major|minor|maj|min|ionian|aeolian|dorian|phrygian|lydian|mixolydian"
    r"|locrian"
)
_BARE_MODES = r"harmonic\s+minor|ionian|aeolian|dorian|phrygian|lydian|mixolydian|locrian"
# "in " / "key " / "key: " / "key of " just before the note (one space: lookbehinds are fixed).
_KEY_CONTEXT = r"(?:(?<=\bin\s)|(?<=\bkey\s)|(?<=\bkey:\s)|(?<=\bkey\sof\s))"
KEY_PHRASE = re.compile(
    rf"\bkey(?:\s+of|:)\s+(?P<of>[A-G])(?P<of_acc>{_ACCIDENTAL})?"
    rf"(?:[\s-]+(?P<of_mode>{KEY_MODE_WORDS}))?(?![\w#♯♭])"
    rf"|(?<![\w#♯♭])(?:{_KEY_CONTEXT}|(?!a[\s-]+(?:{KEY_MODE_WORDS})\b))"
    rf"(?P<note>[A-G])(?P<acc>{_ACCIDENTAL})?[\s-]+(?P<mode>{KEY_MODE_WORDS})\b"
    rf"|(?<![\w-])(?P<bare>{_BARE_MODES})\b",
    re.IGNORECASE,
)
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHIFT = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}
# Mode words as the mode they name (a mood's `key`, normalised, uses the same names).
MODE_NAMES = {
    "major": "major",
    "maj": "major",
    "ionian": "major",
    "minor": "minor",
    "min": "minor",
    "aeolian": "minor",
    "harmonic minor": "harmonic minor",
    "dorian": "dorian",
    "phrygian": "phrygian",
    "lydian": "lydian",
    "mixolydian": "mixolydian",
    "locrian": "locrian",
}
# A mode word alone (as written, lower-case): the tonic of the white-note scale it names.
BARE_MODE_TONIC = {
    "ionian": 0,
    "dorian": 2,
    "phrygian": 4,
    "lydian": 5,
    "mixolydian": 7,
    "aeolian": 9,
    "locrian": 11,
    "harmonic minor": 9,
}
# Modes that are the major or minor scale under another name (a mood's `key`, normalised).
_MAJOR_MINOR = {"major": "major", "minor": "minor", "harmonic minor": "minor"}


@dataclass(frozen=True)
class StatedKey:
    """A key a prompt states: its tonic (pitch class, C = 0), its mode (a ``MODE_NAMES``
    value), whether it was a mode word alone (read on ``BARE_MODE_TONIC``), and where."""

    tonic: int
    mode: str
    bare: bool
    match: re.Match[str]

    @property
    def name(self) -> str:
        """``D dorian``, ``F# minor``, ``Bb major``."""
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"


def _pitch(note: str, accidental: str | None) -> int:
    """The pitch class of ``note`` (A-G) with ``accidental`` (``#``, ``b``, ``-sharp``…)."""
    shift = _SHIFT.get((accidental or "").strip(" -").lower(), 0)
    return (_PITCH[note.upper()] + shift) % 12


def _mode(word: str | None) -> str:
    return MODE_NAMES[" ".join((word or "major").lower().split())]


def stated_keys(text: str) -> list[StatedKey]:
    """Every key ``text`` states, in order (see ``KEY_PHRASE``)."""
    out = []
    for m in KEY_PHRASE.finditer(text or ""):
        if m["bare"]:
            word = " ".join(m["bare"].lower().split())
            out.append(StatedKey(BARE_MODE_TONIC[word], MODE_NAMES[word], True, m))
        elif m["of"]:
            out.append(StatedKey(_pitch(m["of"], m["of_acc"]), _mode(m["of_mode"]), False, m))
        else:
            out.append(StatedKey(_pitch(m["note"], m["acc"]), _mode(m["mode"]), False, m))
    return out


def stated_key(text: str) -> StatedKey | None:
    """The first key ``text`` states, or None."""
    keys = stated_keys(text)
    return keys[0] if keys else None


def _key_agrees(stated: StatedKey, key: str) -> bool:
    """Whether a stated key is the mood's ``key`` (a normalised score key: ``F# minor``,
    ``Bb dorian``, ``C``)."""
    tonic, _, key_mode = key.partition(" ")
    if _pitch(tonic[0], tonic[1:] or None) != stated.tonic:
        return False
    # A key with no mode, or a church mode on either side, is only held to its tonic.
    wanted = _MAJOR_MINOR.get(MODE_NAMES.get(key_mode, key_mode))
    said = _MAJOR_MINOR.get(stated.mode)
    return wanted is None or said is None or wanted == said


def contradicting_tempos(prompt: str, bpm: float | None) -> list[re.Match[str]]:
    """The tempo phrases of ``prompt`` when it states tempos and none is ``bpm``, else []."""
    if bpm is None:
        return []
    found = list(TEMPO_PHRASE.finditer(prompt))
    if any(abs(float(m.group(1)) - bpm) < 0.05 for m in found):
        return []
    return found


def contradicting_keys(prompt: str, key: str | None) -> list[re.Match[str]]:
    """The key phrases of ``prompt`` when it states keys and none is ``key``, else []."""
    if not key:
        return []
    found = stated_keys(prompt)
    return [] if any(_key_agrees(k, key) for k in found) else [k.match for k in found]


def replace_spans(text: str, matches: Iterable[re.Match[str]], phrase: str) -> str:
    """``text`` with each match replaced by ``phrase``."""
    out, end = [], 0
    for m in sorted(matches, key=lambda m: m.start()):
        out.append(text[end : m.start()])
        out.append(phrase)
        end = m.end()
    out.append(text[end:])
    return "".join(out)
