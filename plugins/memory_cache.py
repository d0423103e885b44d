"""The ``memory`` cache backend: a dict in this process (tests, throwaway servers).

Nothing survives the process, and its key locks are asyncio locks: they keep the tasks of
one process apart, not two processes (use ``disk`` or ``redis`` for that).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from segue.core import hookimpl
from segue.core.errors import ConfigError
from segue.core.locks import AsyncKeyLocks
from segue.core.track import Track


class MemoryCache:
    name = "memory"

    def __init__(self) -> None:
        self._tracks: dict[str, Track] = {}
        self._ledger: dict[str, float] = {}
        self._locks = AsyncKeyLocks()

    def get(self, key: str) -> Track | None:
        return self._tracks.get(key)

    def set(self, key: str, track: Track) -> None:
        self._tracks[key] = track

    def delete(self, key: str) -> None:
        self._tracks.pop(key, None)

    def tracks(self) -> list[Track]:
        return list(self._tracks.values())

    def record_cost(self, key: str, usd: float) -> None:
        self._ledger[key] = self._ledger.get(key, 0.0) + float(usd)

    def ledger(self) -> dict[str, float]:
        return dict(self._ledger)

    def lock(self, key: str, timeout_s: float | None = None) -> AbstractAsyncContextManager[None]:
        return self._locks(key, timeout_s)

    def close(self) -> None:
        pass


def make_memory_cache(config: dict[str, Any], state_dir: Path) -> MemoryCache:
    if config:
        raise ConfigError(f"cache memory: unknown option(s) {', '.join(sorted(config))}")
    return MemoryCache()


@hookimpl
def segue_register_cache_backends(register: Any) -> None:
    register("memory", make_memory_cache)
