"""Timing ``segue serve`` from launch, as a user meets it: a real process, real sockets.

Shared by tests/test_server_startup.py (the issue's 1 s / 3 s thresholds, with margins)
and benchmarks/first_cue.py (the figures, beside a same-run baseline).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def segue_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "SEGUE_TOKENS")}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def launch(folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segue.core", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=segue_env(),
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a running process has used so far, with
    that of the child processes it has waited for (``segue serve``'s head-start worker,
    which makes the first track and is waited for before its cue).

    Unlike wall time it hardly depends on what else the machine runs: on an idle machine
    a process that computes from launch to answer, alone, takes about this long (two
    processes working at once on two cores take less).
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Exited:
    seconds: float  # launch to exit
    cpu_s: float  # CPU time the process used
    returncode: int
    stderr: str


def run_to_exit(folder: Path, *args: str) -> Exited:
    before = _children_cpu()
    started = time.monotonic()
    proc = launch(folder, *args)
    _out, err = proc.communicate(timeout=120)
    return Exited(time.monotonic() - started, _children_cpu() - before, proc.returncode, err)


def startup_baseline(folder: Path) -> Exited:
    """``segue validate`` from launch to exit: the interpreter, segue's imports, the
    plugins and the score, which every command pays before doing its own work."""
    done = run_to_exit(folder, "validate")
    assert done.returncode == 0, done.stderr
    return done


def serve_on_taken_port(folder: Path) -> Exited:
    """``segue serve`` on a port another socket listens on."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        return run_to_exit(folder, "serve", "--port", str(busy.getsockname()[1]))


@dataclass
class Launch:
    port_s: float  # launch to the port accepting connections
    http_s: float  # launch to the first /healthz answer ("starting" while the server starts)
    ready_s: float  # launch to the first /healthz answered by the server ("ok")
    first_cue_s: float  # launch to the first cue on a WebSocket (connected at port_s)
    pending_first: bool  # whether a `pending` came before that cue
    cpu_http_s: float  # the server's CPU time when /healthz answered
    cpu_first_cue_s: float  # … and when the first cue arrived (with its worker's)
    stderr: str


async def _first_cue(port: int, started: float) -> tuple[float, bool]:
    pending = False
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"ws://127.0.0.1:{port}/ws?session=first") as ws,
    ):
        async for msg in ws:
            data = json.loads(msg.data)
            if data["type"] == "pending":
                pending = True
            if data["type"] == "cue":
                return time.monotonic() - started, pending
    raise AssertionError("the WebSocket closed before a cue")


async def _measure(proc: subprocess.Popen, port: int, started: float, timeout: float) -> Launch:
    deadline = started + timeout
    while True:  # the port: a TCP connect that succeeds
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            break
        except OSError:
            assert proc.poll() is None, f"segue serve exited {proc.returncode}"
            assert time.monotonic() < deadline, "the port never opened"
            await asyncio.sleep(0.005)
    port_s = time.monotonic() - started
    cue = asyncio.ensure_future(_first_cue(port, started))
    async with aiohttp.ClientSession() as http:
        http_s = ready_s = cpu_http = 0.0
        while not ready_s:  # the first answer, then the server's own (docs/protocol.md)
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert r.status == 200
                status = (await r.json())["status"]
            now = time.monotonic() - started
            if not http_s:
                http_s, cpu_http = now, cpu_seconds(proc.pid)
            if status == "ok":
                ready_s = now
            else:
                assert status == "starting" and time.monotonic() < deadline, status
                await asyncio.sleep(0.01)
    first_cue_s, pending = await asyncio.wait_for(cue, max(1.0, deadline - time.monotonic()))
    return Launch(
        port_s, http_s, ready_s, first_cue_s, pending, cpu_http, cpu_seconds(proc.pid), ""
    )


def serve_from_empty(folder: Path, timeout: float = 120.0) -> Launch:
    """Launch ``segue serve`` in ``folder`` (its cache empty) and time its first minute."""
    port = free_port()
    started = time.monotonic()
    proc = launch(folder, "serve", "--port", str(port))
    try:
        result = asyncio.run(_measure(proc, port, started, timeout))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
    result.stderr = err
    return result
