"""segue-lofi: a third-party segue plugin that gives every track a lo-fi treatment.

It implements one hook, ``segue_transform_prompt``, at default priority, so it runs after
segue's tempo/key phrases and before its "instrumental" word and global style.
"""

from __future__ import annotations

import copy

from segue.core import hookimpl
from segue.core.request import GenerationRequest

PHRASE = "lo-fi, dusty vinyl crackle, mellow"
STYLES = ["lo-fi", "dusty vinyl crackle", "mellow"]


@hookimpl
def segue_transform_prompt(request: GenerationRequest) -> GenerationRequest | None:
    if request.stinger or PHRASE in request.prompt:
        return None  # a stinger should still hit hard
    prompt = f"{request.prompt.rstrip().rstrip(',')}, {PHRASE}" if request.prompt else PHRASE
    plan = request.composition_plan
    if plan is not None:
        plan = copy.deepcopy(plan)
        styles = plan.setdefault("positive_global_styles", [])
        styles.extend(s for s in STYLES if s not in styles)
    return request.replace(prompt=prompt, composition_plan=plan)
