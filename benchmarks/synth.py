"""Speed of the embedded synth: seconds of audio made per second of one core.

    python benchmarks/synth.py [--seconds 60] [--repeat 3] [--no-baseline]

Renders a 60 s loop for several moods and encodes each to Ogg Vorbis (as the pipeline does),
with the sampled instruments (the SoundFont ``soundfont: auto`` finds) and, beside them,
with the numpy voices alone (``soundfont: none``), timing CPU time of this process
(``time.process_time``: one core, since numpy's FFTs and element-wise ops here are
single-threaded). Beside it, the same run times the Ogg encoding alone (of other samples
than the ones just encoded: ``segue.core.audio.encode`` returns the bytes of the samples it
encoded last without encoding them again), so a slow machine shows up in both figures.
Target: 50x realtime, encoding included.

``first``: the render of each mood as the first of a process (the SoundFont parsed, but
none of its notes made: the cache the renders of a process share is emptied before it);
the other columns are later renders, as a pregeneration's other tracks and variants are.

``baseline``: the same render with the synth as it was before the speed work (read from
git history at BASELINE_COMMIT, so the comparison stays possible as the code moves on),
in the same run. Each row's best of ``--repeat``; the SoundFont is parsed before timing.
Last, the render of the first track a fresh ``segue serve`` makes (the default mood of
``segue init``'s starter and of the repository's example score), now and at the baseline.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# One core: OpenBLAS's threads (np.dot) would add their CPU time (spinning included).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import soundfile as sf

from segue.core.request import GenerationRequest
from segue.plugins.synth.render import SAMPLE_RATE, render_request
from segue.plugins.synth.soundfont import find_soundfont, load

PROMPTS = [
    "Gentle harp and flute over warm strings, wandering and curious",
    "Driving orchestral battle music with taiko drums and brass stabs",
    "Low string ostinato and distant drums, uneasy and watchful",
    "Synthwave night drive with arpeggios",
    "Calm peaceful ambient pads and bells",
    "Lo-fi hip hop, dusty keys",
]


# The synth before the speed work of issue 12 (its render at 21x realtime with the encode).
BASELINE_COMMIT = "20e88cb"
BASELINE_PACKAGE = "segue_synth_baseline"


def baseline_render(folder: Path) -> Callable | None:
    """``render_request`` of plugins/synth at BASELINE_COMMIT (the whole plugin, as a package
    of its own in ``folder``), or None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        names = subprocess.run(
            ["git", "-C", str(root), "ls-tree", "--name-only", BASELINE_COMMIT, "plugins/synth/"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        package = folder / BASELINE_PACKAGE
        package.mkdir()
        for name in names:
            source = subprocess.run(
                ["git", "-C", str(root), "show", f"{BASELINE_COMMIT}:{name}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            source = source.replace("segue.plugins.synth", BASELINE_PACKAGE)
            (package / Path(name).name).write_text(source)
    except (OSError, subprocess.CalledProcessError):
        return None
    # A package of its own found by its file, not by a sys.path entry.
    spec = importlib.util.spec_from_file_location(
        BASELINE_PACKAGE, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    sys.modules[BASELINE_PACKAGE] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[BASELINE_PACKAGE])
    return importlib.import_module(f"{BASELINE_PACKAGE}.render").render_request


def encode_ogg(path: Path, samples: np.ndarray, sr: int) -> None:
    try:
        from segue.core.audio import write
    except ImportError:  # before the audio module existed
        with sf.SoundFile(path, "w", sr, samples.shape[1], format="OGG", subtype="VORBIS") as f:
            for i in range(0, len(samples), 65536):
                f.write(samples[i : i + 65536])
        return
    write(path, samples, sr, "ogg", loop=True)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """The least CPU time of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline render")
    args = parser.parse_args()
    soundfont = find_soundfont()
    print(f"SoundFont: {soundfont or 'none found (numpy voices)'}")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    columns: dict[str, list[float]] = {
        k: [] for k in ("first", "render", "+ogg", "ogg only", "numpy", "baseline", "base+ogg")
    }
    with tempfile.TemporaryDirectory() as tmp:
        baseline = None if args.no_baseline else baseline_render(Path(tmp))
        ogg = Path(tmp) / "e.ogg"
        warm = GenerationRequest(mood="b", variant=0, prompt="warm", duration_s=2.0)
        render_request(warm)
        if baseline is not None:
            baseline(warm)
        print(
            f"{'prompt':<44} {'first':>6} {'render':>7} {'+ogg':>7} {'ogg only':>8} {'numpy':>7} "
            f"{'baseline':>8} {'base+ogg':>8}  (x realtime, CPU)"
        )
        for prompt in PROMPTS:
            req = GenerationRequest(mood="bench", variant=0, prompt=prompt, duration_s=args.seconds)
            if soundfont is not None:
                load(str(soundfont)).signals.clear()
            t0 = time.process_time()
            _, samples = render_request(req, SAMPLE_RATE, soundfont)
            t_first = time.process_time() - t0
            audio_s = len(samples) / SAMPLE_RATE
            # The same cost to encode, other bytes than the encode before (no memo hit).
            others = itertools.cycle([-samples, samples])
            t_render = best_of(args.repeat, lambda r=req: render_request(r, SAMPLE_RATE, soundfont))
            t_enc = best_of(args.repeat, lambda xs=others: encode_ogg(ogg, next(xs), SAMPLE_RATE))
            t_numpy = best_of(args.repeat, lambda r=req: render_request(r, SAMPLE_RATE, None))
            row = {
                "first": audio_s / t_first,
                "render": audio_s / t_render,
                "+ogg": audio_s / (t_render + t_enc),
                "ogg only": audio_s / t_enc,
                "numpy": audio_s / t_numpy,
            }
            if baseline is not None:
                t_base = best_of(args.repeat, lambda r=req: baseline(r, SAMPLE_RATE, soundfont))
                row["baseline"] = audio_s / t_base
                row["base+ogg"] = audio_s / (t_base + t_enc)
            for k, v in row.items():
                columns[k].append(v)
            cells = [f"{row[k]:{w}.1f}" if k in row else " " * w for k, w in WIDTHS]
            print(f"{prompt[:44]:<44} " + " ".join(cells), flush=True)
        medians = {k: statistics.median(v) for k, v in columns.items() if v}
        cells = [f"{medians[k]:{w}.1f}" if k in medians else " " * w for k, w in WIDTHS]
        print(f"{'median':<44} " + " ".join(cells))
        ratio = ""
        if "base+ogg" in medians:
            base = medians["base+ogg"]
            ratio = f"baseline {base:.1f}x, ratio {medians['+ogg'] / base:.2f}; "
        print(
            f"synth realtime factor, ogg included: {medians['+ogg']:.1f}x (target 50x; "
            + ratio
            + f"render alone {medians['render']:.1f}x, first in a process "
            + f"{medians['first']:.1f}x); ogg encoding alone: "
            f"{medians['ogg only']:.1f}x; load average {os.getloadavg()[0]:.1f}"
        )
        # What a fresh `segue serve` makes first: the default mood's first track.
        print(f"\n{'first track of a score (render, CPU s)':<44} {'now':>7} {'baseline':>8}")
        for name, req in first_tracks(Path(tmp)):
            t_now = best_of(args.repeat, lambda r=req: render_request(r, SAMPLE_RATE, soundfont))
            cells = [f"{t_now:7.2f}"]
            if baseline is not None:
                t_base = best_of(args.repeat, lambda r=req: baseline(r, SAMPLE_RATE, soundfont))
                cells.append(f"{t_base:8.2f}")
            print(f"{name[:44]:<44} " + " ".join(cells), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


def first_tracks(folder: Path) -> list[tuple[str, GenerationRequest]]:
    """The request of the default mood's first track of ``segue init``'s starter and of the
    repository's example score (what the first cue of a fresh server waits for)."""
    from segue.core.commands.init import STARTER
    from segue.core.engine.rules import generation_order
    from segue.core.plugins import get_plugins
    from segue.core.pregen.pipeline import Pipeline
    from segue.core.score import load_score

    starter = folder / "starter" / "adaptive_score.yaml"
    starter.parent.mkdir()
    starter.write_text(STARTER)
    example = Path(__file__).resolve().parent.parent / "adaptive_score.yaml"
    out = []
    for name, path in (("starter", starter), ("example", example)):
        score = load_score(path)
        mood = generation_order(score)[0]
        pipeline = Pipeline(score, get_plugins())
        req = next(p.request for p in pipeline.plan() if p.request.mood == mood)
        out.append((f"{name}: {mood} ({req.duration_s:g} s)", req))
    return out


WIDTHS = [
    ("first", 6),
    ("render", 7),
    ("+ogg", 7),
    ("ogg only", 8),
    ("numpy", 7),
    ("baseline", 8),
    ("base+ogg", 8),
]


if __name__ == "__main__":
    main()
