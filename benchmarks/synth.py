"""Speed of the embedded synth: seconds of audio made per second of one core.

    python benchmarks/synth.py [--seconds 60] [--repeat 3]

Renders a 60 s loop for several moods and encodes each to Ogg Vorbis (as the pipeline does),
with the sampled instruments (the SoundFont ``soundfont: auto`` finds) and, beside them,
with the numpy voices alone (``soundfont: none``), timing CPU time of this process
(``time.process_time``: one core, since numpy's FFTs and element-wise ops here are
single-threaded). Beside it, the same run times the Ogg encoding
alone, so a slow machine shows up in both figures. Target: 50x realtime, encoding included.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from segue.core.request import GenerationRequest
from segue.plugins.synth.render import SAMPLE_RATE, render_request
from segue.plugins.synth.soundfont import find_soundfont

PROMPTS = [
    "Gentle harp and flute over warm strings, wandering and curious",
    "Driving orchestral battle music with taiko drums and brass stabs",
    "Low string ostinato and distant drums, uneasy and watchful",
    "Synthwave night drive with arpeggios",
    "Calm peaceful ambient pads and bells",
    "Lo-fi hip hop, dusty keys",
]


def encode_ogg(path: Path, samples: np.ndarray, sr: int) -> None:
    try:
        from segue.core.audio import write
    except ImportError:  # before the audio module existed
        with sf.SoundFile(path, "w", sr, samples.shape[1], format="OGG", subtype="VORBIS") as f:
            for i in range(0, len(samples), 65536):
                f.write(samples[i : i + 65536])
        return
    write(path, samples, sr, "ogg", loop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    render_rates, total_rates, encode_rates, numpy_rates = [], [], [], []
    soundfont = find_soundfont()
    print(f"SoundFont: {soundfont or 'none found (numpy voices)'}")
    render_request(GenerationRequest(mood="b", variant=0, prompt="warm", duration_s=2.0))
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"{'prompt':<56} {'render':>8} {'+ogg':>8} {'ogg only':>9} {'numpy':>8}  (x realtime)"
        )
        for prompt in PROMPTS:
            req = GenerationRequest(mood="bench", variant=0, prompt=prompt, duration_s=args.seconds)
            best_render = best_total = best_enc = best_numpy = float("inf")
            for _ in range(args.repeat):
                t0 = time.process_time()
                _, samples = render_request(req, SAMPLE_RATE, soundfont)
                t1 = time.process_time()
                encode_ogg(Path(tmp) / "t.ogg", samples, SAMPLE_RATE)
                t2 = time.process_time()
                encode_ogg(Path(tmp) / "e.ogg", samples, SAMPLE_RATE)
                t3 = time.process_time()
                best_render = min(best_render, t1 - t0)
                best_total = min(best_total, t2 - t0)
                best_enc = min(best_enc, t3 - t2)
                t4 = time.process_time()
                render_request(req, SAMPLE_RATE, None)
                best_numpy = min(best_numpy, time.process_time() - t4)
            audio_s = len(samples) / SAMPLE_RATE
            render_rates.append(audio_s / best_render)
            total_rates.append(audio_s / best_total)
            encode_rates.append(audio_s / best_enc)
            numpy_rates.append(audio_s / best_numpy)
            print(
                f"{prompt[:56]:<56} {render_rates[-1]:8.1f} {total_rates[-1]:8.1f} "
                f"{encode_rates[-1]:9.1f} {numpy_rates[-1]:8.1f}"
            )
    print(
        f"{'median':<56} {statistics.median(render_rates):8.1f} "
        f"{statistics.median(total_rates):8.1f} {statistics.median(encode_rates):9.1f} "
        f"{statistics.median(numpy_rates):8.1f}"
    )
    print(
        f"synth realtime factor, ogg included: {statistics.median(total_rates):.1f}x "
        f"(target 50x); ogg encoding alone: {statistics.median(encode_rates):.1f}x"
    )


if __name__ == "__main__":
    main()
