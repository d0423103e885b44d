"""The ``redis`` cache backend: tracks, ledger and key locks in Redis (several servers, one cache).

Score: ``cache: {backend: redis, url: redis://host:6379/0, prefix: segue, lock_ttl_s: 30}``.

- Tracks are JSON in the hash ``<prefix>:tracks``; the ledger is integer micro-dollars in
  ``<prefix>:ledger`` (``HINCRBY`` is atomic across processes, float increments drift).
- ``get`` is on the serving path, so it is answered from a local read-through copy: a miss
  costs one ``HGET``, then the answer (found or not) is kept until a ``set``/``delete``
  anywhere publishes ``"<instance id> <key>"`` on ``<prefix>:invalidate``. A thread
  listens to that channel; while it is not subscribed (at start, after a lost connection)
  nothing is kept, so every ``get`` is one round trip and never stale.
- Key locks are Redis locks with a random token and an expiry (``lock_ttl_s``) renewed
  every third of it while held, so a holder that dies frees its keys within the TTL, and a
  holder whose lock expired cannot release someone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from segue.core import hookimpl
from segue.core.errors import ConfigError
from segue.core.locks import LockTimeout
from segue.core.track import Track

log = logging.getLogger("segue.redis_cache")

_MICRO = 1_000_000
_MISSING = object()


class RedisCache:
    name = "redis"

    def __init__(self, url: str, prefix: str = "segue", lock_ttl_s: float = 30.0) -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self.lock_ttl_s = lock_ttl_s
        self._redis_mod = redis
        self._r = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        try:
            self._r.ping()
        except redis.RedisError as exc:
            raise ConfigError(f"cache redis: cannot reach {self._safe_url()}: {exc}") from None
        self._tracks_key = f"{prefix}:tracks"
        self._ledger_key = f"{prefix}:ledger"
        self._channel = f"{prefix}:invalidate"
        self._id = uuid.uuid4().hex  # tells our own invalidations from others'
        self._mutex = threading.Lock()
        self._local: dict[str, Any] = {}  # key -> Track, or None for "not recorded"
        self._live = False  # subscribed: the local copy may be used
        self._seq = 0  # bumped on every invalidation (and on (re)subscription)
        self._closed = threading.Event()
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="segue-redis-inval", daemon=True)
        self._thread.start()
        self._subscribed.wait(5.0)

    def _safe_url(self) -> str:
        # Never print a password.
        _head, sep, tail = self.url.rpartition("@")
        return ("redis://…@" + tail) if sep else self.url

    # --- the invalidation listener --------------------------------------------------------

    def _listen(self) -> None:
        redis = self._redis_mod
        while not self._closed.is_set():
            pubsub = None
            try:
                pubsub = self._r.pubsub()
                pubsub.subscribe(self._channel)
                while not self._closed.is_set():
                    msg = pubsub.get_message(timeout=0.2)
                    if msg is None:
                        continue
                    if msg["type"] == "subscribe":
                        with self._mutex:
                            # What we kept before may have missed messages: start afresh.
                            self._local.clear()
                            self._seq += 1
                            self._live = True
                        self._subscribed.set()
                    elif msg["type"] == "message":
                        data = msg["data"]
                        text = data.decode() if isinstance(data, bytes) else str(data)
                        sender, _, key = text.partition(" ")
                        if sender == self._id:
                            continue  # our own change: already dropped when it was made
                        with self._mutex:
                            self._local.pop(key, None)
                            self._seq += 1
            except (redis.RedisError, OSError, ValueError) as exc:
                if not self._closed.is_set():
                    log.warning("redis invalidation channel lost (%s); reconnecting", exc)
            finally:
                with self._mutex:
                    self._live = False
                    self._local.clear()
                    self._seq += 1
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
            self._closed.wait(0.5)

    def _invalidate(self, key: str) -> None:
        with self._mutex:
            self._local.pop(key, None)
            self._seq += 1
        self._r.publish(self._channel, f"{self._id} {key}")

    # --- Cache ------------------------------------------------------------------------------

    def get(self, key: str) -> Track | None:
        with self._mutex:
            if self._live:
                found = self._local.get(key, _MISSING)
                if found is not _MISSING:
                    return found
            seq = self._seq
        raw = self._r.hget(self._tracks_key, key)
        track = None if raw is None else Track.from_dict(json.loads(raw))
        with self._mutex:
            # Keep it only if nothing was invalidated while we asked.
            if self._live and self._seq == seq:
                self._local[key] = track
        return track

    def set(self, key: str, track: Track) -> None:
        self._r.hset(self._tracks_key, key, json.dumps(track.to_dict()))
        self._invalidate(key)

    def delete(self, key: str) -> None:
        self._r.hdel(self._tracks_key, key)
        self._invalidate(key)

    def tracks(self) -> list[Track]:
        return [Track.from_dict(json.loads(v)) for v in self._r.hvals(self._tracks_key)]

    def record_cost(self, key: str, usd: float) -> None:
        self._r.hincrby(self._ledger_key, key, round(float(usd) * _MICRO))

    def ledger(self) -> dict[str, float]:
        return {k.decode(): int(v) / _MICRO for k, v in self._r.hgetall(self._ledger_key).items()}

    def lock(self, key: str, timeout_s: float | None = None) -> AbstractAsyncContextManager[None]:
        return self._lock(key, timeout_s)

    @asynccontextmanager
    async def _lock(self, key: str, timeout_s: float | None) -> AsyncIterator[None]:
        import redis.asyncio as aioredis
        from redis.exceptions import LockError

        # A client per acquisition: locks last a generation (seconds to minutes), and a
        # client bound to no particular event loop keeps this usable from any loop.
        client = aioredis.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=5)
        lock = client.lock(
            f"{self.prefix}:lock:{key}",
            timeout=self.lock_ttl_s,
            sleep=0.05,
            blocking=not (timeout_s is not None and timeout_s <= 0),
            blocking_timeout=timeout_s,
            thread_local=False,
        )
        renewer: asyncio.Task[None] | None = None
        try:
            if not await lock.acquire():
                raise LockTimeout(f"key {key[:16]} is locked by another worker")
            renewer = asyncio.get_running_loop().create_task(self._renew(lock, key))
            yield
        finally:
            if renewer is not None:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                try:
                    await lock.release()
                except LockError as exc:  # expired and perhaps taken: not ours to delete
                    log.warning("redis lock for %s was lost before release: %s", key[:12], exc)
            await client.aclose()

    async def _renew(self, lock: Any, key: str) -> None:
        from redis.exceptions import LockError, RedisError

        while True:
            await asyncio.sleep(self.lock_ttl_s / 3)
            try:
                await lock.reacquire()
            except (LockError, RedisError) as exc:
                log.warning("could not renew the redis lock for %s: %s", key[:12], exc)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self._r.close()


def make_redis_cache(config: dict[str, Any], state_dir: Path) -> RedisCache:
    unknown = set(config) - {"url", "prefix", "lock_ttl_s"}
    if unknown:
        raise ConfigError(f"cache redis: unknown option(s) {', '.join(sorted(unknown))}")
    url = config.get("url", "redis://localhost:6379/0")
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("cache redis: url must be redis://, rediss:// or unix://")
    prefix = config.get("prefix", "segue")
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError("cache redis: prefix must be a non-empty string")
    ttl = config.get("lock_ttl_s", 30.0)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise ConfigError("cache redis: lock_ttl_s must be a positive number")
    try:
        import redis  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError(
            "cache redis: the redis package is not installed (pip install 'segue[redis]')"
        ) from None
    return RedisCache(url, prefix, float(ttl))


@hookimpl
def segue_register_cache_backends(register: Any) -> None:
    register("redis", make_redis_cache)
