"""The ``local`` storage sink: atomic checked writes, reads, stale temp files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segue.core.errors import ConfigError, TransientError
from segue.core.plugins import Plugins


def sink(tmp_path: Path, config: dict | None = None):
    plugins = Plugins(strict=False, load_entry_points=False)
    return plugins.sinks.get("local").factory(config or {}, tmp_path / ".segue")


def source(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


async def test_put_then_read(tmp_path):
    s = sink(tmp_path)
    data = os.urandom(300_000)
    src, sha = source(tmp_path, data)
    name = "ab" * 32 + ".ogg"
    assert not s.exists(name) and s.local_path(name) is None
    await s.put(name, src, sha)
    assert s.exists(name)
    assert s.local_path(name) == tmp_path / ".segue" / "tracks" / name
    assert s.local_path(name).read_bytes() == data
    assert await s.open(name) == data
    assert await s.open(name, 10, 20) == data[10:20]
    assert await s.open(name, 299_990) == data[299_990:]
    assert s.list() == [name]
    # Nothing else in the folder: the temp file was renamed.
    assert os.listdir(tmp_path / ".segue" / "tracks") == [name]


async def test_a_checksum_mismatch_stores_nothing(tmp_path):
    s = sink(tmp_path)
    src, _sha = source(tmp_path, b"real bytes")
    with pytest.raises(TransientError, match="SHA-256 mismatch"):
        await s.put("cd" * 32 + ".wav", src, "0" * 64)
    assert os.listdir(tmp_path / ".segue" / "tracks") == []


async def test_overwrite_is_atomic_replace(tmp_path):
    s = sink(tmp_path)
    name = "ef" * 32 + ".wav"
    for data in (b"first", b"second version"):
        src, sha = source(tmp_path, data)
        await s.put(name, src, sha)
    assert s.local_path(name).read_bytes() == b"second version"
    assert s.list() == [name]


def test_names_outside_the_pattern_are_refused(tmp_path):
    s = sink(tmp_path)
    (tmp_path / ".segue" / "secret.txt").write_text("x")
    for bad in ("../secret.txt", ".hidden.ogg", "a/b.ogg", "x", ""):
        assert not s.exists(bad)
        assert s.local_path(bad) is None


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_are_removed_at_start(tmp_path):
    folder = tmp_path / ".segue" / "tracks"
    folder.mkdir(parents=True)
    dead = folder / f".{'aa' * 32}.ogg.{_dead_pid()}.tmp"
    live = folder / f".{'bb' * 32}.ogg.{os.getpid()}.tmp"  # a writer that is running
    track = folder / f"{'cc' * 32}.ogg"
    other = folder / ".keep"  # not ours: left alone
    for path in (dead, live, track, other):
        path.write_bytes(b"partial")
    s = sink(tmp_path)
    assert not dead.exists()
    assert live.exists() and track.exists() and other.exists()
    assert s.removed_stale == [dead.name]
    assert s.list() == [track.name]


def test_paths_and_options(tmp_path):
    s = sink(tmp_path, {"path": "music"})
    assert s.folder == tmp_path / "music" and s.folder.is_dir()
    s = sink(tmp_path, {"path": str(tmp_path / "abs")})
    assert s.folder == tmp_path / "abs"
    with pytest.raises(ConfigError, match="unknown option"):
        sink(tmp_path, {"bucket": "x"})
