"""Generation behind a serving server: the tracks sessions will want first, first.

``segue serve`` listens at once and generates what the score lacks in the background
(``ServerConfig.generate_in_background``), in ``generation_order``: the first track of
the mood the rules pick for an empty state, alone, so that the first cue comes as soon as
it can; then that mood's other variants, the moods the rules can select and the events'
stingers; then the rest, at the generator's concurrency. It goes through the server's
:class:`~segue.core.server.app.OnDemand`, so each track is generated once however many
ask for it, a session gets ``pending`` then its cue as for any on-demand generation, and
a mood a session wants now starts at once, ahead of the moods still queued here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from segue.core.engine.rules import generation_order

if TYPE_CHECKING:
    from segue.core.pregen.planning import PlannedRequest
    from segue.core.server.app import SegueServer

log = logging.getLogger("segue.server")


def missing_in_order(server: SegueServer) -> list[PlannedRequest]:
    """The requests whose tracks are not stored, once per cache key, most wanted first."""
    pipeline = server.pipeline
    if pipeline is None:
        return []
    rank = {mood: i for i, mood in enumerate(generation_order(server.score))}
    missing: dict[str, PlannedRequest] = {}
    # sorted() is stable: a mood's variants keep their order.
    for planned in sorted(pipeline.plan(), key=lambda p: rank[p.request.mood]):
        if planned.key not in missing and pipeline.stored(planned.request) is None:
            missing[planned.key] = planned
    return list(missing.values())


async def generate_in_background(server: SegueServer) -> None:
    """Generate every missing track of the score, most wanted first (see the module)."""
    pipeline = server.pipeline
    if pipeline is not None and pipeline.head_start is not None:
        await pipeline.head_start.key()  # what the head-start worker makes (it says at once)
    todo = missing_in_order(server)
    if pipeline is None or not todo:
        return
    moods = list(dict.fromkeys(p.request.mood for p in todo))
    pipeline.reporter.started(pipeline.plan(), len(todo), sum(p.cost_usd for p in todo))
    log.info(
        "generating %d missing track(s) in the background: %s first, then %s",
        len(todo),
        moods[0],
        ", ".join(moods[1:]) or "nothing else",
    )
    started = time.monotonic()
    on_demand = server.on_demand
    limit = max(1, pipeline.concurrency)
    for i, mood in enumerate(moods):
        tasks = on_demand.request(mood)
        if i == 0 and tasks:
            # Every new session starts here: its first track is made alone (OnDemand.request
            # chains its other variants after it); nothing else competes with it for the CPU.
            await asyncio.wait(tasks[:1])
        while len(on_demand.tasks) >= limit:
            await asyncio.wait(list(on_demand.tasks.values()), return_when=asyncio.FIRST_COMPLETED)
    while on_demand.tasks:
        await asyncio.wait(list(on_demand.tasks.values()))
    failed = [p for p in todo if pipeline.stored(p.request) is None]
    log.info(
        "background generation done in %.1fs: %d stored, %d failed%s",
        time.monotonic() - started,
        len(todo) - len(failed),
        len(failed),
        " (their moods are generated again when a session wants them)" if failed else "",
    )
