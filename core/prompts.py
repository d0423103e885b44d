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
