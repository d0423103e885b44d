"""Built-in prompt transformer: "84 BPM, D major" when the mood sets ``bpm`` / ``key``.

A phrase is added only when the prompt does not already give a tempo (``120 BPM``) or a key
(``in F# minor``). A prompt whose tempos (or keys) all contradict the mood's ``bpm`` (or
``key``) has them replaced by the mood's: the mood's fields are what the synth plays and
what the server's clock counts, so a generator reading the prompt is asked for the same
(``segue validate`` and ``segue plan`` warn of the contradiction; docs/score.md). The same
phrases go into a composition plan's ``positive_global_styles``, since generators that take
a plan ignore the prompt. Runs first (``tryfirst``), so the musical facts follow the mood's
own words.
"""

from __future__ import annotations

import copy
from typing import Any

from segue.core import hookimpl
from segue.core.prompts import (
    KEY_PHRASE,
    TEMPO_PHRASE,
    append_phrases,
    contradicting_keys,
    contradicting_tempos,
    plan_with_styles,
    replace_spans,
    says,
)
from segue.core.request import GenerationRequest


def tempo_phrase(bpm: float) -> str:
    """``84 BPM``; ``92.5 BPM``."""
    return f"{bpm:g} BPM"


@hookimpl(tryfirst=True)
def segue_transform_prompt(request: GenerationRequest) -> GenerationRequest | None:
    prompt = request.prompt
    if request.bpm is not None:
        prompt = replace_spans(
            prompt, contradicting_tempos(prompt, request.bpm), tempo_phrase(request.bpm)
        )
    if request.key:
        prompt = replace_spans(prompt, contradicting_keys(prompt, request.key), request.key)
    phrases = []
    if request.bpm is not None and not TEMPO_PHRASE.search(prompt):
        phrases.append(tempo_phrase(request.bpm))
    if request.key and not says(prompt, request.key) and not KEY_PHRASE.search(prompt):
        phrases.append(request.key)
    plan = request.composition_plan
    if plan is not None:
        plan = _plan_agreeing(plan, request.bpm, request.key)
        if phrases:
            plan = plan_with_styles(plan, positive=phrases)
    if plan is request.composition_plan and prompt == request.prompt and not phrases:
        return None
    return request.replace(prompt=append_phrases(prompt, phrases), composition_plan=plan)


def _plan_agreeing(plan: dict[str, Any], bpm: float | None, key: str | None) -> dict[str, Any]:
    """``plan``, or a copy whose global styles say the mood's tempo and key in the place of
    contradicting ones (judged over all the styles, as a prompt is)."""
    styles = [s for s in plan.get("positive_global_styles") or [] if isinstance(s, str)]
    joined = " | ".join(styles)
    fixed = styles
    if bpm is not None and contradicting_tempos(joined, bpm):
        fixed = [replace_spans(s, contradicting_tempos(s, bpm), tempo_phrase(bpm)) for s in fixed]
    if key and contradicting_keys(joined, key):
        fixed = [replace_spans(s, contradicting_keys(s, key), key) for s in fixed]
    if fixed == styles:
        return plan
    out = copy.deepcopy(plan)  # the score's plan is never changed (docs/plugins.md)
    out["positive_global_styles"] = fixed
    return out
