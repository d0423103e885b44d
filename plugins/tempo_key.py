"""Built-in prompt transformer: "84 BPM, D major" when the mood sets ``bpm`` / ``key``.

A phrase is added only when the prompt does not already give a tempo (``120 BPM``) or a key
(``in F# minor``). The same phrases go into a composition plan's ``positive_global_styles``,
since generators that take a plan ignore the prompt. Runs first (``tryfirst``), so the
musical facts follow the mood's own words.
"""

from __future__ import annotations

import re

from segue.core import hookimpl
from segue.core.prompts import append_phrases, plan_with_styles, says
from segue.core.request import GenerationRequest

_TEMPO = re.compile(r"\b\d+(?:\.\d+)?\s*(?:bpm|beats per minute)\b", re.IGNORECASE)
_KEY = re.compile(
    r"(?<!\w)[A-G](?:#|♯|b|♭|-sharp|-flat|\s+sharp|\s+flat)?[\s-]+(?:major|minor)\b",
    re.IGNORECASE,
)


def tempo_phrase(bpm: float) -> str:
    """``84 BPM``; ``92.5 BPM``."""
    return f"{bpm:g} BPM"


@hookimpl(tryfirst=True)
def segue_transform_prompt(request: GenerationRequest) -> GenerationRequest | None:
    phrases = []
    if request.bpm is not None and not _TEMPO.search(request.prompt):
        phrases.append(tempo_phrase(request.bpm))
    if request.key and not says(request.prompt, request.key) and not _KEY.search(request.prompt):
        phrases.append(request.key)
    if not phrases:
        return None
    plan = request.composition_plan
    if plan is not None:
        plan = plan_with_styles(plan, positive=phrases)
    return request.replace(prompt=append_phrases(request.prompt, phrases), composition_plan=plan)
