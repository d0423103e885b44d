"""How long the rules engine takes per decision, beside a same-run baseline.

Every state message a game sends goes through ``Director.update`` (merge, rules, maybe a
transition lookup and the musical clock), and every cue through ``schedule``. This
measures, on the example score with synthetic tracks:

- ``apply_state`` alone, and a ``copy.deepcopy`` of the same state (the baseline: the
  cheapest honest way to produce a new state dict);
- ``Director.update`` for a change that moves no music (the common case) and for
  changes that alternate the mood (each makes a cue: lookup, schedule, entry offset);
- ``schedule`` for next_bar on a loop many passes in;
- the server's whole handling of a ``state`` frame that flips the mood, from the frame's
  bytes to the cue frame written (rate limit, parse, director, encode, write), on a
  transport that only counts bytes: the CPU a state->cue costs beside the sockets.

Figures are microseconds per call (median of 5 runs). Usage: python benchmarks/rules.py
"""

from __future__ import annotations

import asyncio
import copy
import statistics
import time
from pathlib import Path
from typing import Any

from segue.core.engine.clock import Grid, schedule
from segue.core.engine.director import Director
from segue.core.engine.state import apply_state
from segue.core.score import load_score
from segue.core.track import Track

SCORE = Path(__file__).resolve().parent.parent / "adaptive_score.yaml"
T0 = 1_764_000_000.0


def per_call_us(fn, n: int) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    score = load_score(SCORE)
    tracks = {
        name: [
            Track(
                id=f"{name}-{v}",
                mood=name,
                variant=v,
                format="ogg",
                duration_s=mood.duration_s,
                bpm=mood.bpm,
                loop=not mood.stinger,
            )
            for v in range(mood.variants)
        ]
        for name, mood in score.moods.items()
    }
    state = {
        "in_combat": False,
        "player": {"health": 0.8, "stance": "walking", "inventory": list(range(20))},
        "zone": "forest",
        "enemies_near": 0,
    }
    change = {"player.health": 0.7, "enemies_near": 0}

    baseline = per_call_us(lambda i: copy.deepcopy(state), 20_000)
    merge = per_call_us(lambda i: apply_state(state, set=change), 20_000)

    d = Director("bench", score, lambda m: tracks.get(m, []), seed=1)
    d.start(T0)
    d.update(T0, set=state)
    quiet = per_call_us(lambda i: d.update(T0 + 100 + i * 0.01, set=change), 20_000)

    # Each call flips combat on or off far apart in time (past dwell and debounce), and
    # ticks once so the debounced exits are cued too: two decisions per iteration.
    d2 = Director("bench", score, lambda m: tracks.get(m, []), seed=1)
    d2.start(T0)
    cues_before = d2.seq
    step = iter(range(10**9))  # time only moves on, across the repeated runs

    def flip(i: int) -> None:
        k = next(step)
        now = T0 + 1000 + k * 60.0
        d2.update(now, set={"in_combat": k % 2 == 0})
        d2.tick(now + 30.0)

    moving = per_call_us(flip, 5_000)
    cues = d2.seq - cues_before

    grid = Grid(bpm=97.0, beats_per_bar=7, loop=True, loop_end_s=52.3, duration_s=54.0)
    sched = per_call_us(
        lambda i: schedule(grid, T0, 3.1, T0 + 3600 + i * 0.37, "next_bar", 0.2), 50_000
    )

    handled = asyncio.run(server_hot_path(score, tracks))

    print(f"example score: {len(score.moods)} moods, {len(score.rules)} rules")
    print(f"baseline  copy.deepcopy(state)           {baseline:8.2f} us/call")
    print(f"apply_state(set=2 keys)                  {merge:8.2f} us/call")
    print(f"Director.update, no change of music      {quiet:8.2f} us/call")
    print(f"Director.update+tick, one mood flip each {moving:8.2f} us/iteration ({cues} cues)")
    print(f"schedule(next_bar, 7/8 loop, 1 h in)     {sched:8.2f} us/call")
    print(f"server: state frame -> cue frame written {handled:8.2f} us/message (100 sessions)")


class CountingTransport:
    """A transport that takes every write and counts the bytes (no socket)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


async def server_hot_path(score: Any, tracks: dict[str, list[Track]]) -> float:
    """SegueServer._handle_text for state frames that flip combat, 100 sessions in turn."""
    from aiohttp import web

    from segue.core.server.app import SegueServer, ServerConfig
    from segue.core.server.ratelimit import MessageLimiter
    from segue.core.server.sessions import Connection

    stored = {mood: tuple(found) for mood, found in tracks.items()}

    def director(session: str, score: Any, _tracks: Any, lead_s: float) -> Director:
        return Director(session, score, lambda mood: stored.get(mood, ()), lead_s=lead_s)

    server = SegueServer(score, None, None, ServerConfig(), director_factory=director)
    conns = []
    for i in range(100):
        conn = Connection(
            web.WebSocketResponse(), CountingTransport(), MessageLimiter(1e9, 1e9, 0.0)
        )
        session, _ = server.manager.get_or_create(f"bench-{i}")
        server.manager.attach(session, conn)
        conns.append(conn)
    frames = (
        b'{"type":"state","set":{"in_combat":true}}',
        b'{"type":"state","set":{"in_combat":false}}',
    )
    handle = server._handle_text
    step = iter(range(10**9))

    def one(i: int) -> None:
        k = next(step)
        handle(conns[k % 100], frames[(k // 100) & 1])

    cues = server.metrics.cues
    took = per_call_us(one, 20_000)
    assert server.metrics.cues - cues >= 5 * 20_000 * 0.9, "state frames must give cues"
    server.manager.close()
    return took


if __name__ == "__main__":
    main()
