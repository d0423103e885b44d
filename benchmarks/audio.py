"""Speed of post-processing: each ``segue_process_track`` plugin, and a whole track's finishing.

    PYTHONPATH=tests python benchmarks/audio.py [--seconds 60] [--repeat 3] [--song FILE]

(``PYTHONPATH=tests``: it reuses the test suite's helper modules, as pytest does.)

On a 60 s stereo 44.1 kHz drum-and-bass loop (or ``--song FILE``: a real song's first
``--seconds``, which ``loop_points`` carves into lead-in, loop and outro), CPU time of
this process (``time.process_time``: one core), median of ``--repeat`` runs:

- each built-in post-processor on the decoded audio (``loudness`` per output format: it
  encodes and decodes lossy formats once or more to check its result), beside the time to
  encode that format alone in the same run, so a slow machine shows up in both figures;
- the pipeline's finishing step per format (``segue.core.pregen.finishing.finish``: decode
  the generator's float WAV once, run the built-in chain, encode once, verify once), in
  milliseconds per minute of audio, with the number of decodes and encodes it made (every
  decode goes through ``soundfile.read``, every encode through ``soundfile.SoundFile``
  opened for writing; both are counted). Beside it, the same run with
  ``segue.core.audio``'s per-thread memo of the last encode and decode switched off, as
  finishing was before it: ``loudness``'s check of a lossy file and the pipeline's own
  encode and verify then encode the same samples twice and decode the same bytes twice.
  The target: at most 2 s of CPU per minute of audio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import soundfile as sf
from audio_signals import SR, drum_loop

from segue.core import analysis, audio
from segue.core.audio import TrackAudio
from segue.core.generator import GeneratedAudio
from segue.core.plugins import Plugins
from segue.core.pregen.finishing import finish
from segue.core.pregen.planning import PlannedRequest
from segue.core.request import GenerationRequest
from segue.core.track import Track
from segue.plugins import beat_grid, loop_points, loudness

DECODES = [0]
ENCODES = [0]
MEMO = [True]
_sf_read = sf.read
_SoundFile = sf.SoundFile
_memo_decode = audio.decode
_memo_encode = audio.encode


def _counting_read(*args: Any, **kwargs: Any) -> Any:
    DECODES[0] += 1
    return _sf_read(*args, **kwargs)


def _counting_soundfile(*args: Any, **kwargs: Any) -> Any:
    if "w" in (args[1] if len(args) > 1 else kwargs.get("mode", "r")):
        ENCODES[0] += 1
    return _SoundFile(*args, **kwargs)


def _decode(data: bytes, name: str = "audio") -> tuple[Any, int]:
    if not MEMO[0]:
        audio._memo.__dict__.clear()  # as before the memo: every decode does the work
    return _memo_decode(data, name)


def _encode(*args: Any, **kwargs: Any) -> bytes:
    if not MEMO[0]:
        audio._memo.__dict__.clear()
    return _memo_encode(*args, **kwargs)


def cpu(fn: Callable[[], object], repeat: int) -> tuple[float, int, int]:
    """Median CPU seconds of ``fn``, and the decodes and encodes of its last run.

    The memo of the last encode and decode, and the analysis's memo of the last samples
    analysed, are cleared before each run: a repeat must not reuse the previous run's work.
    """
    times = []
    for _ in range(repeat):
        DECODES[0] = ENCODES[0] = 0
        audio._memo.__dict__.clear()
        analysis._last = None
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times), DECODES[0], ENCODES[0]


class _Generator:
    """Stands for the generator whose output is finished: only its name and model are read."""

    name = "bench"
    model = "bench-1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--song",
        type=Path,
        default=None,
        metavar="FILE",
        help="a real song's first --seconds instead of the drum loop (e.g. Debian game music)",
    )
    args = parser.parse_args()
    if args.song is not None:
        data, rate = sf.read(str(args.song), frames=round(args.seconds * 44100), dtype="float32")
        x = audio.resample(data if data.ndim == 2 else data[:, None].repeat(2, 1), rate, SR)
        args.seconds = x.shape[0] / SR
    else:
        x = 0.3 * drum_loop(120, args.seconds, seed=1)
    sf.read = _counting_read  # audio.read/decode go through soundfile.read
    sf.SoundFile = _counting_soundfile  # audio.encode writes through soundfile.SoundFile
    audio.decode = _decode  # callers reach them through the module
    audio.encode = _encode
    audio.loudness(x[:SR], SR)  # import pyloudnorm/scipy outside the timings
    track = Track(
        id="bench", mood="m", variant=0, format="ogg", duration_s=args.seconds,
        extra={"loudness_target": -16.0, "requested_bpm": 120.0},
    )  # fmt: skip
    decoded = TrackAudio(x, SR, track)
    grid, *_ = cpu(lambda: beat_grid.segue_process_track(decoded), args.repeat)
    with_bpm = decoded.replace(track=track.replace(bpm=120.0))
    points, *_ = cpu(lambda: loop_points.segue_process_track(with_bpm), args.repeat)
    print(f"{args.seconds:g} s stereo 44.1 kHz, CPU seconds (median of {args.repeat})")
    print(f"  beat_grid    {grid:6.3f}  ({args.seconds / grid:5.0f}x realtime)")
    print(f"  loop_points  {points:6.3f}  ({args.seconds / points:5.0f}x realtime)")
    for fmt in audio.ENCODINGS:
        fmt_audio = with_bpm.replace(
            track=with_bpm.track.replace(format=fmt, loop_end_s=args.seconds)
        )
        norm, *_ = cpu(lambda a=fmt_audio: loudness.segue_process_track(a), args.repeat)
        enc, *_ = cpu(lambda f=fmt: audio.encode(x, SR, f), args.repeat)
        print(
            f"  loudness {fmt:4s} {norm:6.3f}  ({args.seconds / norm:5.0f}x realtime)"
            f"   encode {fmt} alone {enc:6.3f}"
        )

    plugins = Plugins(strict=True, load_entry_points=False)
    chain = ", ".join(name.rsplit(".", 1)[-1] for name in plugins.processors())
    print(f"finishing a track (decode once, {chain}, encode once, verify once), per minute")
    print("  (before: the same without the memo of the last encode and decode)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generated = work / "generated.wav"
        audio.write_float_wav(generated, x, SR)  # what the synth writes
        for fmt in audio.ENCODINGS:
            request = GenerationRequest(
                mood="m", variant=0, prompt="bench", duration_s=args.seconds, bpm=120.0,
                output_format=fmt, generator="bench", params={"loudness_lufs": -16.0},
            )  # fmt: skip
            planned = PlannedRequest(request, 0.0)
            gen = GeneratedAudio(generated, "bench-1")
            run = lambda p=planned, g=gen: finish(plugins, p, g, _Generator(), work)  # noqa: E731
            MEMO[0] = False
            before, old_decodes, old_encodes = cpu(run, args.repeat)
            MEMO[0] = True
            seconds, decodes, encodes = cpu(run, args.repeat)
            per_minute = 60.0 / args.seconds
            print(
                f"  {fmt:4s}  {seconds * per_minute:5.2f} s CPU  {decodes} decodes"
                f" {encodes} encodes   (before: {before * per_minute:5.2f} s,"
                f" {old_decodes} decodes {old_encodes} encodes)   target 2 s"
            )


if __name__ == "__main__":
    main()
