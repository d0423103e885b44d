"""Finishing a generated track: decode once, post-process, encode once, verify once.

What the generator wrote (any format libsndfile reads) is decoded once into a
:class:`~segue.core.audio.TrackAudio` with the Track's metadata so far; the
``segue_process_track`` chain passes it from plugin to plugin in memory; the result is
encoded once to the request's format, hashed, and decoded once more to verify that what
will be stored plays. Output that does not decode (from the generator or the encoder) is
a transient failure: worth another generation, never stored.

Blocking CPU work: the pipeline runs :func:`finish` on a :func:`processing_pool`, through
:func:`in_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from segue.core import audio, memory
from segue.core.audio import TrackAudio
from segue.core.errors import GenerationError, PermanentError, PluginError, TransientError
from segue.core.generator import GeneratedAudio, Generator
from segue.core.plugins import Plugins
from segue.core.pregen.planning import PlannedRequest
from segue.core.track import FORMATS, Track

__all__ = [
    "decode_output",
    "finish",
    "first_track",
    "in_thread",
    "post_process",
    "processing_pool",
    "utc_now",
]

T = TypeVar("T")


def processing_pool() -> ThreadPoolExecutor:
    """Threads for finishing tracks: one per core.

    Decoding, post-processing and encoding are CPU work: more threads would not go
    faster, and would starve the event loop of the GIL, delaying the next generator calls
    (and, in the server, every client's messages).
    """
    return ThreadPoolExecutor(
        max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="segue-process"
    )


async def in_thread(fn: Callable[..., T], *args: Any, executor: Executor | None = None) -> T:
    """Run blocking work in a thread; on cancellation, let it finish before unwinding.

    The work writes into a folder that the caller removes when it unwinds, so it must not
    outlive the caller.
    """
    future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_output(path: Path) -> tuple[np.ndarray, int]:
    """Decode any supported file to float32 frames x channels; TransientError if corrupt.

    Corrupt output is worth another generation, so it maps to a transient failure.
    """
    try:
        return audio.read(path)
    except audio.AudioError as exc:
        raise TransientError(f"corrupt output: {exc}") from None


def first_track(
    planned: PlannedRequest, gen: GeneratedAudio, generator: Generator, duration_s: float
) -> Track:
    """The Track before post-processing: what the request and the generator say."""
    request = planned.request
    return Track(
        id=request.cache_key,
        mood=request.mood,
        variant=request.variant,
        format=request.output_format,
        duration_s=duration_s,
        # Unknown to the generator: beat_grid measures it (the request picks the octave).
        bpm=gen.bpm,
        beats_per_bar=gen.beats_per_bar or 4,
        first_beat_s=gen.first_beat_s or 0.0,
        loop=gen.loop if gen.loop is not None else not request.stinger,
        loop_start_s=gen.loop_start_s or 0.0,
        loop_end_s=gen.loop_end_s,
        generator=generator.name,
        model=gen.model or getattr(generator, "model", ""),
        prompt=request.prompt,
        cost_usd=float(gen.cost_usd or 0.0),
        created_at=utc_now(),
        extra={
            **gen.extra,
            "loudness_target": request.params.get("loudness_lufs"),
            "requested_bpm": request.bpm,
        },
    )


def post_process(plugins: Plugins, track_audio: TrackAudio) -> TrackAudio:
    """Run the ``segue_process_track`` chain; a failure is permanent and names its plugin."""
    try:
        return plugins.process_track(track_audio)
    except GenerationError:  # a plugin's own TransientError is retried, as documented
        raise
    except PluginError as exc:  # names the post-processor that failed
        raise PermanentError(f"post-processing failed: {exc}") from exc
    except Exception as exc:
        raise PermanentError(f"post-processing failed: {type(exc).__name__}: {exc}") from exc


def finish(
    plugins: Plugins,
    planned: PlannedRequest,
    gen: GeneratedAudio,
    generator: Generator,
    workdir: Path,
) -> tuple[Track, Path]:
    """Decode, post-process, encode, hash and verify; the encoded file is put in ``workdir``.

    Returns the finished Track (``sha256``, ``bytes`` and ``duration_s`` of the encoded
    file) and the file's path.
    """
    try:
        return _finish(plugins, planned, gen, generator, workdir)
    finally:
        audio.forget()  # the memo of this track's last encode and decode: not needed again
        memory.trim()  # what the track's arrays left in this thread's heap


def _finish(
    plugins: Plugins,
    planned: PlannedRequest,
    gen: GeneratedAudio,
    generator: Generator,
    workdir: Path,
) -> tuple[Track, Path]:
    request = planned.request
    fmt = request.output_format
    if fmt not in FORMATS:
        raise PermanentError(f"unknown output format {fmt!r}")
    samples, sr = decode_output(Path(gen.path))  # the one decode of the generator's output
    track = first_track(planned, gen, generator, samples.shape[0] / sr)
    stems = decode_stems(gen, samples, sr)
    before = TrackAudio(samples, sr, track, stems)
    done = post_process(plugins, before)
    done_stems = finished_stems(before, done)
    had_stems = bool(stems)
    del samples, before, stems  # the decoded input: only the chain's result is encoded
    processed = done.track
    if processed.bpm is None and request.bpm is not None:
        processed = processed.replace(bpm=request.bpm)  # nothing measured: trust the score
    name = f"{request.cache_key}.{fmt}"
    try:
        data = audio.encode(
            done.samples,
            done.rate,
            fmt,
            loop=bool(processed.loop),
            name=name,
            best=bool(done_stems),
        )
    except audio.AudioError as exc:
        raise TransientError(f"encoding failed: {exc}") from None
    # Verify what will be stored decodes (a broken encode is retried, never stored).
    try:
        frames, dsr = audio.decoded_length(data, name)
    except audio.AudioError as exc:
        raise TransientError(f"corrupt output: {exc}") from None
    out = workdir / name
    out.write_bytes(data)
    finished = processed.replace(
        id=request.cache_key,
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        duration_s=round(frames / dsr, 6),
    )
    if finished.loop_end_s is not None and finished.loop_end_s > finished.duration_s + 0.05:
        finished = finished.replace(loop_end_s=finished.duration_s)
    if done_stems:
        finished = finished.replace(
            stems=write_stems(done_stems, done.rate, fmt, finished, workdir, frames)
        )
    elif had_stems:
        extra = {
            **finished.extra,
            "stems_warning": "a post-processor changed the audio "
            "without applying the change to the stems: stems dropped",
        }
        finished = finished.replace(extra=extra)
    return finished, out


def decode_stems(gen: GeneratedAudio, mix: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """The generator's stems, decoded; each must match the mix's rate and shape."""
    stems = {}
    for name, path in gen.stems.items():
        x, rate = decode_output(Path(path))
        if rate != sr or x.shape != mix.shape:
            raise PermanentError(
                f"stem {name!r}: {x.shape[0]} frames at {rate} Hz, the mix {mix.shape[0]} at {sr}"
            )
        stems[name] = x
    return stems


def finished_stems(before: TrackAudio, done: TrackAudio) -> dict[str, np.ndarray]:
    """The stems after the chain: as the plugins left them, or following the mix's gain."""
    if not before.stems:
        return {}
    same = set(done.stems) == set(before.stems)
    if same and any(done.stems[k] is not before.stems[k] for k in before.stems):
        return dict(done.stems)  # a plugin applied its change to them (TrackAudio.apply)
    if done.samples is before.samples:
        return dict(before.stems)
    followed = audio.follow_gain(before.samples, done.samples, before.stems)
    return followed or {}


def write_stems(
    stems: dict[str, np.ndarray], sr: int, fmt: str, track: Track, workdir: Path, frames: int
) -> dict[str, dict[str, Any]]:
    """Encode each stem as the mix is encoded, verify it decodes to the mix's length."""
    out: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for k, (name, samples) in enumerate(stems.items()):
        # Storage names are [A-Za-z0-9_-] then the extension: a stem name's dots become _.
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
        if safe in used:
            safe = f"{safe}_{k}"
        used.add(safe)
        filename = f"{track.id}-{safe}.{fmt}"
        try:
            data = audio.encode(samples, sr, fmt, loop=bool(track.loop), name=filename, best=True)
            length, _ = audio.decoded_length(data, filename)
        except audio.AudioError as exc:
            raise TransientError(f"stem {name!r}: {exc}") from None
        if length != frames:
            raise TransientError(f"stem {name!r} decodes to {length} frames, not {frames}")
        (workdir / filename).write_bytes(data)
        out[name] = {
            "url": f"/tracks/{filename}",
            "file": filename,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    return out
