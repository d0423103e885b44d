"""segue-lofi: a third-party segue plugin that gives every track a lo-fi treatment.

It implements one hook, ``segue_transform_prompt``, at default priority, so it runs after
segue's tempo/key phrases and before its "instrumental" word and global style. The text
work is done by segue's public prompt helpers (``segue.core.prompts``).
"""

from __future__ import annotations

from segue.core import hookimpl
from segue.core.prompts import append_phrases, plan_with_styles, says
from segue.core.request import GenerationRequest

PHRASE = "lo-fi, dusty vinyl crackle, mellow"
STYLES = ["lo-fi", "dusty vinyl crackle", "mellow"]


@hookimpl
def segue_transform_prompt(request: GenerationRequest) -> GenerationRequest | None:
    if request.stinger or says(request.prompt, PHRASE):
        return None  # a stinger should still hit hard
    plan = request.composition_plan
    if plan is not None:
        plan = plan_with_styles(plan, positive=STYLES)  # a copy: the score's plan is shared
    return request.replace(prompt=append_phrases(request.prompt, [PHRASE]), composition_plan=plan)
