"""The code at a given commit, for a benchmark to run beside today's in the same run."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def baseline_tree(commit: str, into: Path) -> Path | None:
    """``segue`` as it was at ``commit`` (core/ and plugins/ from ``git archive``),
    importable from ``into``; None when git cannot give it."""
    archive = into / "baseline.tar"
    try:
        with archive.open("wb") as out:
            cmd = ["git", "-C", str(ROOT), "archive", commit, "core", "plugins"]
            subprocess.run(cmd, stdout=out, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(into / "segue", filter="data")
    return into
