"""The ``local`` storage sink (the default): flat ``<id>.<ext>`` files in ``.segue/tracks``.

Writes are atomic and checked: the bytes go to ``.<name>.<pid>.tmp`` in the same folder,
are fsynced and hashed, and only a file whose SHA-256 matches is renamed into place (then
the folder is fsynced, so the rename survives a power cut). A reader therefore sees the
whole file or nothing. Temp files whose writer process is gone (killed mid-write; its pid
no longer runs, or now belongs to a process started after the write) are removed when a
sink is made, so once a command ends the folder holds only tracks.

Options: ``path`` (default ``.segue/tracks``; relative paths are from the score's folder).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from segue.core import hookimpl
from segue.core.errors import ConfigError, TransientError
from segue.core.files import writer_gone
from segue.core.registry import unknown_options

# <id>.<ext>: a hex id (or any safe name) and a known extension; nothing else is served.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}\.[a-z0-9]{1,8}$")
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")
_CHUNK = 1 << 20


class LocalSink:
    name = "local"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.removed_stale = self.remove_stale_temps()

    def remove_stale_temps(self) -> list[str]:
        """Delete dot-temp files whose writer pid is no longer running."""
        removed = []
        for entry in os.scandir(self.folder):
            match = _TEMP.match(entry.name)
            if match and writer_gone(Path(entry.path), int(match["pid"])):
                try:
                    os.unlink(entry.path)
                    removed.append(entry.name)
                except FileNotFoundError:
                    pass
        return removed

    def _path(self, filename: str) -> Path:
        if not _NAME.match(filename):
            raise ValueError(f"not a track file name: {filename!r}")
        return self.folder / filename

    async def put(self, filename: str, src: Path, sha256: str) -> None:
        await asyncio.to_thread(self._put, filename, Path(src), sha256)

    def _put(self, filename: str, src: Path, sha256: str) -> None:
        dest = self._path(filename)
        tmp = self.folder / f".{filename}.{os.getpid()}.tmp"
        digest = hashlib.sha256()
        try:
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(_CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
            if digest.hexdigest() != sha256:
                raise TransientError(
                    f"{filename}: SHA-256 mismatch while storing "
                    f"(expected {sha256[:12]}, wrote {digest.hexdigest()[:12]})"
                )
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def exists(self, filename: str) -> bool:
        try:
            return self._path(filename).is_file()
        except ValueError:
            return False

    def local_path(self, filename: str) -> Path | None:
        try:
            path = self._path(filename)
        except ValueError:
            return None
        return path if path.is_file() else None

    async def open(self, filename: str, start: int = 0, end: int | None = None) -> bytes:
        path = self._path(filename)

        def read() -> bytes:
            with open(path, "rb") as f:
                f.seek(start)
                return f.read() if end is None else f.read(max(0, end - start))

        return await asyncio.to_thread(read)

    def list(self) -> list[str]:
        return sorted(
            e.name for e in os.scandir(self.folder) if _NAME.match(e.name) and e.is_file()
        )


LOCAL_OPTIONS = frozenset({"path"})


def make_local_sink(config: dict[str, Any], state_dir: Path) -> LocalSink:
    unknown = set(config) - LOCAL_OPTIONS
    if unknown:
        raise ConfigError(f"storage local: {unknown_options(unknown, LOCAL_OPTIONS)}")
    if "path" in config:
        value = config["path"]
        if not isinstance(value, str | Path) or not str(value):
            raise ConfigError("storage local: path must be a path")
        folder = Path(value).expanduser()
        if not folder.is_absolute():
            folder = Path(state_dir).parent / folder
    else:
        folder = Path(state_dir) / "tracks"
    return LocalSink(folder)


@hookimpl
def segue_register_storage_sinks(register: Any) -> None:
    register("local", make_local_sink)
