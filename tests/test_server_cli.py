"""``segue serve`` as a new user runs it: a real subprocess, the synth, the SDK."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from server_support import connect_raw, joined, recv_json
from websockets.exceptions import ConnectionClosed

from segue.core.client import CueMessage, PendingMessage, SegueClient

pytestmark = pytest.mark.timeout(180)

TINY = """\
segue: 1
title: Tiny Keep
generator: synth
defaults: {duration_s: 4, format: ogg}
moods:
  explore: {prompt: gentle harp and flute over warm strings, bpm: 90, key: D major}
  combat: {prompt: driving battle drums and brass stabs, bpm: 140, key: D minor}
  victory: {prompt: triumphant brass fanfare, bpm: 120, stinger: true}
rules:
  - {mood: combat, when: {in_combat: true}, priority: 10}
  - {mood: explore}
events:
  boss_defeated: {stinger: victory}
transitions:
  - {from: "*", to: "*", at: next_bar, fade_ms: 1000}
  - {from: "*", to: combat, at: next_beat, fade_ms: 300}
"""


def free_port() -> int:
    # Port 0 cannot be printed before the server binds; take a free one and hand it over.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def segue(*args: str, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "SEGUE_TOKENS")}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "segue.core", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


async def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await loop.run_in_executor(None, proc.stdout.readline)
        if needle in line:
            return line
        if not line and proc.poll() is not None:
            raise AssertionError(f"segue serve exited {proc.returncode}: {proc.stderr.read()}")
    raise AssertionError(f"no {needle!r} within {timeout}s")


async def next_real_cue(client: SegueClient, timeout: float) -> CueMessage:
    """The next cue, past the ``pending`` notices of moods still being generated."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await client.next_cue(max(0.1, deadline - time.monotonic()))
        if isinstance(msg, CueMessage):
            return msg
        assert isinstance(msg, PendingMessage) and msg.reason == "generating", msg


async def healthz(port: int) -> dict:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/healthz") as r,
    ):
        return await r.json()


async def test_segue_serve_serves_at_once_and_generates_behind(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(TINY)
    port = free_port()
    proc = segue("serve", "--port", str(port), cwd=tmp_path)
    try:
        line = await wait_for_line(proc, "serving", timeout=60)
        assert f"http://127.0.0.1:{port}/" in line and "Tiny Keep" in line
        async with SegueClient(f"ws://127.0.0.1:{port}/ws", session="player-1") as c:
            first = await next_real_cue(c, 60)
            assert first.mood == "explore"
            assert first.track.generator == "synth" and first.track.format == "ogg"
            await asyncio.sleep(max(0.0, first.start_at - c.server_now()) + 0.05)
            await c.set_state({"in_combat": True})
            cue = await next_real_cue(c, 60)
            assert (cue.mood, cue.previous) == ("combat", "explore")
            assert cue.transition["at"] == "next_beat" and cue.transition["fade_ms"] == 300
            assert cue.start_at > c.server_now() - 1.0
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}{cue.track.url}") as r,
            ):
                body = await r.read()
                assert r.status == 200 and r.headers["Content-Type"] == "audio/ogg"
                assert body[:4] == b"OggS" and len(body) == cue.track.bytes
        # The background generation stores every track of the score.
        deadline = time.monotonic() + 60
        while (await healthz(port))["tracks"] < 3:
            assert time.monotonic() < deadline, await healthz(port)
            await asyncio.sleep(0.2)
        # Ctrl-C: every WebSocket is closed with 1001, then the process exits 0.
        async with connect_raw(f"ws://127.0.0.1:{port}/ws?session=x") as ws:
            await joined(ws)
            proc.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await recv_json(ws)
            assert info.value.rcvd.code == 1001
        assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30) == 0
        err = proc.stderr.read()
        assert "shutting down" in err
        # Its progress: the order (the mood a new session hears first), each track once.
        assert "3 to generate" in err
        assert "in the background: explore first, then combat, victory" in err
        assert "background generation done" in err and "3 stored, 0 failed" in err
        # Only finished tracks in the folder (docs/pregeneration.md).
        names = sorted(p.name for p in (tmp_path / ".segue" / "tracks").iterdir())
        assert len(names) == 3 and all(n.endswith(".ogg") and len(n) == 68 for n in names)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def serve_interrupted_when(tmp_path, ready: Callable[[int], bool]) -> tuple[int, str]:
    """``segue serve`` on TINY, Ctrl-C as soon as ``ready(pid)``: (exit code, stderr)."""
    (tmp_path / "adaptive_score.yaml").write_text(TINY)
    proc = segue("serve", "--port", str(free_port()), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not ready(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def test_ctrl_c_while_the_plugins_load_says_interrupted_never_a_traceback(tmp_path):
    # numpy mapped into the process: the built-in plugins are being imported (Linux).
    code, err = serve_interrupted_when(
        tmp_path, lambda pid: "numpy" in Path(f"/proc/{pid}/maps").read_text()
    )
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert code == 130 and err.strip().endswith("segue: interrupted"), err
    tracks = tmp_path / ".segue" / "tracks"
    assert not tracks.exists() or not any(tracks.iterdir())


def test_ctrl_c_once_the_head_start_worker_runs_stops_it_too(tmp_path):
    # The worker forked (docs/pregeneration.md): Ctrl-C at once, while the server starts.
    workers: list[str] = []

    def forked(pid: int) -> bool:
        workers[:] = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return bool(workers)

    code, err = serve_interrupted_when(tmp_path, forked)
    assert "Traceback" not in err, err
    assert code in (0, 130), err
    assert not Path(f"/proc/{workers[0]}").exists()  # no worker left behind


def test_bad_score_exits_2_with_the_score_errors(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(TINY.replace("bpm: 140", "bpm: fast"))
    proc = segue("serve", "--port", str(free_port()), "--no-pregen", cwd=tmp_path)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "adaptive_score.yaml:7: moods.combat.bpm:" in err
    assert "Traceback" not in err


def test_port_in_use_exits_1(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(TINY)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = segue("serve", "--port", str(port), "--no-pregen", cwd=tmp_path)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
