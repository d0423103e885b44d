"""Built-in prompt transformer: "instrumental" when the request asks for no vocals.

Added when ``request.instrumental`` is true and the prompt does not already say
"instrumental"; also into a composition plan's ``positive_global_styles`` (the API's
``force_instrumental`` flag applies to prompts only). Default priority: built-ins are
registered before third-party plugins, and pluggy calls later registrations first, so this
runs after third-party transformers of default priority and before ``style`` (``trylast``).
"""

from __future__ import annotations

from segue.core import hookimpl
from segue.core.prompts import append_phrases, plan_with_styles, says
from segue.core.request import GenerationRequest

WORD = "instrumental"


@hookimpl
def segue_transform_prompt(request: GenerationRequest) -> GenerationRequest | None:
    if not request.instrumental:
        return None
    prompt = (
        request.prompt if says(request.prompt, WORD) else append_phrases(request.prompt, [WORD])
    )
    plan = request.composition_plan
    if plan is not None:
        plan = plan_with_styles(plan, positive=[WORD])
    if prompt == request.prompt and plan == request.composition_plan:
        return None
    return request.replace(prompt=prompt, composition_plan=plan)
