"""Hostile clients: good players' latency while the server is attacked, on loopback.

50 good clients (one session each, from 127.0.0.2) flip their state at 2 Hz and time
each state → cue. They run twice against the same server: alone (the baseline), then
during the mixed attack, which comes from other loopback addresses (127.0.1.x,
127.0.2.x, …) in processes of their own, all bounded in count and time:

- malformed frames of every kind (bad JSON and UTF-8, wrong shapes, unknown types and
  events, values nested 900 deep, numbers of 5,000 digits, dotted keys of 30,000 parts,
  thousands of keys, binary frames, pings, frames over the size limit), at least 50,000
  in all, from connections kept just under their rate limit and from floods at full speed
  (which the server closes, and which reconnect: churn);
- connection churn with new session ids, and HTTP floods making new sessions;
- slow readers (connections that never read), slowloris (headers a line at a time) and
  idle-connection floods (as many as the server lets an address hold).

Meanwhile a new player joins from a new address every half second and must be admitted.
Printed: the good clients' p50/p99 with and without the attack, the server's RSS before,
during (peak) and after, what the attackers sent, and what the server refused and how
(its /metrics). Target: p99 under attack <= 3 x baseline p99 + 5 ms; every new player in.

The server runs pinned to CPU 0; the good clients and the attackers share the others.
Each runs in a session of its own (Linux shares CPUs between sessions first), the server
and the good clients at a higher priority where the user may raise it (root), the
attackers just below, so that neither the machine's other work nor the attackers' own
CPU use is what is timed; the CPU each used during the attack is printed. Usage::

    python benchmarks/hostile.py                  # 30 s of attack
    python benchmarks/hostile.py --duration 10    # a quick look
    python benchmarks/hostile.py --realtime       # the server unaffected by other work
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import struct
import sys
import tempfile
import time
from typing import Any

# Run as ``python benchmarks/hostile.py``: its folder is on the path, ws_load with it.
import ws_load
from ws_load import (
    LeanWS,
    client_cpus,
    cpu_seconds,
    free_port,
    pct,
    pin,
    rss_bytes,
    wait_port,
)

HOSTILE_SCORE = ws_load.BENCH_SCORE.split("server:")[0]  # the server's default limits
GOOD = "127.0.0.2"
NEWCOMERS = "127.0.3.{}"
ATTACKERS = "127.0.{}.{}"  # second and third octets from the attack's number
TARGET_FACTOR, TARGET_PLUS_MS = 3.0, 5.0
REALTIME_ENV = "SEGUE_HOSTILE_REALTIME"  # --realtime, for the spawned processes
SHOWN_METRICS = ("refused", "errors", "closed", "received", "http_requests", "slow_lane")
STATE_ON = b'{"type":"state","set":{"in_combat":true}}'
STATE_OFF = b'{"type":"state","set":{"in_combat":false}}'
CUE_PREFIX = b'{"type":"cue"'
_MASK = b"\x00\x00\x00\x00"


def server_main(port: int, folder: str) -> None:
    """ws_load's segue server on the default limits, run as ``segue serve`` runs it
    (``start()``: admission control and the header timeout are installed there; then
    ``settle_heap()``)."""
    from aiohttp import web

    from segue.core.server.app import settle_heap, start

    def run_app(app: web.Application, host: str, port: int, **_: Any) -> None:
        async def main() -> None:
            runner, _port = await start(app, host, port, backlog=4096)
            settle_heap()
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()

        asyncio.run(main())

    ws_load.BENCH_SCORE = HOSTILE_SCORE
    web.run_app = run_app  # type: ignore[assignment]
    priority(-10, realtime=20)  # measured, not the machine's other work
    ws_load.server_main("segue", port, folder)


def priority(nice: int, realtime: int = 0) -> None:
    """Run this process at ``nice`` (where the user may raise it: root), in a session of
    its own. Linux with autogroup scheduling shares a CPU between sessions before it
    looks at a process's nice value, so a plain ``os.nice`` only ranks the benchmark's
    own processes: the machine's other work got as much CPU as the server.

    With ``--realtime`` (``REALTIME_ENV`` set), a process given ``realtime`` runs under
    SCHED_RR at that priority instead: on a machine busy with other work, a nice value
    still left the server waiting for its CPU 20-70 ms of every 500 (measured from
    /proc/<pid>/schedstat), which is the machine's latency, not segue's. The kernel
    keeps 5% of each second for the others (sched_rt_runtime_us)."""
    with contextlib.suppress(OSError):
        os.setsid()
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as f:
        f.write(str(nice))
    with contextlib.suppress(OSError):
        os.nice(nice)
    if realtime and os.environ.get(REALTIME_ENV):
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(realtime))


def frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, 0x80 | n)) + _MASK + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n) + _MASK + payload
    return struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n) + _MASK + payload


def malformed() -> list[tuple[str, bytes]]:
    """One frame of every kind of bad input (name, the whole frame)."""
    text = {
        "bad_json": b'{"type":"state","set":',
        "bad_utf8": b'{"type":"ping","id":"\xff\xfe"}',
        "not_object": b"[1,2,3]",
        "unknown_type": b'{"type":"nope"}',
        "wrong_shape": b'{"type":"state","set":[1]}',
        "empty_key_part": b'{"type":"state","set":{"a..b":1}}',
        "unknown_field": b'{"type":"ping","x":1}',
        "unknown_event": b'{"type":"event","name":"no_such_event"}',
        "deep_900": b'{"type":"state","set":{"a":' + b"[" * 900 + b"]" * 900 + b"}}",
        "number_5000_digits": b'{"type":"state","set":{"n":' + b"9" * 5000 + b"}}",
        "dotted_30000_parts": b'{"type":"state","set":{"' + b"a." * 30000 + b'z":1}}',
        "keys_4000": b'{"type":"state","set":{'
        + b",".join(b'"k%d":%d' % (i, i) for i in range(4000))
        + b"}}",
    }
    out = [(name, frame(p)) for name, p in text.items()]
    out.append(("binary", frame(b"\x00\x01\x02", opcode=2)))
    out.append(("ping_frame", frame(b"hi", opcode=9)))
    return out


TOO_LARGE = frame(b'{"type":"ping","id":"' + b"x" * 70000 + b'"}')


# ============================================================================ good clients


class Good(LeanWS):
    __slots__ = ()


async def open_from(
    port: int, source: str, path: str, on_text: Any, timeout: float = 10.0
) -> LeanWS:
    loop = asyncio.get_running_loop()
    _t, proto = await loop.create_connection(
        lambda: LeanWS(path, on_text), "127.0.0.1", port, local_addr=(source, 0)
    )
    await asyncio.wait_for(proto.opened, timeout)
    return proto


async def good_clients(port: int, n: int, rate: float, duration: float, tag: str) -> dict:
    sent_at: dict[LeanWS, float] = {}
    latencies: list[float] = []
    perf = time.perf_counter

    def on_text(proto: LeanWS, payload: bytearray) -> None:
        if payload[:13] == CUE_PREFIX:
            t0 = sent_at.pop(proto, None)
            if t0 is not None:
                latencies.append(perf() - t0)

    protos = [await open_from(port, GOOD, f"/ws?session={tag}-{i}", on_text) for i in range(n)]
    await asyncio.sleep(1.0)
    flip = dict.fromkeys(protos, False)
    loop = asyncio.get_running_loop()
    step = 1.0 / rate / n
    start = loop.time()
    tick = 0
    lost = 0
    while loop.time() - start < duration:
        due = int((loop.time() - start) / step)
        while tick <= due:
            proto = protos[tick % n]
            if proto in sent_at:
                lost += 1
            flip[proto] = not flip[proto]
            sent_at[proto] = perf()
            proto.send(STATE_ON if flip[proto] else STATE_OFF)
            tick += 1
        await asyncio.sleep(0.002)
    await asyncio.sleep(1.0)
    closed = sum(1 for p in protos if p.closed)
    for p in protos:
        if p.transport is not None:
            p.transport.close()
    return {
        "states": tick,
        "cues": len(latencies),
        "unanswered": lost + len(sent_at),
        "dropped": closed,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": (max(latencies) * 1000) if latencies else float("nan"),
    }


async def newcomers(port: int, duration: float, every: float) -> dict:
    """A new player from a new address every ``every`` seconds: admitted, and cued?"""
    admitted = refused = 0
    waits: list[float] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    i = 0
    while loop.time() < end:
        i += 1
        got_cue = loop.create_future()

        def on_text(proto: LeanWS, payload: bytearray, fut: Any = got_cue) -> None:
            if payload[:13] == CUE_PREFIX and not fut.done():
                fut.set_result(None)

        t0 = time.perf_counter()
        try:
            source = NEWCOMERS.format(1 + i % 250)
            proto = await open_from(port, source, f"/ws?session=new-{i}", on_text)
            await asyncio.wait_for(got_cue, 10)
            admitted += 1
            waits.append(time.perf_counter() - t0)
            if proto.transport is not None:
                proto.transport.close()
        except (OSError, ConnectionError, TimeoutError):
            refused += 1
        await asyncio.sleep(every)
    return {
        "admitted": admitted,
        "failed": refused,
        "join_p50_ms": pct(waits, 50) * 1000,
        "join_max_ms": (max(waits) * 1000) if waits else float("nan"),
    }


def good_main(fn: str, args: tuple, q: Any) -> None:
    cpus = client_cpus()
    if cpus:
        pin(cpus)
    priority(-10, realtime=10)  # ahead of the attackers on the shared CPU
    try:
        out = asyncio.run(globals()[fn](*args))
        out["cpu_s"] = time.process_time()
        q.put(out)
    except Exception as exc:  # reported, not hidden in a child's stderr
        q.put({"error": f"{type(exc).__name__}: {exc}"})


# ============================================================================ attackers


class Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


class Raw(asyncio.Protocol):
    """A connection that sends what it is told and counts what it gets (never parses)."""

    def __init__(self, read: bool = True) -> None:
        self.transport: asyncio.Transport | None = None
        self.done = asyncio.get_running_loop().create_future()
        self.head = b""
        self.read = read

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if not self.read:
            transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        if len(self.head) < 64:
            self.head += data[:64]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def raw(port: int, source: str, read: bool = True) -> Raw:
    loop = asyncio.get_running_loop()
    _t, proto = await loop.create_connection(
        lambda: Raw(read), "127.0.0.1", port, local_addr=(source, 0)
    )
    return proto


async def connect(port: int, source: str, t: Tally, backoff_s: float) -> Raw | None:
    """A raw connection from ``source``, or None (counted) after waiting ``backoff_s``."""
    try:
        return await raw(port, source)
    except OSError:
        t.add("connect_failed")
        await asyncio.sleep(backoff_s)
        return None


def upgrade(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: c2VndWUtYmVuY2htYXJrIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def attack_malformed(port: int, source: str, conns: int, end: float, t: Tally) -> None:
    """Malformed frames at about the rate limit (19 a second per connection, in one
    write), every kind in turn."""
    kinds = malformed()
    loop = asyncio.get_running_loop()

    async def one(j: int) -> None:
        while loop.time() < end:
            c = await connect(port, source, t, backoff_s=0.5)
            if c is None:
                continue
            assert c.transport is not None
            c.transport.write(upgrade(f"/ws?session=mal-{source}-{j}"))
            k = j
            while loop.time() < end and not c.done.done():
                batch = []
                for _ in range(19):  # a second's worth in one write
                    name, data = kinds[k % len(kinds)]
                    batch.append(data)
                    t.add(f"malformed:{name}")
                    k += 1
                c.transport.write(b"".join(batch))
                t.add("malformed_frames", len(batch))
                await asyncio.sleep(1.0)
            if c.transport is not None:
                c.transport.close()
            t.add("malformed_reconnects")

    await asyncio.gather(*(one(j) for j in range(conns)))


async def attack_flood(port: int, source: str, end: float, t: Tally) -> None:
    """Frames at full speed in bursts (text, binary, pings, oversized); closed, reconnects."""
    kinds = malformed()
    loop = asyncio.get_running_loop()
    session = 0
    while loop.time() < end:
        session += 1
        c = await connect(port, source, t, backoff_s=0.2)
        if c is None:
            continue
        assert c.transport is not None
        c.transport.write(upgrade(f"/ws?session=flood-{source}-{session % 40}"))
        sent = 0
        while loop.time() < end and not c.done.done() and sent < 400:
            burst = b"".join(kinds[(sent + i) % len(kinds)][1] for i in range(20))
            c.transport.write(burst)
            sent += 20
            await asyncio.sleep(0.01)
        if session % 10 == 0:
            c.transport.write(TOO_LARGE)
            t.add("oversized_frames")
        t.add("flood_frames", sent)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(c.done), 1.0)
        if not c.done.done():
            c.transport.close()
        t.add("flood_connections")


async def attack_churn(port: int, source: str, end: float, t: Tally) -> None:
    """Connect, upgrade with a new session id, close: as fast as it goes (per source)."""
    loop = asyncio.get_running_loop()
    i = 0
    while loop.time() < end:
        i += 1
        c = await connect(port, source, t, backoff_s=0.1)
        if c is None:
            continue
        assert c.transport is not None
        c.transport.write(upgrade(f"/ws?session=churn-{source}-{i}-{random.random()}"))
        await asyncio.sleep(0.02)
        t.add("churn_" + ("upgraded" if c.head.startswith(b"HTTP/1.1 101") else "refused"))
        c.transport.close()
        await asyncio.sleep(0.01)


async def attack_sessions(port: int, source: str, end: float, t: Tally) -> None:
    """HTTP POSTs with new session ids on a kept-alive connection, back to back."""
    loop = asyncio.get_running_loop()
    i = 0
    while loop.time() < end:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
        except OSError:
            t.add("connect_failed")
            await asyncio.sleep(0.2)
            continue
        try:
            while loop.time() < end:
                i += 1
                body = b'{"set":{"in_combat":true}}'
                writer.write(
                    f"POST /api/sessions/sf-{source}-{i}/state HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    "\r\n".encode()
                    + body
                )
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                status = head[9:12].decode()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                t.add(f"session_posts_{status}")
                if b"connection: close" in head.lower():
                    break
                await asyncio.sleep(0.002)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            t.add("session_flood_disconnects")
        writer.close()


async def attack_idle(port: int, sources: list[str], per_source: int, end: float, t: Tally) -> None:
    """Idle TCP connections (nothing sent), as many as each address may hold, renewed as
    the server closes them."""
    loop = asyncio.get_running_loop()

    async def hold(source: str) -> None:
        while loop.time() < end:
            c = await connect(port, source, t, backoff_s=0.5)
            if c is None:
                continue
            t.add("idle_opened")
            await asyncio.wait([c.done], timeout=max(0.0, end - loop.time()))
            if c.head.startswith(b"HTTP/1.1 429") or c.head.startswith(b"HTTP/1.1 503"):
                t.add("idle_refused")
                await asyncio.sleep(1.0)
            if c.transport is not None:
                c.transport.close()

    await asyncio.gather(*(hold(s) for s in sources for _ in range(per_source)))


async def attack_slow(port: int, source: str, conns: int, end: float, t: Tally) -> None:
    """Slowloris (a header line every 2 s) and slow readers (never read a byte)."""
    loop = asyncio.get_running_loop()

    async def loris(j: int) -> None:
        while loop.time() < end:
            c = await connect(port, source, t, backoff_s=0.5)
            if c is None:
                continue
            assert c.transport is not None
            c.transport.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            n = 0
            while loop.time() < end and not c.done.done():
                await asyncio.sleep(2.0)
                if c.done.done():
                    break
                n += 1
                c.transport.write(b"X-%d: %d\r\n" % (n, n))
            t.add("slowloris_closed_by_server" if c.done.done() else "slowloris_held")
            c.transport.close()

    async def reader(j: int) -> None:
        try:
            c = await raw(port, source, read=False)
        except OSError:
            t.add("connect_failed")
            return
        assert c.transport is not None
        c.transport.write(upgrade(f"/ws?session=slowread-{j % 3}"))
        while loop.time() < end and not c.done.done():
            # Pings make replies the connection never reads.
            c.transport.write(frame(b'{"type":"ping","id":"' + b"p" * 100 + b'"}') * 15)
            await asyncio.sleep(1.0)
        t.add("slow_reader_dropped" if c.done.done() else "slow_reader_held")
        c.transport.close()

    await asyncio.gather(*(loris(j) for j in range(conns)), *(reader(j) for j in range(conns // 4)))


async def attacker(port: int, role: int, duration: float) -> dict[str, int]:
    t = Tally()
    end = asyncio.get_running_loop().time() + duration
    a = 1 + role
    src = [ATTACKERS.format(a, b) for b in range(1, 9)]
    if role == 0:
        await asyncio.gather(
            *(attack_malformed(port, s, 24, end, t) for s in src[:6]),
            *(attack_flood(port, s, end, t) for s in src[6:] for _ in range(2)),
            attack_churn(port, src[0], end, t),
        )
    else:
        await asyncio.gather(
            attack_sessions(port, src[0], end, t),
            attack_sessions(port, src[1], end, t),
            attack_slow(port, src[2], 100, end, t),
            attack_idle(port, src[3:8], 300, end, t),
            attack_churn(port, src[1], end, t),
        )
    return t.counts


def attacker_main(port: int, role: int, duration: float, q: Any) -> None:
    cpus = client_cpus()
    if cpus:
        pin(cpus)
    ws_load.raise_nofile()
    priority(-5)  # behind the good clients, ahead of other work
    counts = asyncio.run(attacker(port, role, duration))
    counts["cpu_ms"] = round(time.process_time() * 1000)
    q.put(counts)


# ============================================================================ the run


def scrape(port: int) -> dict[str, float]:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("segue_") and "_created" not in line:
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                if float(value):
                    out[name] = float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=30.0, help="seconds of attack")
    p.add_argument("--good", type=int, default=50, help="good clients")
    p.add_argument("--rate", type=float, default=2.0, help="their states per second")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="run the server and the good clients under SCHED_RR (root; a busy machine)",
    )
    args = p.parse_args(argv)
    if args.realtime:
        os.environ[REALTIME_ENV] = "1"
    ctx = mp.get_context("spawn")
    folder = tempfile.mkdtemp(prefix="segue-hostile-")
    port = free_port()
    server = ctx.Process(target=server_main, args=(port, folder), daemon=True)
    server.start()
    assert server.pid is not None
    try:
        wait_port(port)
        time.sleep(1.0)
        q = ctx.Queue()

        def run(fn: str, *fargs: Any) -> Any:
            proc = ctx.Process(target=good_main, args=(fn, fargs, q), daemon=True)
            proc.start()
            return proc

        rss_before = rss_bytes(server.pid)
        print(f"server RSS before: {rss_before / 2**20:.1f} MiB", flush=True)
        print(
            f"baseline: {args.good} good clients, {args.rate:g} Hz, {args.duration:g} s", flush=True
        )
        run("good_clients", port, args.good, args.rate, args.duration, "base")
        baseline = q.get(timeout=args.duration + 120)
        print(f"  {baseline}", flush=True)
        metrics_before = scrape(port)

        print(f"attack: {args.duration:g} s", flush=True)
        cpu_before, wall_before = cpu_seconds(server.pid), time.monotonic()
        aq = ctx.Queue()
        attackers = [
            ctx.Process(target=attacker_main, args=(port, role, args.duration, aq), daemon=True)
            for role in (0, 1)
        ]
        for a in attackers:
            a.start()
        time.sleep(2.0)  # the attack is under way before the good clients start
        good_q, new_q = ctx.Queue(), ctx.Queue()
        good = ctx.Process(
            target=good_main,
            args=("good_clients", (port, args.good, args.rate, args.duration - 4, "hit"), good_q),
            daemon=True,
        )
        new = ctx.Process(
            target=good_main, args=("newcomers", (port, args.duration - 2, 0.5), new_q), daemon=True
        )
        good.start()
        new.start()
        peak = rss_before
        end = time.monotonic() + args.duration + 60
        sent: dict[str, int] = {}
        results: dict[str, Any] = {}
        pending = {"good", "new", "a0", "a1"}
        while pending and time.monotonic() < end:
            peak = max(peak, rss_bytes(server.pid))
            for name, queue in (("good", good_q), ("new", new_q)):
                if name in pending and not queue.empty():
                    results[name] = queue.get()
                    pending.discard(name)
            while not aq.empty():
                for k, v in aq.get().items():
                    sent[k] = sent.get(k, 0) + v
                pending.discard("a0" if "a0" in pending else "a1")
            time.sleep(0.1)
        attacked = results.get("good", {})
        joined = results.get("new", {})
        server_cpu = cpu_seconds(server.pid) - cpu_before
        attack_wall = time.monotonic() - wall_before
        time.sleep(12.0)  # idle and slowloris connections time out
        rss_after = rss_bytes(server.pid)
        metrics = scrape(port)
    finally:
        server.terminate()
        server.join(10)

    print()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; server on CPU 0"
        + (" (SCHED_RR: --realtime)" if args.realtime else "")
    )
    print(f"good clients ({args.good} x {args.rate:g} Hz), state -> cue:")
    nan = float("nan")
    for name, r in (("baseline", baseline), ("under attack", attacked)):
        print(
            f"  {name:13} p50 {r.get('p50_ms', nan):.2f} ms  p99 {r.get('p99_ms', nan):.2f} ms"
            f"  max {r.get('max_ms', nan):.1f} ms  cues {r.get('cues')}/{r.get('states')}"
            f"  unanswered {r.get('unanswered')}  dropped {r.get('dropped')}"
        )
    target = TARGET_FACTOR * baseline["p99_ms"] + TARGET_PLUS_MS
    p99 = attacked.get("p99_ms", float("inf"))
    print(
        f"  target p99 <= {TARGET_FACTOR:g} x {baseline['p99_ms']:.2f} + {TARGET_PLUS_MS:g}"
        f" = {target:.2f} ms: {'met' if p99 <= target else 'NOT met'}"
    )
    for name, r in (("baseline", baseline), ("under attack", attacked), ("newcomers", joined)):
        if "error" in r:
            print(f"  {name}: {r['error']}")
    print(f"new players during the attack: {joined}")
    attackers_cpu = sent.pop("cpu_ms", 0) / 1000
    print(
        f"CPU during the attack ({attack_wall:.1f} s): server {server_cpu:.1f} s "
        f"({100 * server_cpu / attack_wall:.0f}% of its core), attackers {attackers_cpu:.1f} s, "
        f"good clients {attacked.get('cpu_s', float('nan')):.1f} s"
    )
    print(
        f"server RSS: before {rss_before / 2**20:.1f} MiB, peak during {peak / 2**20:.1f} MiB, "
        f"after {rss_after / 2**20:.1f} MiB"
    )
    print("attackers sent / saw:")
    for k in sorted(sent):
        print(f"  {k:32} {sent[k]:>10,}")
    print("server refused / answered (metrics during the attack):")
    for k in sorted(metrics):
        if any(w in k for w in SHOWN_METRICS):
            delta = metrics[k] - metrics_before.get(k, 0.0)
            if delta:
                print(f"  {k:72} {delta:>10,.0f}")
    ok = p99 <= target and not joined.get("failed", 1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
