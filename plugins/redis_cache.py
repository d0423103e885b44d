"""The ``redis`` cache backend: tracks, ledger and key locks in Redis (several servers, one cache).

Score: ``cache: {backend: redis, url: redis://host:6379/0, prefix: segue, lock_ttl_s: 30,
timeout_s: 5}`` (``timeout_s``: a command not answered by then counts as Redis unreachable).

- Tracks are JSON in the hash ``<prefix>:tracks``; the ledger is integer micro-dollars in
  ``<prefix>:ledger`` (``HINCRBY`` is atomic across processes, float increments drift).
- Nothing on the serving path waits for Redis. ``get``, ``tracks`` and ``ledger`` are
  answered from a local mirror: a thread subscribed to ``<prefix>:invalidate`` loads the
  whole track hash and ledger when it (re)subscribes and re-reads a key whenever another
  process publishes ``"<instance id> <key>"`` for it. An unknown id costs a dictionary
  lookup (no negative cache to grow), and tracks already known are served while Redis is
  down or hung.
- Writes (``set``, ``delete``, ``record_cost``) apply to the mirror at once, are appended
  to a journal under ``<state dir>/redis-outbox/`` and are sent by a writer thread. Money
  spent and tracks stored while Redis is unreachable are therefore never lost: they are
  sent when it is back, and a journal left by a process that died is replayed by the next
  one. Cost entries carry an id, so a replay never counts one twice.
- Key locks are Redis locks with a random token and an expiry (``lock_ttl_s``) renewed
  every third of it while held, so a holder that dies frees its keys within the TTL, and a
  holder whose lock expired cannot release someone else's. Taking a lock re-reads the key
  from Redis, and releasing it waits (briefly) until this process's writes to that key
  have reached Redis, so the next holder sees what this one stored. A lock that cannot be
  had because Redis is unreachable is a ``TransientError``: nothing is generated (or paid
  for) without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from segue.core import hookimpl
from segue.core.errors import ConfigError, TransientError
from segue.core.files import writer_gone
from segue.core.locks import LockTimeout
from segue.core.track import Track

log = logging.getLogger("segue.redis_cache")

_MICRO = 1_000_000
_LEDGER = "\x00ledger"  # the invalidation message's key for "the ledger changed"
# A cost entry counts once however often it is sent: its id is remembered for 30 days.
_COST_SCRIPT = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', 2592000) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
end
return 1
"""
_RETRY_S = 0.5  # the writer's pause after a failed send
RELEASE_WAIT_S = 5.0  # how long releasing a lock waits for this process's writes to land
_LIVE: set[str] = set()  # ids of this process's open instances (their journals are theirs)


def _on_event_loop() -> bool:
    """Whether the calling thread runs an event loop (then nothing may block on Redis)."""
    return asyncio._get_running_loop() is not None


class RedisCache:
    name = "redis"

    def __init__(
        self,
        url: str,
        prefix: str = "segue",
        lock_ttl_s: float = 30.0,
        state_dir: Path | None = None,
        socket_timeout_s: float = 5.0,
    ) -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self.lock_ttl_s = lock_ttl_s
        self._redis_mod = redis
        self._socket_timeout_s = socket_timeout_s
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # The threads retry on their own schedule: no backoff inside redis-py.
        self._r = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=min(2.0, socket_timeout_s),
            retry=Retry(NoBackoff(), 1),
        )
        try:
            self._r.ping()
        except redis.RedisError as exc:
            raise ConfigError(f"cache redis: cannot reach {self._safe_url()}: {exc}") from None
        self._tracks_key = f"{prefix}:tracks"
        self._ledger_key = f"{prefix}:ledger"
        self._channel = f"{prefix}:invalidate"
        self._cost_script = self._r.register_script(_COST_SCRIPT)
        self._id = uuid.uuid4().hex  # tells our own invalidations from others'
        self._mutex = threading.Lock()
        self._wake = threading.Condition(self._mutex)
        self._mirror: dict[str, Track] = {}  # every track in Redis (as last seen) + ours
        self._loaded = False  # the mirror holds the whole hash (else a get asks Redis)
        self._ledger: dict[str, int] = {}  # micro-dollars, as last read from Redis
        self._outbox: list[dict[str, Any]] = []  # writes not yet sent, in order
        self._unread: list[dict[str, Any]] = []  # cost entries sent since the ledger read
        self._refresh_ledger = True
        self._live = False  # subscribed to the invalidation channel
        self._down = False  # an outage was logged (and not yet its end)
        self._closed = threading.Event()
        self._ready = threading.Event()
        self._journal = self._open_journal(state_dir)
        _LIVE.add(self._id[:12])
        self._listener = threading.Thread(
            target=self._listen, name="segue-redis-inval", daemon=True
        )
        self._writer = threading.Thread(target=self._write, name="segue-redis-write", daemon=True)
        self._listener.start()
        self._writer.start()
        # Start with the mirror and the ledger loaded (a command reads them at once).
        deadline = time.monotonic() + 5.0
        if self._ready.wait(5.0):
            with self._mutex:
                while self._refresh_ledger and time.monotonic() < deadline:
                    self._wake.wait(max(0.0, deadline - time.monotonic()))

    def _safe_url(self) -> str:
        # Never print a password.
        _head, sep, tail = self.url.rpartition("@")
        return ("redis://…@" + tail) if sep else self.url

    # --- the journal: writes not yet in Redis survive the process ---------------------------

    def _open_journal(self, state_dir: Path | None) -> Path | None:
        if state_dir is None:
            return None
        folder = Path(state_dir) / "redis-outbox"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning(
                "redis outbox: cannot create %s (%s); writes are kept in memory", folder, exc
            )
            return None
        own = folder / f"{os.getpid()}-{self._id[:12]}.jsonl"
        # Adopt the journals of processes that are gone: their writes are sent by us.
        for path in sorted(folder.glob("*.jsonl")):
            pid_text, _, rest = path.name.partition("-")
            if not pid_text.isdigit():
                continue
            if int(pid_text) == os.getpid():
                if rest.removesuffix(".jsonl") in _LIVE:
                    continue  # another instance in this process: alive
            elif not writer_gone(path, int(pid_text)):
                continue
            try:
                ops = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            except (OSError, ValueError) as exc:
                log.warning("redis outbox: cannot read %s (%s)", path, exc)
                continue
            if ops:
                log.info("redis outbox: %d write(s) left by a previous run, sending them", len(ops))
            for op in ops:
                self._apply_local(op)
                self._outbox.append(op)
            with contextlib.suppress(OSError):
                path.unlink()
        return own

    def _save_journal(self) -> None:
        """Rewrite this process's journal with the writes not yet sent (mutex held)."""
        path = self._journal
        if path is None:
            return
        try:
            if not self._outbox:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                return
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                for op in self._outbox:
                    f.write(json.dumps(op) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("redis outbox: cannot write %s (%s)", path, exc)

    def _apply_local(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "set":
            self._mirror[op["key"]] = Track.from_dict(op["track"])
        elif kind == "del":
            self._mirror.pop(op["key"], None)

    def _queue(self, op: dict[str, Any]) -> None:
        with self._mutex:
            self._apply_local(op)
            self._outbox.append(op)
            self._save_journal()
            self._wake.notify_all()

    # --- the invalidation listener ----------------------------------------------------------

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
                        # What we had may have missed messages: load everything afresh.
                        self._load()
                        self._ready.set()
                        self._recovered()
                    elif msg["type"] == "message":
                        data = msg["data"]
                        text = data.decode() if isinstance(data, bytes) else str(data)
                        sender, _, key = text.partition(" ")
                        if sender != self._id:
                            self._reload(key)
            except (redis.RedisError, OSError, ValueError) as exc:
                if not self._closed.is_set():
                    self._outage("invalidation channel lost", exc)
            finally:
                with self._mutex:
                    self._live = False
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
            self._closed.wait(_RETRY_S)

    def _load(self) -> None:
        raw = self._r.hgetall(self._tracks_key)
        mirror = {k.decode(): Track.from_dict(json.loads(v)) for k, v in raw.items()}
        with self._mutex:
            for op in self._outbox:  # our writes not sent yet stay on top
                if op["op"] == "set":
                    mirror[op["key"]] = Track.from_dict(op["track"])
                elif op["op"] == "del":
                    mirror.pop(op["key"], None)
            self._mirror = mirror
            self._loaded = True
            self._live = True
            self._refresh_ledger = True
            self._wake.notify_all()

    def _reload(self, key: str) -> None:
        if key == _LEDGER:
            with self._mutex:
                self._refresh_ledger = True
                self._wake.notify_all()
            return
        raw = self._r.hget(self._tracks_key, key)
        track = None if raw is None else Track.from_dict(json.loads(raw))
        with self._mutex:
            if any(op.get("key") == key for op in self._outbox):
                return  # our own newer write wins until it is sent
            if track is None:
                self._mirror.pop(key, None)
            else:
                self._mirror[key] = track

    # --- the writer -------------------------------------------------------------------------

    def _write(self) -> None:
        redis = self._redis_mod
        while True:
            with self._mutex:
                while not self._outbox and not self._refresh_ledger:
                    if self._closed.is_set():
                        return
                    self._wake.wait(0.5)
                op = self._outbox[0] if self._outbox else None
                refresh = self._refresh_ledger
            try:
                if op is not None:
                    self._send(op)
                    with self._mutex:
                        self._outbox.pop(0)
                        if op["op"] == "cost":
                            self._unread.append(op)
                        self._save_journal()
                        self._wake.notify_all()
                    continue
                if refresh:
                    with self._mutex:
                        self._refresh_ledger = False
                        unread = len(self._unread)
                    raw = self._r.hgetall(self._ledger_key)
                    with self._mutex:
                        # The entries sent before this read are in it now.
                        self._ledger = {k.decode(): int(v) for k, v in raw.items()}
                        del self._unread[:unread]
                        self._wake.notify_all()
            except (redis.RedisError, OSError) as exc:
                if refresh:
                    with self._mutex:
                        self._refresh_ledger = True
                if self._closed.is_set():
                    return
                self._outage("write failed", exc)
                self._closed.wait(_RETRY_S)

    def _send(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        key = op["key"]
        if kind == "set":
            self._r.hset(self._tracks_key, key, json.dumps(op["track"]))
        elif kind == "del":
            self._r.hdel(self._tracks_key, key)
        elif kind == "cost":
            self._cost_script(
                keys=[self._ledger_key, f"{self.prefix}:cost:{op['id']}"],
                args=[key, op["micro"]],
            )
            with self._mutex:
                self._refresh_ledger = True
            key = _LEDGER
        self._r.publish(self._channel, f"{self._id} {key}")

    def _outage(self, what: str, exc: Exception) -> None:
        """Log an outage once (retries every half second would flood the log)."""
        if self._down:
            log.debug("redis still unreachable: %s (%s)", what, exc)
            return
        self._down = True
        log.warning(
            "redis %s unreachable: %s (%s); serving known tracks, keeping writes until it is back",
            self._safe_url(),
            what,
            exc,
        )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("redis %s reachable again", self._safe_url())

    def _wait_sent(self, match: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        """Block until no queued write matches ``match`` (False if ``timeout`` ran out)."""
        deadline = time.monotonic() + timeout
        with self._mutex:
            while any(match(op) for op in self._outbox):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
        return True

    def pending_writes(self) -> int:
        """Writes not yet in Redis (sent when it is reachable; kept in the journal)."""
        with self._mutex:
            return len(self._outbox)

    # --- Cache ------------------------------------------------------------------------------

    def get(self, key: str) -> Track | None:
        if self._loaded:
            return self._mirror.get(key)
        # The mirror has never been loaded (Redis was slow at start): ask, except on an
        # event loop, which must never wait for Redis.
        if _on_event_loop():
            return self._mirror.get(key)
        try:
            raw = self._r.hget(self._tracks_key, key)
        except self._redis_mod.RedisError:
            return self._mirror.get(key)
        return None if raw is None else Track.from_dict(json.loads(raw))

    def set(self, key: str, track: Track) -> None:
        self._queue({"op": "set", "key": key, "track": track.to_dict()})

    def delete(self, key: str) -> None:
        self._queue({"op": "del", "key": key})

    def tracks(self) -> list[Track]:
        if not self._loaded and not _on_event_loop():
            with contextlib.suppress(self._redis_mod.RedisError):
                return [Track.from_dict(json.loads(v)) for v in self._r.hvals(self._tracks_key)]
        with self._mutex:
            return list(self._mirror.values())

    def record_cost(self, key: str, usd: float) -> None:
        micro = round(float(usd) * _MICRO)
        self._queue({"op": "cost", "key": key, "micro": micro, "id": uuid.uuid4().hex})

    def ledger(self) -> dict[str, float]:
        with self._mutex:
            micro = dict(self._ledger)
            for op in (*self._unread, *self._outbox):
                if op["op"] == "cost":
                    micro[op["key"]] = micro.get(op["key"], 0) + int(op["micro"])
        return {k: v / _MICRO for k, v in micro.items()}

    def lock(self, key: str, timeout_s: float | None = None) -> AbstractAsyncContextManager[None]:
        return self._lock(key, timeout_s)

    @asynccontextmanager
    async def _lock(self, key: str, timeout_s: float | None) -> AsyncIterator[None]:
        import redis.asyncio as aioredis
        from redis.exceptions import LockError, RedisError

        # A client per acquisition: locks last a generation (seconds to minutes), and a
        # client bound to no particular event loop keeps this usable from any loop.
        timeout = self._socket_timeout_s
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # One quick retry: redis-py's default backs off for seconds per command, and an
        # unreachable Redis must fail the lock at once (nothing is generated without it).
        client = aioredis.Redis.from_url(
            self.url,
            socket_timeout=timeout,
            socket_connect_timeout=min(2.0, timeout),
            retry=Retry(NoBackoff(), 1),
        )
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
            try:
                if not await lock.acquire():
                    raise LockTimeout(f"key {key[:16]} is locked by another worker")
                # The previous holder may have stored it: see what Redis has now.
                raw = await client.hget(self._tracks_key, key)
            except RedisError as exc:
                raise TransientError(
                    f"redis unreachable, cannot take the lock for {key[:12]}: {exc}"
                ) from None
            with self._mutex:
                if not any(op.get("key") == key for op in self._outbox):
                    if raw is None:
                        self._mirror.pop(key, None)
                    else:
                        self._mirror[key] = Track.from_dict(json.loads(raw))
            renewer = asyncio.get_running_loop().create_task(self._renew(lock, key))
            yield
        finally:
            if renewer is not None:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                # The next holder must see what we stored under this key.
                await asyncio.to_thread(
                    self._wait_sent,
                    lambda op: op.get("key") == key,
                    min(RELEASE_WAIT_S, 2 * self._socket_timeout_s),
                )
                try:
                    await lock.release()
                except LockError as exc:  # expired and perhaps taken: not ours to delete
                    log.warning("redis lock for %s was lost before release: %s", key[:12], exc)
                except RedisError as exc:  # unreachable: it expires by itself
                    log.warning("redis lock for %s not released (%s); it expires", key[:12], exc)
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _renew(self, lock: Any, key: str) -> None:
        from redis.exceptions import LockError, RedisError

        while True:
            await asyncio.sleep(self.lock_ttl_s / 3)
            try:
                await lock.reacquire()
            except (LockError, RedisError) as exc:
                log.warning("could not renew the redis lock for %s: %s", key[:12], exc)

    def close(self, flush_timeout_s: float | None = None) -> None:
        """Send what is queued (up to ``flush_timeout_s``, by default twice ``timeout_s``;
        the rest stays in the journal for the next run), then stop the threads."""
        if flush_timeout_s is None:
            flush_timeout_s = 2 * self._socket_timeout_s
        if not self._wait_sent(lambda op: True, flush_timeout_s):
            log.warning(
                "redis unreachable: %d write(s) kept in %s for the next run",
                self.pending_writes(),
                self._journal,
            )
        self._closed.set()
        with self._mutex:
            self._wake.notify_all()
        self._listener.join(timeout=2)
        self._writer.join(timeout=2)
        self._r.close()
        _LIVE.discard(self._id[:12])


def make_redis_cache(config: dict[str, Any], state_dir: Path) -> RedisCache:
    unknown = set(config) - {"url", "prefix", "lock_ttl_s", "timeout_s"}
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
    timeout = config.get("timeout_s", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError("cache redis: timeout_s must be a positive number")
    try:
        import redis  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError(
            "cache redis: the redis package is not installed (pip install 'segue[redis]')"
        ) from None
    return RedisCache(url, prefix, float(ttl), state_dir, float(timeout))


@hookimpl
def segue_register_cache_backends(register: Any) -> None:
    register("redis", make_redis_cache)
