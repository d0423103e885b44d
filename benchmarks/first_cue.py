"""The first minute of ``segue serve`` with an empty cache and the synth.

Prints, for each of ``--runs`` launches in a fresh folder (the median last):

- launch to port: the port accepts connections (it is taken before any other work);
- launch to HTTP: ``/healthz`` answers (``starting``: a thread answers it while the
  server starts);
- launch to ready: ``/healthz`` answered by the server itself (``ok``);
- launch to first cue: a WebSocket connected as soon as the port opened gets its cue
  (``pending`` first, while the mood is generated);
- launch to exit on a taken port;
- the server's CPU time (every thread) when HTTP answered and when the cue arrived: about
  what the wall times would be on an idle machine;

beside two baselines measured in the same run: launch to exit of ``segue validate`` (the
interpreter, imports, plugins and score that every command pays) and the time to
generate the score's default mood alone, in process with its imports done: its first
track (variant 0), which is what the first cue waits for (the server makes it alone and
the mood's other variants after it).

    PYTHONPATH=tests python benchmarks/first_cue.py [--score PATH ...] [--runs N] [--realtime]

It runs in a session of its own at nice -10 (where allowed: root), so that on a machine
busy with other work the figures are segue's more than the machine's; ``--realtime``
runs it (and the servers it launches) under SCHED_RR instead, which leaves the others
5 % of the CPU: the nearest to an idle machine a busy one gets. The load average is
printed at the start and the end.

Without ``--score`` it times the starter that ``segue init`` writes and ``HARBOUR``, a
score with another default mood (two variants of it); ``--score adaptive_score.yaml``
times the repository's example. Several ``--score`` are timed one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from hostile import REALTIME_ENV, priority
from launch_support import serve_from_empty, serve_on_taken_port, startup_baseline

from segue.core.commands.init import STARTER
from segue.core.engine.rules import generation_order
from segue.core.plugins import get_plugins
from segue.core.pregen.pipeline import Pipeline
from segue.core.score import load_score

HARBOUR = """\
segue: 1
title: Harbour Night
generator: synth
defaults: {duration_s: 30, format: ogg, variants: 2}
moods:
  docks:
    prompt: Foggy harbour at night, slow accordion and upright bass, lonely and swaying.
    bpm: 76
    key: A minor
  chase:
    prompt: Fast chase over rooftops, pizzicato strings and snare, tense.
    bpm: 150
    key: E minor
    variants: 1
  bell: {prompt: A single ship's bell, duration_s: 3, stinger: true, bpm: 60}
rules:
  - {mood: chase, priority: 5, when: {chased: true}}
  - {mood: docks}
events:
  ring: {stinger: bell}
transitions:
  - {from: "*", to: "*", at: next_bar, fade_ms: 1200}
"""


def fresh_folder(root: Path, text: str, n: int) -> Path:
    folder = root / f"run-{n}"
    folder.mkdir()
    (folder / "adaptive_score.yaml").write_text(text)
    return folder


def default_mood_alone(folder: Path) -> tuple[str, float]:
    """Seconds to generate the default mood's first track, nothing else running."""
    score = load_score(folder / "adaptive_score.yaml")
    mood = generation_order(score)[0]
    pipeline = Pipeline(score, get_plugins())

    async def go() -> float:
        planned = [p for p in pipeline.plan() if p.request.mood == mood][:1]
        started = time.monotonic()
        try:
            await pipeline.run(planned)
        finally:
            await pipeline.aclose()
        return time.monotonic() - started

    return mood, asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--score",
        type=Path,
        action="append",
        help="a score (default: segue init's starter, then HARBOUR); repeat to time several",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--realtime", action="store_true", help="run under SCHED_RR (root): a quiet machine"
    )
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.realtime:
        os.environ[REALTIME_ENV] = "1"
    priority(-10, realtime=20)  # the servers launched inherit it
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    scores = [(str(p), p.read_text()) for p in args.score or []] or [
        ("the starter (segue init)", STARTER),
        ("HARBOUR (another default mood, two variants)", HARBOUR),
    ]
    for name, text in scores:
        print(f"\n{name}")
        time_score(text, args.runs)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


def time_score(text: str, runs: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="segue-first-cue-"))
    rows: list[tuple[float, ...]] = []
    try:
        print(
            "run  validate      port      http     ready  1st cue  taken port  mood alone"
            "  cpu@http  cpu@cue  (seconds)",
            flush=True,
        )
        for n in range(runs):
            baseline = startup_baseline(fresh_folder(root, text, n * 3))
            launch = serve_from_empty(fresh_folder(root, text, n * 3 + 1))
            taken = serve_on_taken_port(fresh_folder(root, text, n * 3 + 2))
            assert taken.returncode == 1, taken.stderr
            mood, alone = default_mood_alone(fresh_folder(root, text, 1000 + n))
            row = (
                baseline.seconds,
                launch.port_s,
                launch.http_s,
                launch.ready_s,
                launch.first_cue_s,
                taken.seconds,
                alone,
                launch.cpu_http_s,
                launch.cpu_first_cue_s,
            )
            rows.append(row)
            print(f"{n + 1:<4} " + "  ".join(f"{v:8.2f}" for v in row) + f"  ({mood})", flush=True)
        medians = [statistics.median(col) for col in zip(*rows, strict=True)]
        print("med  " + "  ".join(f"{v:8.2f}" for v in medians), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
