"""Built-in prompt transformer: the score's global style, into every prompt and plan.

``style: {positive: [cinematic fantasy game score, seamless loop], negative: [vocals]}`` turns
"Gentle harp" into "Gentle harp, cinematic fantasy game score, seamless loop. Avoid: vocals.",
and adds the styles to a composition plan's ``positive_global_styles`` /
``negative_global_styles`` (deduplicated). Runs last (``trylast``), so the "Avoid: …" sentence ends
the prompt. A stinger is one-shot, so positive styles about looping ("seamless loop") are not
given to it.
"""

from __future__ import annotations

import re

from segue.core import hookimpl
from segue.core.prompts import append_phrases, dedupe, plan_with_styles, says
from segue.core.request import GenerationRequest
from segue.core.score import Score

_LOOPING = re.compile(r"\bloop", re.IGNORECASE)


def _applies(request: GenerationRequest, positive: str) -> bool:
    return not (request.stinger and _LOOPING.search(positive))


def _already_avoided(prompt: str, negative: str) -> bool:
    words = r"\s+".join(re.escape(w) for w in negative.split())
    pattern = rf"(?:avoid:[^.]*|\bno\s+|\bwithout\s+)(?<!\w){words}(?!\w)"
    return re.search(pattern, prompt, re.IGNORECASE) is not None


@hookimpl(trylast=True)
def segue_transform_prompt(request: GenerationRequest, score: Score) -> GenerationRequest | None:
    style = getattr(score, "style", None)
    if style is None or not (style.positive or style.negative):
        return None
    prompt = request.prompt
    wanted = [p for p in dedupe(style.positive) if _applies(request, p)]
    positive = [p for p in wanted if not says(prompt, p)]
    prompt = append_phrases(prompt, positive)
    negative = [n for n in dedupe(style.negative) if not _already_avoided(prompt, n)]
    if negative:
        sentence = "Avoid: " + ", ".join(negative) + "."
        base = prompt.rstrip().rstrip(",")
        if not base:
            prompt = sentence
        elif base.endswith((".", "!", "?")):
            prompt = f"{base} {sentence}"
        else:
            prompt = f"{base}. {sentence}"
    plan = request.composition_plan
    if plan is not None:
        plan = plan_with_styles(plan, tuple(wanted), style.negative)
    return request.replace(prompt=prompt, composition_plan=plan)
