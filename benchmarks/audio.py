"""Speed of post-processing: each ``segue_process_track`` plugin, and a whole track's finishing.

    PYTHONPATH=tests python benchmarks/audio.py [--seconds 60] [--repeat 3] [--song FILE]
        [--baseline COMMIT] [--formats ogg,opus,...]

(``PYTHONPATH=tests``: it reuses the test suite's helper modules, as pytest does.)

On a real song's first ``--seconds`` (by default Debian ``drascula-music``'s track16, which
``loop_points`` carves into lead-in, loop and outro; a 60 s drum-and-bass loop when the
package is missing), CPU time (``time.process_time``: one core), median of ``--repeat``
runs:

- each built-in post-processor on the decoded audio (``loudness`` per output format: it
  encodes and decodes lossy formats once or more to check its result), beside the time to
  encode that format alone in the same run, so a slow machine shows up in both figures;
- the pipeline's finishing step per format (``segue.core.pregen.finishing.finish``: decode
  the generator's float WAV once, ``beat_grid``, ``loop_points``, ``loudness``, encode once,
  verify once), in seconds of CPU per minute of audio, beside the same step of the code at
  ``--baseline`` (by default the commit before the encoders moved to libopus and LAME
  builds: ``git archive`` into a temporary folder). Each figure is measured in a fresh
  process (the baseline's and today's alternate, format by format) after one warm-up run,
  with the load average beside it. The target: at most 2 s of CPU per minute of audio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from baseline import baseline_tree

ROOT = Path(__file__).resolve().parent.parent
SONG = Path("/usr/share/scummvm/drascula/audio/track16.ogg")
# main before this work: libsndfile's own libopus and LAME, the FFT resampler for Opus.
BASELINE = "20e88cb"
FORMATS = ("ogg", "opus", "mp3", "flac", "wav")


def cpu(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU seconds of ``fn`` over ``repeat`` runs, each without the previous one's memos."""
    from segue.core import analysis, audio

    times = []
    for _ in range(repeat):
        audio._memo.__dict__.clear()
        analysis._last = None
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def song(path: Path | None, seconds: float):
    """``(samples, rate, seconds)``: the song's first ``seconds`` at 44.1 kHz, or the drum loop."""
    import numpy as np
    import soundfile as sf

    from segue.core import audio

    if path is not None and path.is_file():
        data, rate = sf.read(str(path), frames=round(seconds * 44100), dtype="float32")
        x = audio.resample(data if data.ndim == 2 else data[:, None].repeat(2, 1), rate, 44100)
        return np.ascontiguousarray(x), 44100, x.shape[0] / 44100
    from audio_signals import SR, drum_loop

    return 0.3 * drum_loop(120, seconds, seed=1), SR, seconds


class _Generator:
    """Stands for the generator whose output is finished: only its name and model are read."""

    name = "bench"
    model = "bench-1"


def finishing(fmt: str, x, sr: int, seconds: float, work: Path):
    """A function that finishes the song as ``fmt``, as the pipeline does."""
    from segue.core import audio
    from segue.core.generator import GeneratedAudio
    from segue.core.plugins import Plugins
    from segue.core.pregen.finishing import finish
    from segue.core.pregen.planning import PlannedRequest
    from segue.core.request import GenerationRequest

    generated = work / "generated.wav"
    if not generated.exists():
        audio.write_float_wav(generated, x, sr)  # what the synth writes
    plugins = Plugins(strict=True, load_entry_points=False)
    request = GenerationRequest(
        mood="m", variant=0, prompt="bench", duration_s=seconds, bpm=120.0,
        output_format=fmt, generator="bench", params={"loudness_lufs": -16.0},
    )  # fmt: skip
    planned = PlannedRequest(request, 0.0)
    gen = GeneratedAudio(generated, "bench-1")
    return lambda: finish(plugins, planned, gen, _Generator(), work)


def child(args: argparse.Namespace) -> None:
    """One format's finishing, in this process (today's code or the baseline's): JSON out."""
    import logging

    logging.disable(logging.WARNING)  # the tempo warnings of every run
    x, sr, seconds = song(args.song, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        run = finishing(args.child, x, sr, seconds, Path(tmp))
        run()  # warm-up: imports, filter designs, FFT plans
        per_minute = cpu(run, args.repeat) * 60.0 / seconds
    print(json.dumps({"cpu_per_minute": per_minute, "load": os.getloadavg()[0]}))


def measure(fmt: str, code: Path | None, args: argparse.Namespace) -> dict:
    """Run one child on ``code`` (a baseline tree) or today's code (None)."""
    paths = [str(ROOT / "tests")]
    if code is not None:
        paths.insert(0, str(code))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--child", fmt, "--seconds", str(args.seconds)]
    command += ["--repeat", str(args.repeat)]
    if args.song is not None:
        command += ["--song", str(args.song)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def plugins_section(args: argparse.Namespace) -> None:
    """Each built-in post-processor and each encoder alone, today's code, in this process."""
    from segue.core import audio
    from segue.core.audio import TrackAudio
    from segue.core.track import Track
    from segue.plugins import beat_grid, loop_points, loudness

    x, sr, seconds = song(args.song, args.seconds)
    audio.loudness(x[:sr], sr)
    track = Track(
        id="bench", mood="m", variant=0, format="ogg", duration_s=seconds,
        extra={"loudness_target": -16.0, "requested_bpm": 120.0},
    )  # fmt: skip
    decoded = TrackAudio(x, sr, track)
    grid = cpu(lambda: beat_grid.segue_process_track(decoded), args.repeat)
    with_bpm = decoded.replace(track=track.replace(bpm=120.0))
    points = cpu(lambda: loop_points.segue_process_track(with_bpm), args.repeat)
    print(f"{seconds:g} s stereo 44.1 kHz, CPU seconds (median of {args.repeat}), today's code")
    print(f"  beat_grid    {grid:6.3f}  ({seconds / grid:5.0f}x realtime)")
    print(f"  loop_points  {points:6.3f}  ({seconds / points:5.0f}x realtime)")
    for fmt in args.formats:
        fmt_audio = with_bpm.replace(track=with_bpm.track.replace(format=fmt, loop_end_s=seconds))
        norm = cpu(lambda a=fmt_audio: loudness.segue_process_track(a), args.repeat)
        enc = cpu(lambda f=fmt: audio.encode(x, sr, f), args.repeat)
        data = audio.encode(x, sr, fmt)
        dec = cpu(lambda d=data: audio.decode(d), args.repeat)
        print(
            f"  loudness {fmt:4s} {norm:6.3f}  ({seconds / norm:5.0f}x realtime)"
            f"   encode {fmt} alone {enc:6.3f}   decode {dec:6.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--song",
        type=Path,
        default=SONG if SONG.is_file() else None,
        metavar="FILE",
        help="a real song's first --seconds (default: drascula-music's track16 if installed)",
    )
    parser.add_argument("--baseline", default=BASELINE, metavar="COMMIT")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.formats = [f for f in args.formats.split(",") if f]
    if args.child:
        child(args)
        return
    plugins_section(args)
    print(
        "finishing a track (decode, beat_grid, loop_points, loudness, encode, verify):"
        " CPU seconds per minute of audio, median of"
        f" {args.repeat}, a fresh process each; baseline = {args.baseline}; target 2 s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_tree(args.baseline, Path(tmp))
        if base is None:
            print(f"  (no baseline: git cannot read {args.baseline} here)")
        for fmt in args.formats:
            old = measure(fmt, base, args) if base is not None else None
            new = measure(fmt, None, args)
            before = (
                f"baseline {old['cpu_per_minute']:5.2f} s (load {old['load']:4.1f})"
                if old
                else "baseline -"
            )
            print(
                f"  {fmt:4s}  now {new['cpu_per_minute']:5.2f} s (load {new['load']:4.1f})"
                f"   {before}"
            )


if __name__ == "__main__":
    main()
