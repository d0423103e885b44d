"""The synth's mix, dynamics and variety, measured on rendered audio (issue 12's figures).

    PYTHONPATH=tests python benchmarks/synth_mix.py [--seconds 30]

For a few prompts (action, calm, folk under a score-wide orchestral style, electronic, a
composition plan with a crescendo, a jig, a waltz, a lullaby) it prints: left/right
correlation below 150 Hz, loudness lost when summed to mono (LU), percussive minus harmonic
energy (dB, median-filter HPSS), share of energy above 8 kHz, loudness range (LU), the
plan's climax minus its opening (short-term LUFS), and, between two variants of a mood
(each pair of variants 0, 1 and 2), the share of beats with the same strongest pitch class
and the correlation of their onset patterns (issue 12 asks at most 60 % and 0.8). The
measures are the tests' own (``tests/audio_measure.py``).
"""

from __future__ import annotations

import argparse

import audio_measure as am
import numpy as np
from synth_prompts import PROMPTS

from segue.core.request import GenerationRequest
from segue.plugins.synth.render import render_request

SR = 44100
PLAN = {
    "positive_global_styles": ["epic orchestral"],
    "negative_global_styles": [],
    "sections": [
        {
            "section_name": "Quiet intro",
            "positive_local_styles": ["sparse"],
            "negative_local_styles": [],
            "duration_ms": 12000,
            "lines": [],
        },
        {
            "section_name": "Build",
            "positive_local_styles": ["rising"],
            "negative_local_styles": [],
            "duration_ms": 12000,
            "lines": [],
        },
        {
            "section_name": "Climax",
            "positive_local_styles": ["full orchestra, tutti"],
            "negative_local_styles": [],
            "duration_ms": 24000,
            "lines": [],
        },
    ],
}


def render(prompt: str, seconds: float, variant: int = 0, plan: dict | None = None):
    req = GenerationRequest(
        mood="m", variant=variant, prompt=prompt, duration_s=seconds, composition_plan=plan
    )
    arr, x = render_request(req, SR)
    return arr, x.astype(np.float64)


def row(name: str, arr, x: np.ndarray) -> None:
    print(
        f"{name:<11} {arr.bpm:5.0f} {arr.beats_per_bar:3d} "
        f"{am.bass_correlation(x, SR):8.2f} {am.mono_loss_lu(x, SR):8.2f} "
        f"{am.hpss_balance_db(x, SR):8.1f} {100 * am.high_share(x, SR):8.2f} "
        f"{am.loudness_range(x, SR):8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(
        f"{'track':<11} {'bpm':>5} {'bpb':>3} {'bassL/R':>8} {'monoLU':>8} "
        f"{'P-H dB':>8} {'>8k %':>8} {'LRA LU':>8}"
    )
    takes = {}
    for name, prompt in PROMPTS.items():
        arr, x = render(prompt, args.seconds)
        takes[name] = (arr, x)
        row(name, arr, x)
    arr, x = render("Battle", 48.0, plan=PLAN)
    row("plan", arr, x)
    st = am.short_term_loudness(x, SR)
    bar_s = arr.beats_per_bar * 60 / arr.bpm
    starts = {s.name: s.start_bar * bar_s for s in arr.sections}
    ends = {s.name: (s.start_bar + s.bars) * bar_s for s in arr.sections}
    t = np.arange(len(st)) + 1.5  # window centres
    intro = st[(t >= starts["Quiet intro"] + 1.5) & (t <= ends["Quiet intro"] - 1.5)]
    climax = st[(t >= starts["Climax"] + 1.5) & (t <= ends["Climax"] - 1.5)]
    print(
        f"plan: climax minus quiet opening, short-term loudness: "
        f"{np.median(climax) - np.median(intro):.1f} LU"
    )
    # Variants 0, 1 and 2 take the straight, half-time and driving feels: every pair.
    for name in PROMPTS:
        arr, a = takes[name]
        x = {0: a, 1: render(PROMPTS[name], args.seconds, 1)[1]}
        x[2] = render(PROMPTS[name], args.seconds, 2)[1]
        for u, v in ((0, 1), (0, 2), (1, 2)):
            print(
                f"variants {u}-{v} of {name}: same strongest pitch on "
                f"{100 * am.chroma_agreement(x[u], x[v], SR, arr.bpm):.0f}% of beats, "
                f"onset-pattern correlation {am.onset_correlation(x[u], x[v], SR, arr.bpm):.2f}"
            )


if __name__ == "__main__":
    main()
