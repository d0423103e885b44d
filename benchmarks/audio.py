"""Speed of post-processing: each ``segue_process_track`` plugin on a 60 s track, per format.

    python benchmarks/audio.py [--seconds 60] [--repeat 3]

Times CPU time of this process (``time.process_time``: one core) for beat_grid,
loop_points and loudness on a 60 s stereo 44.1 kHz drum-and-bass loop, for each output
format (loudness encodes and decodes lossy formats once or more to check its result),
beside the time to encode that format alone in the same run, so a slow machine shows up
in both figures.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from audio_signals import SR, drum_loop

from segue.core import audio
from segue.core.track import Track
from segue.plugins import beat_grid, loop_points, loudness


def cpu(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x = 0.3 * drum_loop(120, args.seconds, seed=1)
    audio.loudness(x[:SR], SR)  # import pyloudnorm/scipy outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "source.wav"
        audio.write_float_wav(source, x, SR)
        track = Track(
            id="bench", mood="m", variant=0, format="ogg", duration_s=args.seconds,
            extra={"loudness_target": -16.0, "requested_bpm": 120.0},
        )  # fmt: skip
        wav = work / "work.wav"

        def fresh() -> Path:
            shutil.copyfile(source, wav)
            return wav

        grid = cpu(lambda: beat_grid.segue_process_track(track, fresh()), args.repeat)
        with_bpm = track.replace(bpm=120.0)
        points = cpu(lambda: loop_points.segue_process_track(with_bpm, fresh()), args.repeat)
        print(f"{args.seconds:g} s stereo 44.1 kHz, CPU seconds (median of {args.repeat})")
        print(f"  beat_grid    {grid:6.3f}  ({args.seconds / grid:5.0f}x realtime)")
        print(f"  loop_points  {points:6.3f}  ({args.seconds / points:5.0f}x realtime)")
        for fmt in audio.ENCODINGS:
            fmt_track = with_bpm.replace(format=fmt, loop_end_s=args.seconds)
            norm = cpu(lambda t=fmt_track: loudness.segue_process_track(t, fresh()), args.repeat)
            enc = cpu(lambda f=fmt: audio.write(work / f"out.{f}", x, SR, f), args.repeat)
            print(
                f"  loudness {fmt:4s} {norm:6.3f}  ({args.seconds / norm:5.0f}x realtime)"
                f"   encode {fmt} alone {enc:6.3f}"
            )


if __name__ == "__main__":
    main()
