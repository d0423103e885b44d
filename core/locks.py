"""Per-key locks for cache backends: one generator per cache key at a time.

``Cache.lock(key, timeout_s)`` returns an async context manager. ``timeout_s=None`` waits
as long as it takes, ``0`` tries once; when the lock is not had in time it raises
``LockTimeout`` (a ``TimeoutError``, which is what callers should catch, so that third-party
backends raising the builtin work too).

The disk backend uses :class:`FileKeyLock`: an OS file lock (``flock``, or ``filelock`` where
there is no ``flock``)
that the kernel releases when its process dies, even by SIGKILL, so a crashed pregen never
leaves a key locked. Waiting polls without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import filelock

try:
    import fcntl
except ImportError:  # Windows: filelock's portable locks
    fcntl = None  # type: ignore[assignment]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class LockTimeout(TimeoutError):
    """The key lock was not acquired within the timeout."""


def lock_filename(key: str) -> str:
    """A file name for ``key`` (cache keys are hex already; anything else is made safe)."""
    return _SAFE.sub("_", key)[:200] + ".lock"


class FileKeyLock:
    """Async-friendly exclusive file locks, one file per key under ``folder``.

    Exclusive across processes and, since every acquisition opens its own file
    description, between tasks of one process too.
    """

    def __init__(self, folder: Path, poll_s: float = 0.02, max_poll_s: float = 0.25) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s

    def path(self, key: str) -> Path:
        return self.folder / lock_filename(key)

    @asynccontextmanager
    async def __call__(self, key: str, timeout_s: float | None = None) -> AsyncIterator[None]:
        lock = _OsLock(self.path(key))
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay = self.poll_s
        while not lock.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(f"key {key[:16]} is locked by another worker")
            # Back off a little while someone else works on the key: polling is cheap, but
            # there is no point spinning through a generation that takes minutes.
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.max_poll_s)
        try:
            yield
        finally:
            lock.release()


class _OsLock:
    """One non-blocking exclusive lock on a file: ``flock`` where there is one, else filelock.

    ``flock`` directly costs a few microseconds; filelock's portable machinery costs
    milliseconds, which matters on the event loop when hundreds of keys go through.
    The lock file is never deleted (deleting it would let two holders lock two inodes).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._fallback: filelock.BaseFileLock | None = None

    def try_acquire(self) -> bool:
        if fcntl is None:
            if self._fallback is None:
                self._fallback = filelock.FileLock(str(self.path), timeout=0)
            try:
                self._fallback.acquire(timeout=0)
                return True
            except filelock.Timeout:
                return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fallback is not None:
            self._fallback.release()
            return
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


class AsyncKeyLocks:
    """In-process per-key locks (the memory backend): asyncio locks, made on demand."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def __call__(self, key: str, timeout_s: float | None = None) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            if timeout_s is not None and timeout_s <= 0:
                if lock.locked():
                    raise LockTimeout(f"key {key[:16]} is locked by another task")
                await lock.acquire()
            else:
                try:
                    async with asyncio.timeout(timeout_s):
                        await lock.acquire()
                except TimeoutError:
                    raise LockTimeout(f"key {key[:16]} is locked by another task") from None
            try:
                yield
            finally:
                lock.release()
        finally:
            self._users[key] -= 1
            if not self._users[key]:  # nobody holds or waits: forget it
                del self._users[key]
                self._locks.pop(key, None)
