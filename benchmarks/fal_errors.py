"""How fast fal failures reach the pipeline, against fal-client's own retrying (baseline).

fal-client 1.0.3 retries 429s and transport errors up to 10 times inside each call. The
``fal`` generator bounds that through public APIs: every submit runs under
``submit_timeout_s`` (10 s by default), and on a tested fal-client its httpx hooks end
fal-client's retry loop at the first 429 (or at the first retry of a failed connection),
so the pipeline sees it at once and honours Retry-After. In one run, against the local
emulator, this measures for each case the time until the error reaches the caller and how
many submits the emulator received, with three clients:

- ``segue``: the generator as shipped, on the installed (tested) fal-client;
- ``untested``: the generator as on a fal-client outside the tested versions (its hooks
  only watch; ``submit_timeout_s`` alone bounds fal-client's retries);
- ``baseline``: fal-client's own retries, unbounded (``submit_timeout_s`` = ``timeout_s``
  = 600 s, hooks only watching).

Cases: a persistent 429 (``--faults 429``); an unreachable fal (nothing listening on the
queue host); and, for scale, a normal 5-second generation (submit, poll, download).

Usage: python benchmarks/fal_errors.py [--poll 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile

from segue.plugins.fal.emulator import FalEmulator

CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
import segue.plugins.fal.generator as g
from segue.core.request import GenerationRequest
from segue.core.errors import SegueError
config = {"poll_interval_s": float(sys.argv[2]), "timeout_s": 600}
if sys.argv[1] != "segue":
    g.TESTED_FAL_CLIENT = ((0,), (0,))  # no version is tested: the hooks only watch
if sys.argv[1] == "baseline":
    config["submit_timeout_s"] = 600
async def main():
    gen = g.FalGenerator(config, Path("."))
    r = GenerationRequest(mood="m", variant=0, prompt="harp 90 BPM", duration_s=5)
    t = time.monotonic()
    try:
        await gen.generate(r, Path(sys.argv[3]))
        outcome = "ok"
    except SegueError as exc:
        outcome = type(exc).__name__
    finally:
        await gen.aclose()
    print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - t}))
asyncio.run(main())
"""


async def one(emu: FalEmulator, client: str, poll: float, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory() as work:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            client,
            str(poll),
            work,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **emu.env(), "FAL_KEY": "bench", **env},
        )
        out, err = await proc.communicate()
    lines = out.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(err.decode()[-2000:])
    return json.loads(lines[-1])


async def main(poll: float) -> None:
    cases = [
        ("normal 5 s generation", "", {}),
        ("persistent 429 on submit", "429:retry_after=1", {}),
        (
            "unreachable queue host",
            "",
            {"FAL_RUN_HOST": "127.0.0.1:9", "FAL_QUEUE_RUN_HOST": "127.0.0.1:9"},
        ),
    ]
    print(f"{'case':28} {'client':9} {'outcome':18} {'seconds':>8} {'submits':>8}")
    for name, faults, env in cases:
        for client in ("segue", "untested", "baseline"):
            async with FalEmulator(latency=0.0, faults=faults, use_synth=False) as emu:
                result = await one(emu, client, poll, env)
                submits = emu.requests["submit"]
            print(
                f"{name:28} {client:9} {result['outcome']:18} {result['seconds']:8.2f} {submits:8}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poll", type=float, default=0.05, help="poll_interval_s")
    asyncio.run(main(parser.parse_args().poll))
