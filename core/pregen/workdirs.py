"""Work folders: one per generation attempt, under ``.segue/work/<pid>-<key>-<random>``.

A generator writes its output in its attempt's folder and finishing writes the encoded
file beside it; the folder is removed when the attempt ends, either way. A generator
working in a thread cannot be stopped when its attempt is cancelled and may re-create
files until that thread ends, so folders stay listed until :meth:`WorkFolders.remove_all`.
Folders of processes that are gone (killed mid-run) are removed at the next start.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from pathlib import Path

from segue.core.files import writer_gone

__all__ = ["WorkFolders"]


class WorkFolders:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        # Folders made here and not yet removed (see remove_all()).
        self._made: set[Path] = set()
        self._clean_stale()

    def new(self, key: str) -> Path:
        path = self.root / f"{os.getpid()}-{key[:16]}-{secrets.token_hex(4)}"
        path.mkdir(parents=True)
        self._made.add(path)
        return path

    def remove_now(self, path: Path, *, settled: bool) -> None:
        """Remove ``path``; ``settled``: nothing writes into it any more, so forget it."""
        shutil.rmtree(path, ignore_errors=True)
        if settled:
            self._made.discard(path)

    async def remove(self, path: Path) -> None:
        """Remove a settled folder off the event loop (unlinks can take milliseconds each)."""
        try:
            await asyncio.to_thread(shutil.rmtree, path, True)
        except asyncio.CancelledError:
            shutil.rmtree(path, ignore_errors=True)
            raise
        finally:
            self._made.discard(path)

    def remove_all(self) -> None:
        """Remove every folder made here that is still there.

        Call it once the threads generators may have left running are done (after
        ``asyncio.run`` returns, which waits for them), so that a command leaves no work.
        """
        for path in list(self._made):
            shutil.rmtree(path, ignore_errors=True)

    def _clean_stale(self) -> None:
        """Remove work folders left by processes that are gone (killed mid-run)."""
        for entry in self.root.iterdir():
            pid_text = entry.name.split("-", 1)[0]
            if pid_text.isdigit() and writer_gone(Path(entry), int(pid_text)):
                shutil.rmtree(entry, ignore_errors=True)
