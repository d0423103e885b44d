"""Is every variant of every mood heard at its tempo? A sweep of the synth's output.

    PYTHONPATH=tests python benchmarks/synth_tempo.py [--seconds 16,30,60,120]
        [--variants 0,1,2,3] [--jobs 2] [--librosa] [--only NAME ...]

Moods: the prompts the tests measure (``tests/synth_prompts.py``), the repository's example
score and ``segue init``'s starter (each mood's request after the prompt transformers, as
``segue pregen`` makes it; stingers left out), and a few dozen prompts a game developer
writes (GAME_PROMPTS). Each is rendered at each length and variant, and its tempo measured
on the samples with the tests' estimator (``audio_measure.tempo``), and with librosa's
(``beat.beat_track`` and ``feature.tempo``, when ``--librosa`` and librosa is installed: it
is not a dependency). A tempo is right within 2 % of the metadata's bpm (librosa's, whose
tempo is a whole number of frames, within 4.5 %); a double, a half
or any other reading is a failure. Where the meter is compound (6/8, 12/8), the beat must
also divide in three (``audio_measure.triplet_ratio`` > 1); in 3/4 the analysis the
pipeline runs (``segue.core.analysis``) is asked for the bar (printed, counted apart).
Prints one row per render, then the failures per estimator.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import audio_measure as am
import numpy as np
from synth_prompts import PROMPTS

import segue.core
from segue.core.analysis import analyse
from segue.core.request import GenerationRequest
from segue.core.score import load_score
from segue.plugins.synth.render import render_request

SR = 44100

# What a game developer asks for, in their words (none of these is tuned for).
GAME_PROMPTS = {
    "boss": "Epic boss battle, pounding drums, choir and brass, intense and menacing",
    "tavern": "Cozy tavern music with lute and fiddle, warm and merry",
    "chase": "Fast chase scene, urgent strings and percussion",
    "racing": "High-speed racing game, energetic electronic rock with guitars",
    "stealth": "Stealth infiltration, tense low pulses and soft percussion",
    "horror": "Dark horror ambience, creepy and unsettling, distant drones",
    "menu": "Main menu theme, calm and inviting",
    "credits": "End credits, reflective and warm orchestral",
    "victory": "Victory theme, triumphant and bright brass",
    "sad piano": "Sad piano solo, melancholic and slow",
    "lullaby2": "Soft lullaby for a sleeping child, celesta and harp",
    "waltz2": "Elegant ballroom waltz with strings",
    "march": "Military march with snare drums and brass",
    "jig2": "Irish jig with fiddle and tin whistle",
    "tarantella": "Tarantella, fast and festive, mandolin and tambourine",
    "underwater": "Underwater level, dreamy and floating",
    "desert": "Desert caravan with oud and hand drums",
    "cyberpunk": "Cyberpunk city at night, dark synthwave",
    "puzzle": "Puzzle game, playful and light, marimba and pizzicato",
    "space": "Space exploration, vast and mysterious synth pads",
    "shanty": "Pirate sea shanty in 6/8, rollicking accordion and fiddle",
    "chiptune": "Retro 8-bit platformer, chiptune, upbeat",
    "feast": "Medieval castle feast with lute and recorder",
    "lofi": "Lo-fi hip hop study beats, dusty keys",
    "heist": "Jazzy heist music, walking bass and brushes",
    "dungeon": "Dark dungeon crawl, slow and heavy, low brass and drums",
}


def score_requests() -> dict[str, GenerationRequest]:
    """The example score's and the starter's loop moods, after the prompt transformers."""
    from segue.core.commands.init import STARTER
    from segue.core.plugins import get_plugins
    from segue.core.pregen.planning import base_requests, make_generator

    plugins = get_plugins()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        starter = Path(tmp, "adaptive_score.yaml")
        starter.write_text(STARTER)
        example = Path(segue.core.__file__).resolve().parent.parent / "adaptive_score.yaml"
        for label, path in (("example", example), ("starter", starter)):
            score = load_score(path)
            generator = make_generator(score, plugins)
            for request in base_requests(score, generator):
                if request.variant == 0 and not request.stinger:
                    out[f"{label}:{request.mood}"] = plugins.transform(request, score)
    return out


def verdict(heard: float, bpm: float, within: float = 0.02) -> str:
    """ "ok" within ``within`` of ``bpm``, else which metrical level was heard."""
    ratio = heard / bpm
    levels = {"ok": 1, "half": 1 / 2, "double": 2, "x2/3": 2 / 3, "x1.5": 3 / 2, "x1/3": 1 / 3}
    levels.update({"x3": 3, "x3/4": 3 / 4, "x4/3": 4 / 3})
    for name, r in levels.items():
        if abs(ratio - r) <= within * r:
            return name
    return f"off({ratio:.2f})"


def measure(job: tuple[str, GenerationRequest, bool]) -> dict:
    name, request, with_librosa = job
    arr, x = render_request(request, SR)
    x = x.astype(np.float64)
    heard = am.tempo(x, SR)
    row = {
        "name": name,
        "seconds": request.duration_s,
        "variant": request.variant,
        "bpm": arr.bpm,
        "meter": arr.meter,
        "heard": heard,
        "ours": verdict(heard, arr.bpm),
    }
    if arr.meter in ("6/8", "12/8"):
        ratio = am.triplet_ratio(x, SR, arr.bpm)
        row["threes"] = f"{ratio:.2f}"
        if ratio <= 1.0 and row["ours"] == "ok":
            row["ours"] = "not-in-3"
    if arr.meter == "3/4":
        rhythm = analyse(x.astype(np.float32), SR)
        row["threes"] = rhythm.meter if rhythm is not None else "-"
    if with_librosa:
        import librosa
        from scipy.signal import resample_poly

        y = resample_poly(am.mono(x), 1, 2)  # 22.05 kHz, librosa's own rate
        bt, _ = librosa.beat.beat_track(y=y, sr=SR // 2)
        ft = librosa.feature.tempo(y=y, sr=SR // 2)
        row["beat_track"] = float(np.atleast_1d(bt)[0])
        row["feature_tempo"] = float(np.atleast_1d(ft)[0])
        # librosa's tempo is 60 / (a whole number of 23 ms frames): 4.5 % apart at 170 BPM.
        row["lb"] = verdict(row["beat_track"], arr.bpm, 0.045)
        row["lf"] = verdict(row["feature_tempo"], arr.bpm, 0.045)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", default="16,30,60,120")
    parser.add_argument("--variants", default="0,1,2,3")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--librosa", action="store_true")
    parser.add_argument("--only", nargs="*", help="mood names (e.g. folk, example:combat)")
    args = parser.parse_args()
    moods = {
        k: GenerationRequest(mood=k, variant=0, prompt=p, duration_s=16.0)
        for k, p in {**PROMPTS, **GAME_PROMPTS}.items()
    }
    moods.update(score_requests())
    if args.only:
        moods = {k: v for k, v in moods.items() if k in args.only}
    jobs = [
        (name, dataclasses.replace(req, variant=v, duration_s=float(s)), args.librosa)
        for name, req in moods.items()
        for s in args.seconds.split(",")
        for v in map(int, args.variants.split(","))
    ]
    start = time.time()
    rows = []
    with Pool(args.jobs) as pool:
        for row in pool.imap(measure, jobs):
            rows.append(row)
            extra = f" {row.get('threes', ''):>5}"
            if args.librosa:
                extra += f" | librosa {row['beat_track']:6.1f} {row['lb']:>10} "
                extra += f"{row['feature_tempo']:6.1f} {row['lf']:>10}"
            print(
                f"{row['name']:<18} {row['seconds']:5.0f} {row['variant']} {row['meter']:>5} "
                f"{row['bpm']:5.0f} {row['heard']:6.1f} {row['ours']:>10}{extra}",
                flush=True,
            )
    keys = ["ours"] + (["lb", "lf"] if args.librosa else [])
    labels = {"ours": "audio_measure.tempo", "lb": "librosa beat_track", "lf": "librosa tempo"}
    for key in keys:
        bad = [r for r in rows if r[key] != "ok"]
        print(f"\n{labels[key]}: {len(bad)} of {len(rows)} renders not heard at their tempo")
        for r in bad:
            print(
                f"  {r['name']:<18} {r['seconds']:4.0f}s v{r['variant']} {r['meter']:>5} "
                f"{r['bpm']:4.0f} BPM: {r[key]}"
            )
    load = os.getloadavg()[0]
    print(f"\n{len(rows)} renders in {time.time() - start:.0f} s, load {load:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
