"""Storage sinks and replicas: the score's sinks, and a finished file fanned out to them.

The first sink is the primary: a track is served from it, and failing to store there
fails the request. The others are replicas: a replica that fails is logged and noted in
``track.extra["replica_errors"]``, and a replica added to the score later is filled from
the primary on the next run, without generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from segue.core.cache import Cache
from segue.core.errors import GenerationError, PermanentError, StorageError, error_line
from segue.core.plugins import Plugins
from segue.core.pregen.planning import SINK_METHODS, instantiate
from segue.core.score import PluginChoice, Score
from segue.core.storage import StorageSink
from segue.core.track import Track

log = logging.getLogger("segue.pipeline")

SINK_PUT_ATTEMPTS = 3

__all__ = [
    "DISK_ERRNOS",
    "SINK_PUT_ATTEMPTS",
    "backfill_replicas",
    "build_sinks",
    "close_sinks",
    "put_all",
    "refresh_sink",
    "storage_problem",
    "track_present",
    "with_public_url",
]


def build_sinks(score: Score, plugins: Plugins) -> list[StorageSink]:
    """The primary sink first, then the replicas."""
    choices = list(score.storage) or [PluginChoice("local")]
    sinks = []
    for i, choice in enumerate(choices):
        label = "storage" if len(choices) == 1 else f"storage[{i}]"
        sinks.append(instantiate(score, plugins.sinks, choice, SINK_METHODS, label))
    return sinks


def track_present(sink: StorageSink, track: Track) -> bool:
    """Is ``track``'s file in ``sink`` (with the recorded size, when the sink is local)?"""
    path = sink.local_path(track.filename)
    if path is not None:
        try:
            size = os.stat(path).st_size
        except OSError:
            return False
        # A size mismatch means the file is not the one recorded: regenerate.
        return not track.bytes or size == track.bytes
    return sink.exists(track.filename)


async def refresh_sink(sink: StorageSink, filename: str) -> None:
    """Let a remote sink look ``filename`` up (another server may have stored it).

    Sinks whose ``exists`` answers from the storage itself (local folders) have no
    ``refresh``; remote ones answer ``exists`` from what they know, and learn here.
    """
    refresh = getattr(sink, "refresh", None)
    if refresh is not None:
        try:
            await refresh(filename)
        except GenerationError as exc:  # the put that follows fails, or works, and says so
            log.warning("storage %s: cannot look up %s: %s", sink.name, filename, exc)


def with_public_url(sink: StorageSink, track: Track) -> Track:
    """``track`` with the URLs clients fetch it and its stems from, when the sink serves
    them elsewhere (a CDN, presigned URLs); the cached Track keeps the server's routes."""
    public_url = getattr(sink, "public_url", None)
    if public_url is None:
        return track
    changes: dict[str, Any] = {}
    url = public_url(track.filename)
    if url and url != track.public_url:
        changes["public_url"] = url
    if track.stems:
        stems = dict(track.stems)
        for name, stem in track.stems.items():
            stem_url = public_url(track.stem_filename(name))
            if stem_url and stem_url != stem.get("url"):
                stems[name] = {**stem, "url": stem_url}
        if stems != track.stems:
            changes["stems"] = stems
    return track.replace(**changes) if changes else track


async def put_all(sinks: list[StorageSink], track: Track, path: Path) -> None:
    """Primary first (its failure fails the request), then replicas (logged, recorded)."""
    await _put(sinks[0], track, path)
    problems = []
    for sink in sinks[1:]:
        try:
            await _put(sink, track, path)
        except Exception as exc:
            log.warning("replica %s failed for %s: %s", sink.name, track.filename, exc)
            problems.append(f"{sink.name}: {exc}")
    if problems:
        track.extra["replica_errors"] = problems


# Errors no retry can fix: the disk is full or refuses writes.
DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is too large for the disk or the process's limit",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "writing there is not allowed",
    errno.EPERM: "writing there is not allowed",
}


def storage_problem(exc: BaseException) -> str:
    """One line saying why storing failed (a full or read-only disk said plainly)."""
    if isinstance(exc, StorageError | GenerationError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{DISK_ERRNOS[exc.errno]}: {exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"


async def _put(sink: StorageSink, track: Track, path: Path) -> None:
    """Store in one sink. Its failure is a StorageError (permanent: the caller keeps the
    paid file and never generates it again); a full or read-only disk is not retried,
    access denied or no such bucket neither, anything else three times."""
    for attempt in range(1, SINK_PUT_ATTEMPTS + 1):
        try:
            await sink.put(track.filename, path, track.sha256)
            return
        except (OSError, GenerationError) as exc:
            permanent = isinstance(exc, PermanentError) or (
                isinstance(exc, OSError) and exc.errno in DISK_ERRNOS
            )
            if permanent or attempt == SINK_PUT_ATTEMPTS:
                raise StorageError(f"storage {sink.name}: {storage_problem(exc)}") from exc
            await asyncio.sleep(0.05 * 2**attempt)
        except Exception as exc:  # a bug in the sink's plugin: no retry fixes it; name it
            kind = type(sink)
            text = error_line(exc)
            raise StorageError(
                f"storage {sink.name} ({kind.__module__}.{kind.__qualname__}): put raised {text}"
            ) from exc


async def backfill_replicas(sinks: list[StorageSink], cache: Cache, keys: Iterable[str]) -> None:
    """Copy the stored tracks of ``keys`` to replicas that lack them (a replica added later)."""
    if len(sinks) < 2:
        return
    primary = sinks[0]
    for key in keys:
        track = cache.get(key)
        if track is None:
            continue
        src = primary.local_path(track.filename)
        if src is None:
            continue
        for sink in sinks[1:]:
            await refresh_sink(sink, track.filename)
            if not sink.exists(track.filename):
                try:
                    await sink.put(track.filename, src, track.sha256)
                except Exception as exc:
                    log.warning(
                        "replica %s backfill of %s failed: %s", sink.name, track.filename, exc
                    )


async def close_sinks(sinks: list[StorageSink]) -> None:
    """Close the sinks that have an ``aclose`` (it is optional); errors are not the caller's."""
    for sink in sinks:
        closer = getattr(sink, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
