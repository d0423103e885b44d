"""Text helpers for prompt transformers (``segue_transform_prompt``).

The built-in transformers (style, tempo/key, instrumental) use them, and so may any
plugin's: add phrases to a prompt without repeating what it already says, and add styles
to a composition plan without touching the score's copy. Documented in docs/plugins.md.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
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
# "D major", "f# minor", "B-flat minor": whether a prompt names a key at all (any case but
# a lowercase "a": "a major battle", "a minor change" are English, not keys).
KEY_PHRASE = re.compile(
    r"(?<!\w)(?!(?-i:a)[\s-]+(?:major|minor))"
    r"[A-G](?:#|♯|b|♭|-sharp|-flat|\s+sharp|\s+flat)?[\s-]+(?:major|minor)\b",
    re.IGNORECASE,
)
# The keys a prompt states, to compare with the mood's: the phrases KEY_PHRASE finds (any
# case but a lowercase "a": "a minor change" is no key), so that every key a prompt names
# is either the mood's or replaced by it.
_STATED_KEY = re.compile(
    r"(?<!\w)(?!a[\s-]+(?i:major|minor))"
    r"([A-Ga-g])((?i:#|♯|b|♭|-sharp|-flat|\s+sharp|\s+flat))?[\s-]+((?i:major|minor))\b"
)
_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHIFT = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}
# Modes that are the major or minor scale under another name (a mood's `key`, normalised).
_MAJOR_MINOR = {"major": "major", "ionian": "major", "minor": "minor", "aeolian": "minor"}
_MAJOR_MINOR["harmonic minor"] = "minor"


def _pitch(note: str, accidental: str | None) -> int:
    """The pitch class of ``note`` (A-G) with ``accidental`` (``#``, ``b``, ``-sharp``…)."""
    shift = _SHIFT.get((accidental or "").strip(" -").lower(), 0)
    return (_PITCH[note.upper()] + shift) % 12


def _key_agrees(pitch: int, mode: str, key: str) -> bool:
    """Whether a stated key (pitch class, ``major``/``minor``) is the mood's ``key``
    (a normalised score key: ``F# minor``, ``Bb dorian``, ``C``)."""
    tonic, _, key_mode = key.partition(" ")
    if _pitch(tonic[0], tonic[1:] or None) != pitch:
        return False
    # A key with no mode, or a church mode, is only held to its tonic.
    wanted = _MAJOR_MINOR.get(key_mode)
    return wanted is None or wanted == mode


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
    found = list(_STATED_KEY.finditer(prompt))
    agrees = (_key_agrees(_pitch(m[1], m[2]), m[3].lower(), key) for m in found)
    return [] if any(agrees) else found


def replace_spans(text: str, matches: Iterable[re.Match[str]], phrase: str) -> str:
    """``text`` with each match replaced by ``phrase``."""
    out, end = [], 0
    for m in sorted(matches, key=lambda m: m.start()):
        out.append(text[end : m.start()])
        out.append(phrase)
        end = m.end()
    out.append(text[end:])
    return "".join(out)
