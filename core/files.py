"""File helpers shared by the pipeline and storage sinks: content hashes, stale temp files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (unix seconds), where /proc tells (Linux); else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        # Field 22, counted after the command name, which may itself hold spaces and ")".
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as f:
            boot = next(
                int(line.split()[1])
                for line in f.read().decode().splitlines()
                if line.startswith("btime ")
            )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def writer_gone(path: Path, pid: int) -> bool:
    """Whether the process that wrote ``path`` (named ``pid`` in it) is gone.

    Gone when no process ``pid`` runs, or when the one that does started after ``path``
    was last written: the pid was reused (a container restarted: the new server is pid 1
    again). A writer that is alive is never taken for gone.
    """
    if not pid_alive(pid):
        return True
    started = _process_start(pid)
    if started is None:
        return False
    try:
        written = os.stat(path).st_mtime
    except OSError:
        return False
    # The boot time has whole-second precision: allow two seconds of slack.
    return started > written + 2.0


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: a temp file whose writer is gone is stale."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
