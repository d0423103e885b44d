"""The ``disk`` cache backend (the default): diskcache under ``.segue/cache``.

Tracks are kept as JSON-able dicts under ``track:<key>``, the ledger as integer
micro-dollars under ``spent:<key>`` (``incr`` is atomic across processes, floats are not).
``get`` is one SQLite read in this thread, tens of microseconds: no thread hop, no server.
Key locks are file locks in ``.segue/locks/`` that the kernel drops when a process dies.

Options: ``path`` (default ``.segue/cache``, relative to the state folder's parent, i.e.
the score's folder), ``locks`` (default ``.segue/locks``).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import diskcache

from segue.core import hookimpl
from segue.core.errors import ConfigError
from segue.core.locks import FileKeyLock
from segue.core.registry import unknown_options
from segue.core.track import Track

_TRACK = "track:"
_SPENT = "spent:"
_MICRO = 1_000_000


class DiskCache:
    name = "disk"

    def __init__(self, path: Path, lock_dir: Path) -> None:
        self.path = Path(path)
        # No eviction: losing a ledger entry would lose track of money spent.
        self._db = diskcache.Cache(str(self.path), eviction_policy="none", size_limit=2**40)
        self._locks = FileKeyLock(lock_dir)

    def get(self, key: str) -> Track | None:
        data = self._db.get(_TRACK + key)
        if data is None:
            return None
        return Track.from_dict(data)

    def set(self, key: str, track: Track) -> None:
        data = track.to_dict()
        self._db.set(_TRACK + key, data)

    def delete(self, key: str) -> None:
        self._db.delete(_TRACK + key)

    def tracks(self) -> list[Track]:
        out = []
        for k in list(self._db.iterkeys()):
            if isinstance(k, str) and k.startswith(_TRACK):
                data = self._db.get(k)
                if data is not None:
                    out.append(Track.from_dict(data))
        return out

    def record_cost(self, key: str, usd: float) -> None:
        self._db.incr(_SPENT + key, round(float(usd) * _MICRO), default=0)

    def ledger(self) -> dict[str, float]:
        out = {}
        for k in list(self._db.iterkeys()):
            if isinstance(k, str) and k.startswith(_SPENT):
                micro = self._db.get(k)
                if micro is not None:
                    out[k[len(_SPENT) :]] = micro / _MICRO
        return out

    def lock(self, key: str, timeout_s: float | None = None) -> AbstractAsyncContextManager[None]:
        return self._locks(key, timeout_s)

    def close(self) -> None:
        self._db.close()


def _resolve(value: Any, base: Path, option: str) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigError(f"cache disk: {option} must be a path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def make_disk_cache(config: dict[str, Any], state_dir: Path) -> DiskCache:
    unknown = set(config) - {"path", "locks"}
    if unknown:
        raise ConfigError(f"cache disk: {unknown_options(unknown, ('path', 'locks'))}")
    base = Path(state_dir).parent  # paths in the score are relative to the score's folder
    path = _resolve(config["path"], base, "path") if "path" in config else state_dir / "cache"
    locks = _resolve(config["locks"], base, "locks") if "locks" in config else state_dir / "locks"
    return DiskCache(path, locks)


@hookimpl
def segue_register_cache_backends(register: Any) -> None:
    register("disk", make_disk_cache)
