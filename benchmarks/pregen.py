"""Pregeneration throughput: does the pipeline keep C generator calls busy?

A generator that takes L seconds per track (``asyncio.sleep``, then writes a short valid
WAV) makes N tracks with concurrency C through the real pipeline (disk cache, local sink,
every built-in post-processor). The ideal makespan is ceil(N/C)*L; efficiency is
ideal/makespan. The pipeline's own overhead per track is measured in the same run:

- ``pre``: from the pipeline saying "generating" to the generator being entered
  (lock, budget check, work folder), inside a concurrency slot;
- ``post``: from the generator returning to the track being stored (decode, post-process,
  encode, verify, store, record); this runs outside the slot, overlapped with the next calls;
- ``slot idle``: C*makespan - N*L, the slot time not spent in the generator, per track.

Usage: python benchmarks/pregen.py [--n 200] [--c 8] [--l 0.5] [--cache disk|memory]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from segue.core import hookimpl
from segue.core.generator import GeneratedAudio
from segue.core.plugins import Plugins
from segue.core.pregen.pipeline import Pipeline
from segue.core.score import Mood, PluginChoice, Score


class SleepyGenerator:
    name = "sleepy"
    model = "sleepy-1"

    def __init__(self, config: dict[str, Any], state_dir: Path) -> None:
        self.latency_s = float(config["latency_s"])
        self.concurrency = int(config.get("concurrency", 8))
        self.calls: dict[str, tuple[float, float]] = {}
        tone = (0.3 * np.sin(np.linspace(0, 2 * np.pi * 440, 8000))).astype(np.float32)
        buffer = io.BytesIO()
        sf.write(buffer, tone, 8000, format="WAV")  # 1 s, valid; encoded once
        self.wav = buffer.getvalue()

    def audio_params(self) -> dict[str, Any]:
        return {"model": self.model, "latency_s": self.latency_s}

    def estimate_cost(self, request: Any) -> float:
        return 0.0

    def check(self, request: Any) -> None:
        pass

    async def generate(self, request: Any, workdir: Path) -> GeneratedAudio:
        started = time.perf_counter()
        await asyncio.sleep(self.latency_s)
        path = workdir / "out.wav"
        path.write_bytes(self.wav)
        self.calls[request.cache_key] = (started, time.perf_counter())
        return GeneratedAudio(path=path, model=self.model)

    async def aclose(self) -> None:
        pass


class SleepyPlugin:
    def __init__(self) -> None:
        self.instances: list[SleepyGenerator] = []

    @hookimpl
    def segue_register_generators(self, register: Any) -> None:
        def factory(config: dict[str, Any], state_dir: Path) -> SleepyGenerator:
            gen = SleepyGenerator(config, state_dir)
            self.instances.append(gen)
            return gen

        register("sleepy", factory)


class TimingReporter:
    def __init__(self) -> None:
        self.events: dict[tuple[str, str], float] = {}

    def started(self, planned: Any, todo: int, estimate_usd: float) -> None:
        pass

    def update(self, planned: Any, state: str, detail: str = "") -> None:
        self.events.setdefault((planned.key, state), time.perf_counter())

    def spent(self, usd: float) -> None:
        pass

    def finished(self, summary: Any) -> None:
        pass


def score_for(folder: Path, n: int, c: int, latency: float, cache: str) -> Score:
    mood = Mood(
        name="bench",
        prompt="benchmark",
        composition_plan=None,
        duration_s=1.0,
        instrumental=True,
        variants=n,
        format="wav",
    )
    return Score(
        path=folder / "adaptive_score.yaml",
        title="bench",
        generator=PluginChoice("sleepy", {"latency_s": latency, "concurrency": c}),
        cache=PluginChoice(cache),
        storage=(PluginChoice("local"),),
        moods={"bench": mood},
        rules=(),
        events={},
        transitions=(),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(n: int, c: int, latency: float, cache: str) -> dict[str, float]:
    plugin = SleepyPlugin()
    plugins = Plugins(strict=False, load_entry_points=False, extra=[plugin])
    with tempfile.TemporaryDirectory() as tmp:
        reporter = TimingReporter()
        pipeline = Pipeline(score_for(Path(tmp), n, c, latency, cache), plugins, reporter=reporter)
        pipeline.plan()
        started = time.perf_counter()
        summary = await pipeline.run()
        makespan = time.perf_counter() - started
        # The serving path's lookup, on the tracks just stored.
        requests = [p.request for p in pipeline.plan()]
        t0 = time.perf_counter()
        rounds = max(1, 20000 // n)
        for _ in range(rounds):
            for request in requests:
                pipeline.stored(request)
        stored_us = (time.perf_counter() - t0) / (rounds * n) * 1e6
        await pipeline.aclose()
        assert summary.ok and len(summary.generated) == n, summary.line()
        calls = plugin.instances[-1].calls
        pre = [calls[k][0] - reporter.events[(k, "generating")] for k in calls]
        post = [reporter.events[(k, "stored")] - calls[k][1] for k in calls]
        processors = [
            impl.plugin_name for impl in plugins.pm.hook.segue_process_track.get_hookimpls()
        ]
    ideal = math.ceil(n / c) * latency
    return {
        "makespan": makespan,
        "ideal": ideal,
        "efficiency": ideal / makespan,
        "pre_ms": statistics.mean(pre) * 1000,
        "post_ms": statistics.mean(post) * 1000,
        "post_p95_ms": pct(post, 0.95) * 1000,
        "slot_idle_ms": (c * makespan - n * latency) / n * 1000,
        "late_ms": statistics.mean(e - s - latency for s, e in calls.values()) * 1000,
        "processors": ", ".join(processors) or "none",
        "stored_us": stored_us,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="tracks (default 200)")
    parser.add_argument("--c", type=int, default=8, help="concurrency (default 8)")
    parser.add_argument("--l", type=float, default=0.5, help="seconds per track (default 0.5)")
    parser.add_argument("--cache", default="disk", choices=["disk", "memory"])
    parser.add_argument("--target", type=float, default=0.95, help="efficiency target")
    args = parser.parse_args(argv)
    # Post-processors warn about test tones ("no clear beat"); the figures are the point.
    logging.basicConfig(level=logging.ERROR)
    # Warm-up: the first post-processing call imports and initialises things (once per
    # process); that is not per-track overhead.
    asyncio.run(bench(args.c, args.c, 0.05, args.cache))
    r = asyncio.run(bench(args.n, args.c, args.l, args.cache))
    print(f"pregen benchmark: N={args.n} C={args.c} L={args.l}s cache={args.cache}")
    print(f"  post-processors: {r['processors']}")
    print(f"  makespan      {r['makespan']:.3f} s")
    print(f"  ideal         {r['ideal']:.3f} s  (ceil(N/C)*L, same-run baseline)")
    print(f"  efficiency    {r['efficiency']:.3f}  (target >= {args.target})")
    print(
        f"  overhead/track: pre {r['pre_ms']:.2f} ms in slot, post {r['post_ms']:.2f} ms "
        f"(p95 {r['post_p95_ms']:.2f} ms) overlapped, slot idle {r['slot_idle_ms']:.2f} ms"
    )
    print(f"  event-loop lateness: each L-second call took {r['late_ms']:.2f} ms more on average")
    print(f"  stored() lookup (serving path): {r['stored_us']:.1f} us per call")
    return 0 if r["efficiency"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
