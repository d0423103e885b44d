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
    if not phrases and prompt == request.prompt:
        return None
    plan = request.composition_plan
    if plan is not None and phrases:
        plan = plan_with_styles(plan, positive=phrases)
    return request.replace(prompt=append_phrases(prompt, phrases), composition_plan=plan)
