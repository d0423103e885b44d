"""What intensity layers cost the server, and what stems cost in storage.

1. CPU: the server's whole handling of a ``state`` frame (rate limit, parse, director,
   encode, write to every connection of the session) for an intensity change that moves
   two layers (two ``layers`` messages), beside the same frame on a score without
   ``intensity`` (the baseline: the same work minus the layers), for sessions of 1, 10
   and 100 connections on a transport that only counts bytes. The difference divided by
   the connections is the extra cost of an intensity change per connection.
2. Storage: the synth's track for a mood with four layers, pregenerated through the real
   pipeline (post-processing, encoding at the codec's top quality), beside the same mood
   without layers: bytes of the mix, of the stems, and the ratio.

Figures: CPU microseconds per message (median of 5 runs), bytes. Usage:
    PYTHONPATH=tests python benchmarks/layers.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rules import CountingTransport  # benchmarks/ is on sys.path when run as a script

from segue.core.engine.director import Director
from segue.core.score import parse_score
from segue.core.track import Track

SCORE = """\
segue: 1
intensity: {key: threat, slew_per_s: 4.0}
moods:
  siege:
    prompt: furious battle drums and brass
    bpm: 120
    layers: {bass: {}, harmony: {}, drums: {from: 0.4}, melody: {from: 0.7}}
rules:
  - {mood: siege}
"""
PLAIN = SCORE.replace("intensity: {key: threat, slew_per_s: 4.0}\n", "").replace(
    "    layers: {bass: {}, harmony: {}, drums: {from: 0.4}, melody: {from: 0.7}}\n", ""
)


def per_call_us(fn: Any, n: int) -> float:
    """CPU time per call (this process's, not the wall clock: on a shared, loaded machine
    the wall clock counts other processes' time too)."""
    runs = []
    for _ in range(5):
        start = time.process_time()
        for i in range(n):
            fn(i)
        runs.append((time.process_time() - start) / n * 1e6)
    return statistics.median(runs)


async def state_frames_us(text: str, connections: int) -> tuple[float, float]:
    """us per state frame alternating threat 0.1 <-> 0.9, and bytes written per frame."""
    from aiohttp import web

    from segue.core.server.app import SegueServer, ServerConfig
    from segue.core.server.ratelimit import MessageLimiter
    from segue.core.server.sessions import Connection

    score = parse_score(text, "bench.yaml")
    track = Track(id="siege", mood="siege", variant=0, format="ogg", duration_s=32.0, bpm=120)

    def director(session: str, score: Any, _tracks: Any, lead_s: float) -> Director:
        return Director(session, score, lambda mood: (track,), lead_s=lead_s)

    server = SegueServer(score, None, None, ServerConfig(), director_factory=director)
    session, _ = server.manager.get_or_create("bench")
    conns = []
    for _ in range(connections):
        conn = Connection(
            web.WebSocketResponse(), CountingTransport(), MessageLimiter(1e9, 1e9, 0.0)
        )
        server.manager.attach(session, conn)
        conns.append(conn)
    frames = (b'{"type":"state","set":{"threat":0.9}}', b'{"type":"state","set":{"threat":0.1}}')
    handle = server._handle_text
    step = iter(range(10**9))

    def one(i: int) -> None:
        handle(conns[0], frames[next(step) & 1])

    n = 20_000 if connections < 100 else 4_000
    took = per_call_us(one, n)
    written = sum(c.transport.bytes for c in conns) / (5 * n)  # type: ignore[attr-defined]
    server.manager.close()
    return took, written


async def storage() -> tuple[int, int, int, int]:
    """Bytes of (mix with layers, its stems, the mix without layers, number of stems)."""
    from segue.core.plugins import get_plugins
    from segue.core.pregen.pipeline import Pipeline
    from segue.core.score import load_score

    out = []
    for text in (SCORE, PLAIN):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "adaptive_score.yaml"
            path.write_text(text.replace("segue: 1\n", "segue: 1\ndefaults: {duration_s: 16}\n"))
            score = load_score(path)
            pipeline = Pipeline(score, get_plugins())
            try:
                summary = await pipeline.run(pipeline.plan())
                (outcome,) = summary.outcomes
                assert outcome.state == "stored", outcome
                (track,) = pipeline.tracks_for("siege")
            finally:
                await pipeline.aclose()
            out.append(track)
    layered, plain = out
    stems = sum(int(s["bytes"]) for s in layered.stems.values())
    return layered.bytes, stems, plain.bytes, len(layered.stems)


def main() -> None:
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    extra = {}
    for connections in (1, 10, 100):
        plain, plain_bytes = asyncio.run(state_frames_us(PLAIN, connections))
        layered, layered_bytes = asyncio.run(state_frames_us(SCORE, connections))
        extra[connections] = layered - plain
        print(
            f"{connections:4d} connections: state frame {plain:8.2f} us without intensity, "
            f"{layered:8.2f} us with (2 layers messages; {layered_bytes:.0f} vs "
            f"{plain_bytes:.0f} bytes written per frame): {layered - plain:7.2f} us extra"
        )
    # Once per change (the director's ramps, two frames encoded), then per connection.
    per_conn = (extra[100] - extra[1]) / 99
    print(
        f"an intensity change costs {extra[1] - per_conn:.1f} us once per session "
        f"+ {per_conn:.2f} us per connection"
    )
    mix, stems, plain_mix, count = asyncio.run(storage())
    print(
        f"storage, 16 s synth loop (ogg): {mix} bytes mix + {stems} bytes in {count} stems "
        f"(mix at q10); without layers {plain_mix} bytes (q5): "
        f"{(mix + stems) / plain_mix:.1f}x the storage"
    )


if __name__ == "__main__":
    main()
