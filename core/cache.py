"""The interface a cache backend implements: cache key -> Track, a cost ledger, key locks."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from segue.core.track import Track


@runtime_checkable
class Cache(Protocol):
    """Made by a factory registered with ``segue_register_cache_backends``.

    ``factory(config: dict, state_dir: Path) -> Cache``. ``get`` is on the serving path:
    it must be synchronous and cheap (no thread hop, no network round trip per call
    where the backend can avoid it), and never wait on a network service: a backend that
    is unreachable answers from what it knows.
    """

    name: str

    def get(self, key: str) -> Track | None: ...

    def set(self, key: str, track: Track) -> None: ...

    def delete(self, key: str) -> None: ...

    def tracks(self) -> list[Track]:
        """Every recorded track."""
        ...

    def record_cost(self, key: str, usd: float) -> None:
        """Add money spent on ``key`` to the ledger (spent even when the track failed)."""
        ...

    def ledger(self) -> dict[str, float]:
        """Money spent per cache key: this instance's costs at once, other instances'
        (sharing the backend) within moments."""
        ...

    def lock(self, key: str, timeout_s: float | None = None) -> AbstractAsyncContextManager[None]:
        """Exclusive across processes sharing this cache: one generator per key at a time.

        ``timeout_s=None`` waits as long as it takes, ``0`` tries once; a lock not had in
        time raises ``TimeoutError`` (``segue.core.locks.LockTimeout`` is one). A holder that
        dies must not keep the key locked (kernel file locks, expiring Redis locks).
        """
        ...

    def close(self) -> None: ...
