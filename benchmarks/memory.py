"""Memory of generating one track: the peak resident size of a `segue pregen` of one synth track.

    python benchmarks/memory.py [--seconds 60,180,600] [--baseline COMMIT] [--prompt TEXT]

Each case is a fresh process that runs ``segue pregen`` (``segue.core.cli.main``) on a score
of one mood of ``--seconds`` of audio, generator ``synth``: the render, then the finishing
chain of ``core/pregen/`` (decode, beat_grid, loop_points, loudness, encode to Ogg, verify).
It prints the process's peak resident set (``ru_maxrss``) and its children's (the synth's
second process, when it forks one), beside the same case run with the code at
``--baseline`` (``git archive`` of core/ and plugins/ into a temporary folder, first on the
path), in the same run, with the load average. Targets: 600 s at most 1.0 GB, 60 s 0.3 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from baseline import baseline_tree

ROOT = Path(__file__).resolve().parent.parent
# main before the second pass of the memory work (2f11264: before the first; the figures
# of docs/deployment.md are today's beside this one's).
BASELINE = "2271b9b"
PROMPT = "Calm peaceful ambient pads and bells, slow evolving bed"

SCORE = """segue: 1
generator: synth
defaults: {{duration_s: {seconds}, format: ogg}}
moods:
  bed:
    prompt: {prompt}
    bpm: 80
    key: D major
rules:
  - mood: bed
"""


def child(seconds: float, prompt: str) -> None:
    """One `segue pregen` in this process; its peaks (MB) as JSON on the last line."""
    from segue.core.cli import main as segue

    with tempfile.TemporaryDirectory() as tmp:
        score = Path(tmp) / "adaptive_score.yaml"
        score.write_text(SCORE.format(seconds=seconds, prompt=prompt))
        code = segue(["pregen", str(score)])
        if code not in (0, None):
            raise SystemExit(f"segue pregen exited {code}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"peak_mb": own, "children_mb": kids, "load": os.getloadavg()[0]}))


def measure(seconds: float, code: Path | None, prompt: str) -> dict:
    """Run one case in a fresh process on ``code`` (a baseline tree) or today's code (None)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")])
    command = [sys.executable, __file__, "--child", str(seconds), "--prompt", prompt]
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"case {seconds} s failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", default="60,180,600", help="track lengths, comma-separated")
    parser.add_argument("--baseline", default=BASELINE, metavar="COMMIT")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.prompt)
        return
    print("peak resident MB of one `segue pregen` (synth, ogg), a fresh process per case;")
    print(f"baseline = {args.baseline}; targets: 600 s <= 1000 MB, 60 s <= 300 MB")
    with tempfile.TemporaryDirectory() as tmp:
        base = None if args.no_baseline else baseline_tree(args.baseline, Path(tmp))
        if base is None and not args.no_baseline:
            print(f"  (no baseline: git cannot read {args.baseline} here)")
        for seconds in [float(s) for s in args.seconds.split(",") if s]:
            new = measure(seconds, None, args.prompt)
            line = (
                f"  {seconds:5.0f} s  now {new['peak_mb']:6.0f} MB"
                f" (+{new['children_mb']:4.0f} child, load {new['load']:4.1f})"
            )
            if base is not None:
                old = measure(seconds, base, args.prompt)
                line += (
                    f"   baseline {old['peak_mb']:6.0f} MB"
                    f" (+{old['children_mb']:4.0f} child, load {old['load']:4.1f})"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
