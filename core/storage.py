"""The interface a storage sink implements: content-addressed, immutable audio files."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class StorageSink(Protocol):
    """Made by a factory registered with ``segue_register_storage_sinks``.

    ``factory(config: dict, state_dir: Path) -> StorageSink``. Files are named
    ``<id>.<ext>``; ``put`` is atomic (a reader never sees a partial file) and checks
    the SHA-256 of what it wrote.
    """

    name: str

    async def put(self, filename: str, src: Path, sha256: str) -> None: ...

    def exists(self, filename: str) -> bool: ...

    def local_path(self, filename: str) -> Path | None:
        """A local file to serve, or None when the sink is remote."""
        ...

    async def open(self, filename: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start..end`` (end exclusive) of a stored file."""
        ...

    def list(self) -> list[str]:
        """Every stored filename."""
        ...
