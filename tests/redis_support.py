"""A throwaway redis-server the tests can start, stop, restart and freeze (SIGSTOP)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def require_redis() -> None:
    """Skip (or, with SEGUE_REQUIRE_SERVICES=1, fail) without redis-server or redis-py."""
    required = os.environ.get("SEGUE_REQUIRE_SERVICES", "") == "1"
    try:
        import redis  # noqa: F401
    except ModuleNotFoundError:
        if required:
            raise
        pytest.skip("the redis package is not installed")
    if not Path(REDIS_SERVER).exists():
        if required:
            pytest.fail("redis-server is required (SEGUE_REQUIRE_SERVICES=1) but missing")
        pytest.skip("redis-server is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_cluster_port() -> int:
    """A free port for a Redis Cluster node: its cluster bus listens 10,000 higher, which
    must be a port too (an ephemeral port above 55535 makes redis-server exit at start)."""
    while True:
        port = free_port()
        if port > 65535 - 10000:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisServer:
    """One redis-server on a loopback port, its data kept in ``folder`` (append-only file,
    so a restart keeps what was written)."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        import redis

        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir"]
        args += [str(self.folder), "--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.RedisError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        self.stop()
                        pytest.fail("redis-server did not start")
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server must be able to exit
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung Redis)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
