"""WebSocket load benchmark: segue's server against a minimal aiohttp echo server.

The servers and the load generator run in separate processes (the server pinned to CPU 0,
the load generator to the other CPUs when there are any). The same client, a lean asyncio
WebSocket client written for this benchmark, measures both servers in the same run:

(a) latency: N connections in N sessions send ``state`` at R Hz, alternating a state that
    flips the mood (transitions ``at: now``, no dwell or debounce), so every state gives a
    cue; p50/p99 from send to the resulting cue (to the echo, for the echo server).
(b) throughput: closed loop, every connection keeps W states in flight, sending the next
    as soon as a cue arrives; state→cue per second of the server's CPU time, as a ratio
    of the echo server's messages per CPU-second. Both servers run throughout and the
    rounds alternate between them, so that other load on the machine weighs on both
    alike; the ratio is the median of the rounds' ratios. With W=1 every read holds one
    message; with W=8 a read holds several, which segue answers with one write
    (it corks replies per read, as uWebSockets does) and the echo with one each.
(c) fan-out: one session with L listeners; a controller flips the state; time until the
    last listener has the cue (the echo server broadcasts the controller's message to
    every connection with ``send_str``, the plain aiohttp way).
(d) memory per idle connection: server RSS delta / connections, as a ratio of the echo's.
(e) I idle connections held (RLIMIT_NOFILE raised; several client processes).

Usage::

    python benchmarks/ws_load.py                    # full run (30 s latency phase)
    python benchmarks/ws_load.py --duration 5 --idle 3000   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import resource
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

TARGETS = {
    "a_p99_ms": 25.0,
    "b_ratio": 0.7,
    "c_p99_ms": 60.0,
    "d_ratio": 1.3,
}

BENCH_SCORE = """\
segue: 1
title: Benchmark
generator: bench_tone
cache: memory
storage: local
defaults: {duration_s: 4, instrumental: true, variants: 1, format: wav}
moods:
  explore: {prompt: calm, bpm: 120}
  combat: {prompt: battle, bpm: 120}
rules:
  - {mood: combat, when: {in_combat: true}, priority: 10}
  - {mood: explore}
transitions:
  - {from: "*", to: "*", at: now, fade_ms: 100}
server:
  rate_per_s: 1000
  burst: 1000
"""


# ============================================================================ servers


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin(cpus: set[int]) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, cpus)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_echo_server(port: int) -> None:
    """A minimal aiohttp WebSocket echo server (plus a broadcast for phase c)."""
    from aiohttp import WSMsgType, web

    sockets: set[web.WebSocketResponse] = set()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    if msg.data.startswith("B"):
                        for other in list(sockets):
                            with contextlib.suppress(ConnectionError):
                                await other.send_str(msg.data)
                    else:
                        with contextlib.suppress(ConnectionError):
                            await ws.send_str(msg.data)
        finally:
            sockets.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, backlog=4096, access_log=None)


def run_segue_server(port: int, folder: str) -> None:
    """segue's server on the benchmark score, tracks made by a tiny tone generator."""
    import numpy as np
    import soundfile as sf
    from aiohttp import web

    from segue.core import hookimpl
    from segue.core.generator import GeneratedAudio
    from segue.core.plugins import Plugins
    from segue.core.pregen.pipeline import Pipeline
    from segue.core.score import load_score
    from segue.core.server.app import create_app

    class BenchTone:
        name = "bench_tone"
        model = "bench-tone-1"
        concurrency = 2

        def __init__(self, config: dict, state_dir: Path) -> None:
            pass

        def audio_params(self) -> dict:
            return {"model": self.model}

        def estimate_cost(self, request: Any) -> float:
            return 0.0

        def check(self, request: Any) -> None:
            pass

        async def generate(self, request: Any, workdir: Path) -> Any:
            sr = 8000
            t = np.arange(int(request.duration_s * sr)) / sr
            path = workdir / "t.wav"
            sf.write(str(path), (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
            return GeneratedAudio(path=path, model=self.model, bpm=request.bpm, loop=True)

        async def aclose(self) -> None:
            pass

    class Plugin:
        @hookimpl
        def segue_register_generators(self, register: Any) -> None:
            register("bench_tone", BenchTone)

    score_path = Path(folder) / "adaptive_score.yaml"
    score_path.write_text(BENCH_SCORE)
    score = load_score(score_path)
    plugins = Plugins(strict=False, load_entry_points=False, extra=[Plugin()])
    pipeline = Pipeline(score, plugins)
    asyncio.run(pipeline.run())
    app = create_app(score, pipeline=pipeline, plugins=plugins)
    web.run_app(app, host="127.0.0.1", port=port, print=None, backlog=4096, access_log=None)


def server_main(kind: str, port: int, folder: str) -> None:
    raise_nofile()
    pin({0})
    if kind == "echo":
        run_echo_server(port)
    else:
        run_segue_server(port, folder)


# ============================================================================ the client

_HANDSHAKE_KEY = base64.b64encode(b"segue-benchmark!").decode()
_MASK = b"\x00\x00\x00\x00"  # a zero masking key: valid, and the payload goes as is


def client_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, 0x80 | n)) + _MASK + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 0x80 | 126, n) + _MASK + payload
    return struct.pack("!BBQ", 0x81, 0x80 | 127, n) + _MASK + payload


class LeanWS(asyncio.Protocol):
    """A minimal WebSocket client: handshake, masked text frames out, frames in."""

    __slots__ = ("buf", "closed", "on_text", "opened", "path", "transport", "upgraded")

    def __init__(self, path: str, on_text: Any) -> None:
        self.path = path
        self.on_text = on_text
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {_HANDSHAKE_KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during handshake"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:12])
            del buf[: end + 4]
            if b" 101" not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.upgraded = True
            self.opened.set_result(None)
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if size - pos < head + n:
                break
            opcode = b0 & 0x0F
            start = pos + head
            if opcode == 1:
                self.on_text(self, buf[start : start + n])
            elif opcode == 9 and self.transport is not None:  # ping: answer
                payload = bytes(buf[start : start + n])
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + _MASK + payload)
            pos = start + n
        if pos:
            del buf[:pos]

    def send(self, payload: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(client_frame(payload))


async def open_many(
    port: int, paths: list[str], on_text: Any, concurrency: int = 200
) -> list[LeanWS]:
    loop = asyncio.get_running_loop()
    out: list[LeanWS | None] = [None] * len(paths)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, path: str) -> None:
        async with sem:
            for attempt in range(5):
                try:
                    _t, proto = await loop.create_connection(
                        lambda: LeanWS(path, on_text), "127.0.0.1", port
                    )
                    await asyncio.wait_for(proto.opened, 30)
                    out[i] = proto
                    return
                except (OSError, ConnectionError, TimeoutError):
                    await asyncio.sleep(0.05 * 2**attempt)
            raise ConnectionError(f"could not open {path}")

    await asyncio.gather(*(one(i, p) for i, p in enumerate(paths)))
    return [p for p in out if p is not None]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


STATE_ON = b'{"type":"state","set":{"in_combat":true}}'
STATE_OFF = b'{"type":"state","set":{"in_combat":false}}'
CUE_PREFIX = b'{"type":"cue"'


def is_reply(kind: str, payload: bytearray) -> bool:
    if kind == "echo":
        return True
    return payload[:13] == CUE_PREFIX


# ----------------------------------------------------------------------------- phase a


async def phase_latency(
    kind: str, port: int, conns: int, rate: float, duration: float, tag: str
) -> dict[str, Any]:
    sent_at: dict[LeanWS, float] = {}
    latencies: list[float] = []
    perf = time.perf_counter

    def on_text(proto: LeanWS, payload: bytearray) -> None:
        t0 = sent_at.pop(proto, None)
        if t0 is not None and is_reply(kind, payload):
            latencies.append(perf() - t0)

    paths = [f"/ws?session={tag}-a-{i}" for i in range(conns)]
    protos = await open_many(port, paths, on_text)
    await asyncio.sleep(1.0)  # welcome, first cue, prefetch
    flip = dict.fromkeys(protos, False)
    interval = 1.0 / rate
    loop = asyncio.get_running_loop()
    lost = 0

    # Every connection sends on its own phase of the period, like real clients.
    async def driver() -> None:
        nonlocal lost
        start = loop.time()
        n = len(protos)
        tick = 0
        step = interval / n
        end = start + duration
        while True:
            now = loop.time()
            if now >= end:
                return
            due = int((now - start) / step)
            while tick <= due:
                proto = protos[tick % n]
                if proto in sent_at:
                    lost += 1  # the previous reply has not come: counted, not timed twice
                flip[proto] = not flip[proto]
                sent_at[proto] = perf()
                proto.send(STATE_ON if flip[proto] else STATE_OFF)
                tick += 1
            await asyncio.sleep(min(step * 8, 0.002))

    await driver()
    await asyncio.sleep(0.5)
    for p in protos:
        if p.transport:
            p.transport.close()
    return {
        "sent_rate": conns * rate,
        "replies": len(latencies),
        "unanswered": lost + len(sent_at),
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
    }


# ----------------------------------------------------------------------------- phase b


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of process ``pid`` (from /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (from /proc), in seconds."""
    return sum(cpu_times(pid))


def phase_throughput(
    kind: str, port: int, conns: int, duration: float, tag: str, server_pid: int, window: int
) -> dict[str, Any]:
    """Closed loop: each connection keeps ``window`` states in flight, sending the next
    when a reply comes (alternate states, so each one flips the mood and gets a cue).
    The client is a bare epoll loop (recv, a frame count, send) so that it can keep a
    one-core server busy."""
    import select

    socks = [raw_ws(port, f"/ws?session={tag}-b-{i}") for i in range(conns)]
    by_fd = {s.fileno(): s for s in socks}
    ep = select.epoll()
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    end = time.perf_counter() + 1.0
    while (left := end - time.perf_counter()) > 0:  # welcome, first cue, prefetch
        for fd, _ev in ep.poll(left):
            with contextlib.suppress(BlockingIOError):
                by_fd[fd].recv(65536)
    frames = (client_frame(STATE_ON), client_frame(STATE_OFF))
    flip = dict.fromkeys(by_fd, 1)  # so that the first state sent turns combat on
    bufs = {fd: bytearray() for fd in by_fd}
    echo = kind == "echo"
    count = 0
    for fd, sock in by_fd.items():
        for _ in range(window):
            f = flip[fd] = 1 - flip[fd]
            sock.send(frames[f])

    def pump(until: float) -> None:
        nonlocal count
        perf = time.perf_counter
        while perf() < until:
            for fd, _ev in ep.poll(0.1):
                try:
                    data = by_fd[fd].recv(65536)
                except BlockingIOError:
                    continue
                buf = bufs[fd]
                buf += data
                replies = 0
                pos = 0
                while len(buf) - pos >= 2:  # count whole frames
                    n = buf[pos + 1] & 0x7F
                    head = 2
                    if n == 126:
                        if len(buf) - pos < 4:
                            break
                        n = (buf[pos + 2] << 8) | buf[pos + 3]
                        head = 4
                    if len(buf) - pos < head + n:
                        break
                    if buf[pos] == 0x81 and (
                        echo or buf[pos + head + 2 : pos + head + 6] == b"type"
                    ):
                        replies += 1
                    pos += head + n
                del buf[:pos]
                for _ in range(replies):
                    count += 1
                    f = flip[fd] = 1 - flip[fd]
                    by_fd[fd].send(frames[f])

    pump(time.perf_counter() + 1.0)  # warm up
    (u0, k0), c0, t0 = cpu_times(server_pid), count, time.perf_counter()
    pump(t0 + duration)
    (u1, k1), c1, t1 = cpu_times(server_pid), count, time.perf_counter()
    s0, s1 = u0 + k0, u1 + k1
    client_cpu = cpu_seconds(os.getpid())
    for sock in socks:
        sock.close()
    ep.close()
    # Per second of wall clock, and per second of the server's own CPU time: the latter
    # is "throughput on one core" even when other processes compete for the CPU. The
    # server's CPU per message is split into user (Python) and system (the kernel:
    # reads, writes, TCP over loopback, waking the client) time.
    n = max(1, c1 - c0)
    return {
        "per_s": (c1 - c0) / (t1 - t0),
        "per_cpu_s": (c1 - c0) / max(1e-9, s1 - s0),
        "server_cpu": (s1 - s0) / (t1 - t0),
        "user_us": (u1 - u0) / n * 1e6,
        "sys_us": (k1 - k0) / n * 1e6,
        "client_cpu_s": client_cpu,
    }


# ----------------------------------------------------------------------------- phase c


def raw_ws(port: int, path: str) -> socket.socket:
    """A blocking WebSocket handshake on a plain socket, then non-blocking."""
    sock = socket.create_connection(("127.0.0.1", port), 30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio's transports do
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {_HANDSHAKE_KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        head += chunk
    if b" 101" not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    sock.setblocking(False)
    return sock


def phase_fanout(kind: str, port: int, listeners: int, rounds: int, tag: str) -> dict[str, Any]:
    """One session, ``listeners`` connections; time from the controller's send until the
    last listener's socket has the cue. The client is a bare epoll loop (a recv and a
    clock read per socket), so that it adds little beyond the server's own fan-out."""
    import select

    session = f"{tag}-room"
    path = f"/ws?session={session}"
    socks = [raw_ws(port, path) for _ in range(listeners)]
    ctrl = raw_ws(port, path)
    by_fd = {s.fileno(): s for s in [*socks, ctrl]}
    listener_fds = {s.fileno() for s in socks}
    ep = select.epoll()
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)

    def drain(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            for fd, _ev in ep.poll(left):
                with contextlib.suppress(BlockingIOError):
                    by_fd[fd].recv(65536)

    drain(1.0)  # welcome, first cue, prefetch
    perf = time.perf_counter
    marker = b"" if kind == "echo" else b'"type":"cue"'
    times: list[float] = []
    flip = False
    for _ in range(rounds):
        flip = not flip
        payload = STATE_ON if flip else STATE_OFF
        remaining = set(listener_fds)
        t0 = perf()
        ctrl.send(client_frame(b"B" + payload if kind == "echo" else payload))
        last = t0
        deadline = t0 + 10
        while remaining and perf() < deadline:
            for fd, _ev in ep.poll(1.0):
                try:
                    data = by_fd[fd].recv(65536)
                except BlockingIOError:
                    continue
                now = perf()
                if fd in remaining and marker in data:
                    remaining.discard(fd)
                    last = now
        if remaining:
            break
        times.append(last - t0)
        drain(0.05)
    for s in by_fd.values():
        s.close()
    ep.close()
    return {
        "rounds": len(times),
        "p50_ms": pct(times, 50) * 1000,
        "p99_ms": pct(times, 99) * 1000,
    }


# ----------------------------------------------------------------------------- phases d, e


async def phase_idle(port: int, conns: int, tag: str, hold_s: float, conn_q: Any) -> None:
    def on_text(proto: LeanWS, payload: bytearray) -> None:
        pass

    paths = [f"/ws?session={tag}-{i}" for i in range(conns)]
    t0 = time.perf_counter()
    protos = await open_many(port, paths, on_text)
    conn_q.put(("open", len(protos), time.perf_counter() - t0))
    await asyncio.sleep(hold_s)
    alive = sum(1 for p in protos if not p.closed)
    conn_q.put(("alive", alive, 0.0))
    for p in protos:
        if p.transport:
            p.transport.close()


def idle_client_main(port: int, conns: int, tag: str, hold_s: float, q: Any, cpus: Any) -> None:
    raise_nofile()
    if cpus:
        pin(cpus)
    asyncio.run(phase_idle(port, conns, tag, hold_s, q))


def client_main(fn: str, args: tuple, q: Any, cpus: Any) -> None:
    raise_nofile()
    if cpus:
        pin(cpus)
    target = globals()[fn]
    result = asyncio.run(target(*args)) if asyncio.iscoroutinefunction(target) else target(*args)
    q.put(result)


# ============================================================================ orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


class Server:
    def __init__(self, kind: str, folder: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.proc = mp.get_context("spawn").Process(
            target=server_main, args=(kind, self.port, folder), daemon=True
        )
        self.proc.start()
        wait_port(self.port)
        time.sleep(0.3)

    @property
    def rss(self) -> int:
        assert self.proc.pid is not None
        return rss_bytes(self.proc.pid)

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()


def client_cpus() -> set[int] | None:
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return None
    rest = set(cpus) - {0}
    return rest or None


def run_client(fn: str, *args: Any, timeout: float = 600) -> Any:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=client_main, args=(fn, args, q, client_cpus()), daemon=True)
    p.start()
    result = q.get(timeout=timeout)
    p.join(30)
    return result


def measure_idle(server: Server, total: int, procs: int, hold_s: float, tag: str) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    time.sleep(0.5)
    base = server.rss
    per = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(
            target=idle_client_main,
            args=(server.port, n, f"{tag}-p{i}", hold_s, q, client_cpus()),
            daemon=True,
        )
        for i, n in enumerate(per)
    ]
    for w in workers:
        w.start()
    opened = 0
    slowest = 0.0
    for _ in workers:
        _kind, n, secs = q.get(timeout=600)
        opened += n
        slowest = max(slowest, secs)
    time.sleep(min(1.0, hold_s / 2))
    rss = server.rss
    alive = 0
    for _ in workers:
        _kind, n, _secs = q.get(timeout=600)
        alive += n
    for w in workers:
        w.join(30)
    return {
        "opened": opened,
        "alive_after_hold": alive,
        "open_s": slowest,
        "rss_base_mb": base / 2**20,
        "rss_mb": rss / 2**20,
        "per_conn_kb": (rss - base) / max(1, opened) / 1024,
    }


def measure_throughput(
    servers: dict[str, Server], results: dict[str, dict[str, Any]], args: argparse.Namespace
) -> None:
    """Phase (b): rounds alternating echo and segue (which goes first alternates too),
    each round measuring every window on both. Other work on the machine changes from
    minute to minute, so each round's two figures are a pair taken under the same
    conditions: the ratio reported is the median of the rounds' ratios, and each
    server's figure the median of its rounds."""
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        kind: {w: [] for w in args.tp_window} for kind in servers
    }
    for rnd in range(args.tp_rounds):
        order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
        for kind in order:
            server = servers[kind]
            for window in args.tp_window:
                assert server.proc.pid is not None
                run = run_client(
                    "phase_throughput",
                    kind,
                    server.port,
                    args.tp_conns,
                    args.tp_duration,
                    f"{kind}-w{window}-r{rnd}",
                    server.proc.pid,
                    window,
                )
                runs[kind][window].append(run)
                print(
                    f"{kind} (b) round {rnd + 1}, {window} in flight:"
                    f" {run['per_cpu_s']:.0f} per server CPU-second"
                    f" ({run['per_s']:.0f}/s wall, server at {run['server_cpu']:.0%} CPU;"
                    f" per message {run['user_us']:.1f} us user + {run['sys_us']:.1f} us"
                    " system)",
                    flush=True,
                )
    for kind in servers:
        results[kind]["b"] = {}
        for window, got in runs[kind].items():
            ranked = sorted(got, key=lambda run: run["per_cpu_s"])
            median = dict(ranked[(len(ranked) - 1) // 2])
            median["runs"] = [run["per_cpu_s"] for run in got]
            results[kind]["b"][window] = median
    for window in args.tp_window:
        ratios = [
            s["per_cpu_s"] / e["per_cpu_s"]
            for s, e in zip(runs["segue"][window], runs["echo"][window], strict=True)
        ]
        results["segue"]["b"][window]["ratios"] = ratios
        results["segue"]["b"][window]["ratio"] = statistics.median(ratios)


def fmt(v: float, unit: str = "") -> str:
    return f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=30.0, help="phase (a) seconds")
    ap.add_argument("--conns", type=int, default=1000, help="phase (a) connections")
    ap.add_argument("--rate", type=float, default=2.0, help="phase (a) states/s per connection")
    ap.add_argument("--tp-conns", type=int, default=100, help="phase (b) connections")
    ap.add_argument("--tp-duration", type=float, default=6.0, help="phase (b) seconds per run")
    ap.add_argument(
        "--tp-rounds",
        type=int,
        default=3,
        help="phase (b) rounds, each measuring echo and segue back to back",
    )
    ap.add_argument(
        "--tp-window",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 8],
        help="phase (b) states in flight per connection, e.g. 1,8 (1: ping-pong; 8: saturating)",
    )
    ap.add_argument("--listeners", type=int, default=1000, help="phase (c) listeners")
    ap.add_argument("--rounds", type=int, default=100, help="phase (c) rounds")
    ap.add_argument("--mem-conns", type=int, default=4000, help="phase (d) idle connections")
    ap.add_argument("--idle", type=int, default=10000, help="phase (e) idle connections")
    ap.add_argument("--idle-procs", type=int, default=4, help="phase (e) client processes")
    ap.add_argument("--hold", type=float, default=5.0, help="phase (e) seconds held")
    ap.add_argument("--only", default="abcde", help="phases to run, e.g. 'ab'")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args(argv)
    limit = raise_nofile()
    print(f"cpus: {os.cpu_count()}, RLIMIT_NOFILE: {limit}, python {sys.version.split()[0]}")
    results: dict[str, dict[str, Any]] = {"segue": {}, "echo": {}}
    with tempfile.TemporaryDirectory() as folder:
        # Both servers run for the whole benchmark (each pinned to CPU 0; the one not
        # measured is idle), so that phase (b) can alternate between them.
        servers: dict[str, Server] = {}
        try:
            for kind in ("echo", "segue"):
                servers[kind] = server = Server(kind, folder)
                print(f"== {kind} server (pid {server.proc.pid}, port {server.port})", flush=True)
            for kind, server in servers.items():
                r = results[kind]
                if "d" in args.only:
                    r["d"] = measure_idle(server, args.mem_conns, 1, 1.0, f"{kind}-d")
                    print(f"{kind} (d) idle memory: {r['d']}", flush=True)
                if "a" in args.only:
                    r["a"] = run_client(
                        "phase_latency",
                        kind,
                        server.port,
                        args.conns,
                        args.rate,
                        args.duration,
                        kind,
                    )
                    print(f"{kind} (a) latency: {r['a']}", flush=True)
            if "b" in args.only:
                measure_throughput(servers, results, args)
            for kind, server in servers.items():
                r = results[kind]
                if "c" in args.only:
                    r["c"] = run_client(
                        "phase_fanout", kind, server.port, args.listeners, args.rounds, kind
                    )
                    print(f"{kind} (c) fan-out: {r['c']}", flush=True)
                if "e" in args.only and kind == "segue":
                    r["e"] = measure_idle(server, args.idle, args.idle_procs, args.hold, "e")
                    print(f"{kind} (e) idle connections: {r['e']}", flush=True)
        finally:
            for server in servers.values():
                server.stop()
    print_summary(results, args)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def print_summary(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    s, e = results["segue"], results["echo"]
    rows = []

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    if "a" in s:
        ok = s["a"]["p99_ms"] <= TARGETS["a_p99_ms"]
        rows.append(
            (
                f"(a) {args.conns} conns x {args.rate:g} Hz, {args.duration:g}s: send→cue",
                f"p50 {s['a']['p50_ms']:.2f} ms, p99 {s['a']['p99_ms']:.2f} ms"
                f" ({s['a']['replies']} cues, {s['a']['unanswered']} unanswered)",
                f"echo p50 {e['a']['p50_ms']:.2f} ms, p99 {e['a']['p99_ms']:.2f} ms",
                f"p99 <= {TARGETS['a_p99_ms']:g} ms: {verdict(ok)}",
            )
        )
    for window in s.get("b", {}):
        sb, eb = s["b"][window], e["b"][window]
        ratio = sb["ratio"]
        ratios = ", ".join(f"{r:.2f}" for r in sb["ratios"])
        rows.append(
            (
                f"(b) throughput, {args.tp_conns} conns x {window} in flight, one server core"
                f" (median of {len(sb['ratios'])} rounds)",
                f"{sb['per_cpu_s']:.0f} state→cue per server CPU-second"
                f" ({sb['per_s']:.0f}/s wall, server at {sb['server_cpu']:.0%} CPU;"
                f" {sb['user_us']:.1f} us user + {sb['sys_us']:.1f} us system each)",
                f"echo {eb['per_cpu_s']:.0f} msg per CPU-second"
                f" ({eb['per_s']:.0f}/s wall, {eb['server_cpu']:.0%} CPU;"
                f" {eb['user_us']:.1f} + {eb['sys_us']:.1f} us);"
                f" ratio {ratio:.2f} (rounds: {ratios})",
                f"ratio >= {TARGETS['b_ratio']:g}: {verdict(ratio >= TARGETS['b_ratio'])}",
            )
        )
    if "c" in s:
        ok = s["c"]["p99_ms"] <= TARGETS["c_p99_ms"]
        rows.append(
            (
                f"(c) 1 session, {args.listeners} listeners, {s['c']['rounds']} cues:"
                " last receiver",
                f"p50 {s['c']['p50_ms']:.2f} ms, p99 {s['c']['p99_ms']:.2f} ms",
                f"echo broadcast p50 {e['c']['p50_ms']:.2f} ms, p99 {e['c']['p99_ms']:.2f} ms",
                f"p99 <= {TARGETS['c_p99_ms']:g} ms: {verdict(ok)}",
            )
        )
    if "d" in s:
        ratio = s["d"]["per_conn_kb"] / e["d"]["per_conn_kb"]
        rows.append(
            (
                f"(d) memory per idle connection ({args.mem_conns} conns)",
                f"{s['d']['per_conn_kb']:.1f} KiB",
                f"echo {e['d']['per_conn_kb']:.1f} KiB; ratio {ratio:.2f}",
                f"ratio <= {TARGETS['d_ratio']:g}: {verdict(ratio <= TARGETS['d_ratio'])}",
            )
        )
    if "e" in s:
        ok = s["e"]["alive_after_hold"] >= args.idle
        rows.append(
            (
                f"(e) {args.idle} idle connections held {args.hold:g}s",
                f"{s['e']['alive_after_hold']} alive, opened in {s['e']['open_s']:.1f}s,"
                f" server RSS {s['e']['rss_mb']:.0f} MiB",
                "",
                f"all held: {verdict(ok)}",
            )
        )
    print("\n== summary (segue vs the aiohttp echo server, same run, same client)")
    for row in rows:
        print(f"{row[0]}\n    segue: {row[1]}\n    {row[2]}\n    target {row[3]}")


if __name__ == "__main__":
    sys.exit(main())
