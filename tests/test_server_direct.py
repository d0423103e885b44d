"""Text frames handled as they are parsed (segue.core.server.ws_direct): which connections take
that path, and that order, control frames and the plain path's fallback are kept.

Raw sockets: the tests need to put several frames (or a frame and the upgrade request)
into one TCP write, which a WebSocket library would not do.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct

import aiohttp
import pytest
from server_support import connect_raw, joined, recv_type, serve

from segue.core.server.ws_direct import (
    SLOW_LANE_SLICE,
    TESTED_AIOHTTP,
    DirectResponse,
    fast_path_problem,
)

pytestmark = pytest.mark.timeout(60)

KEY = base64.b64encode(b"segue-direct-tst").decode()


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame (masked with a zero key, so the payload goes as is)."""
    n = len(payload)
    head = bytes((0x80 | opcode,))
    if n < 126:
        head += bytes((0x80 | n,))
    else:
        head += struct.pack("!BH", 0x80 | 126, n)
    return head + b"\x00\x00\x00\x00" + payload


def upgrade(port: int, session: str) -> bytes:
    return (
        f"GET /ws?session={session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class RawClient:
    """Reads server frames off a plain stream (the server never masks or fragments)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, session: str, first: bytes = b"") -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(upgrade(port, session) + first)
        await writer.drain()
        status = await reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in status.split(b"\r\n", 1)[0], status
        return cls(reader, writer)

    async def frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        async def read() -> tuple[int, bytes]:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return b0 & 0x0F, await self.reader.readexactly(n)

        return await asyncio.wait_for(read(), timeout)

    async def message(self) -> dict:
        while True:
            opcode, payload = await self.frame()
            if opcode == 0x1:
                return json.loads(payload)

    async def joined(self) -> list[dict]:
        out = [await self.message()]
        while out[-1]["type"] != "prefetch":
            out.append(await self.message())
        return out

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def close(self) -> None:
        self.writer.close()
        await asyncio.gather(self.writer.wait_closed(), return_exceptions=True)


def responses(live) -> list[DirectResponse]:
    return [ws for ws in live.server.websockets if isinstance(ws, DirectResponse)]


async def test_connections_take_the_direct_path(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=d1") as ws:
        await joined(ws)
        [response] = responses(live)
        assert response.direct, "aiohttp internals changed: every message takes receive()"
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        cue = await recv_type(ws, "cue")
        assert cue["mood"] == "combat"


async def test_a_burst_in_one_write_is_answered_in_order(tmp_path):
    async with serve(tmp_path, rate_per_s=1000.0, burst=1000) as live:
        client = await RawClient.open(live.port, "burst")
        await client.joined()
        burst = b""
        expected = []
        for i in range(40):
            if i % 4 == 0:
                burst += frame(
                    b'{"type":"state","set":{"in_combat":%s}}' % (b"true", b"false")[i // 4 % 2]
                )
                expected.append("cue")
            elif i % 4 == 1:
                burst += frame(b"{not json")
                expected.append("error")
            else:
                burst += frame(b'{"type":"ping","t":1,"id":%d}' % i)
                expected.append(f"pong {i}")
        client.send(burst)
        got = []
        while len(got) < len(expected):
            msg = await client.message()
            got.append(f"pong {msg['id']}" if msg["type"] == "pong" else msg["type"])
        assert got == expected
        await client.close()


async def test_control_frames_still_answered_on_the_direct_path(tmp_path):
    async with serve(tmp_path) as live:
        client = await RawClient.open(live.port, "ctl")
        await client.joined()
        client.send(frame(b"hello?", opcode=0x9))  # a WebSocket ping
        assert await client.frame() == (0xA, b"hello?")  # aiohttp's autoping
        client.send(frame(b'{"type":"state","set":{"in_combat":true}}'))
        msg = await client.message()
        assert msg["type"] == "cue" and msg["mood"] == "combat"
        client.send(frame(struct.pack("!H", 1000), opcode=0x8))  # close
        opcode, payload = await client.frame()
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000
        await client.close()


async def test_frames_that_come_with_the_upgrade_request_are_answered_in_order(tmp_path):
    async with serve(tmp_path) as live:
        ping = frame(b'{"type":"ping","t":5,"id":"early"}')
        state = frame(b'{"type":"state","set":{"in_combat":true}}')
        binary = frame(b"\x00\x01", opcode=0x2)
        client = await RawClient.open(live.port, "early", first=ping + binary + state)
        msgs = [await client.message() for _ in range(6)]
        assert [m["type"] for m in msgs] == ["welcome", "cue", "prefetch", "pong", "error", "cue"]
        assert msgs[3]["id"] == "early" and msgs[5]["mood"] == "combat"
        # Such a connection takes the direct path too, in the slow lane (RFC 6455: a
        # client waits for the handshake's answer before it sends frames).
        [response] = responses(live)
        assert response.direct and response.early
        assert live.server.lane.chunks == 1
        client.send(frame(b'{"type":"state","set":{"in_combat":false}}'))
        msg = await client.message()
        assert msg["type"] == "cue" and msg["mood"] == "explore"
        await client.close()


async def test_flood_closes_with_1008_on_the_direct_path(tmp_path):
    async with serve(tmp_path, rate_per_s=5.0, burst=5) as live:
        client = await RawClient.open(live.port, "flood")
        await client.joined()
        client.send(frame(b'{"type":"ping","t":1}') * 40)
        codes = []
        while True:
            opcode, payload = await client.frame()
            if opcode == 0x8:
                codes.append(struct.unpack("!H", payload[:2])[0])
                break
            msg = json.loads(payload)
            if msg["type"] == "error":
                codes.append(msg["code"])
        assert codes[-1] == 1008
        assert "rate_limited" in codes
        await client.close()


async def test_cork_holds_writes_until_flushed_then_writes_them_once_in_order():
    import socket

    from aiohttp import web

    from segue.core.server.ratelimit import MessageLimiter
    from segue.core.server.sessions import Connection, Cork

    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    cork = Cork()
    try:
        limiter = MessageLimiter(10, 10, 0.0)
        conn = Connection(web.WebSocketResponse(), transport, limiter, cork=cork)
        other = Connection(web.WebSocketResponse(), transport, limiter, cork=cork)
        apart = Connection(web.WebSocketResponse(), transport, limiter)  # no cork
        assert conn.send(b"plain ")  # not corked: written at once
        assert peer.recv(100) == b"plain "
        assert cork.begin()
        assert not cork.begin()  # already corked: the outer batch flushes
        assert conn.send(b"one ") and other.send(b"two ") and conn.send(b"three ")
        with pytest.raises(BlockingIOError):
            peer.recv(100)  # nothing written yet
        assert apart.send(b"apart ")  # another cork's (here none): not held
        assert peer.recv(100) == b"apart "
        cork.flush()
        await asyncio.sleep(0.01)
        assert peer.recv(100) == b"one three two "  # per connection, in order
        assert conn.send(b"after")  # uncorked again
        assert peer.recv(100) == b"after"
    finally:
        transport.close()
        peer.close()


def test_one_frame_is_told_by_the_header():
    from segue.core.server.ws_direct import _one_frame

    small, big = frame(b"x" * 10), frame(b"y" * 300)
    assert _one_frame(small) and _one_frame(big)
    assert not _one_frame(small + small)
    assert not _one_frame(small[:-1])  # a partial frame
    assert not _one_frame(big + small)
    assert not _one_frame(b"\x81")


# ---------------------------------------------------------------- the aiohttp version guard


def test_the_fast_path_runs_on_the_tested_aiohttp_only():
    import aiohttp

    # The installed aiohttp is one it was tested on (else widen TESTED_AIOHTTP after
    # running this file on it).
    assert fast_path_problem() is None, fast_path_problem()
    assert fast_path_problem(aiohttp.__version__) is None
    first, last = TESTED_AIOHTTP
    assert fast_path_problem(f"{first[0]}.{first[1]}.0") is None
    assert fast_path_problem(f"{last[0]}.{last[1]}.9rc1") is None
    for other in ("4.0.0", f"{last[0]}.{last[1] + 1}.0", "3.8.6", "banana"):
        assert "not a version it was tested on" in fast_path_problem(other)


async def test_an_untested_aiohttp_takes_the_plain_path_and_says_why_once(
    tmp_path, monkeypatch, caplog
):
    import aiohttp

    monkeypatch.setattr(aiohttp, "__version__", "4.0.0")
    caplog.set_level("INFO", logger="segue.server")
    async with (
        serve(tmp_path) as live,
        connect_raw(f"{live.ws}?session=p1") as a,
        connect_raw(f"{live.ws}?session=p2") as b,
    ):
        await joined(a)
        await joined(b)
        assert [r.direct for r in responses(live)] == [False, False]
        await a.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        assert (await recv_type(a, "cue"))["mood"] == "combat"
        await b.send(json.dumps({"type": "ping", "t": 1, "id": "p"}))
        assert (await recv_type(b, "pong"))["id"] == "p"
    why = [r.getMessage() for r in caplog.records if "plain path" in r.getMessage()]
    assert why == [
        "WebSocket messages take aiohttp's plain path: aiohttp 4.0.0 is not a version it "
        f"was tested on ({'.'.join(map(str, TESTED_AIOHTTP[0]))})"
    ]


# ---------------------------------------------------------------- one decode per message


class DecodeCounter:
    """Counts the JSON decoders' calls (orjson's, and the standard library's reading)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from segue.core import protocol

        self.calls = 0
        fast, std = protocol._orjson_loads, protocol._decode_std
        assert fast is not None, "orjson is a declared dependency"

        def counted_fast(raw):
            self.calls += 1
            return fast(raw)

        def counted_std(raw):
            self.calls += 1
            return std(raw)

        monkeypatch.setattr(protocol, "_orjson_loads", counted_fast)
        monkeypatch.setattr(protocol, "_decode_std", counted_std)

    def take(self) -> int:
        calls, self.calls = self.calls, 0
        return calls


MESSAGES = [
    ({"type": "state", "set": {"in_combat": True}}, "cue"),
    ({"type": "state", "set": {"in_combat": False}, "id": 1}, "cue"),
    ({"type": "ping", "t": 1, "id": "q"}, "pong"),
    ({"type": "event", "name": "nope", "id": "e"}, "error"),
    ({"type": "state", "sett": {}}, "error"),
]


@pytest.mark.parametrize("path", ["fast", "plain"])
async def test_a_frame_is_decoded_once(tmp_path, monkeypatch, path):
    import aiohttp

    if path == "plain":
        monkeypatch.setattr(aiohttp, "__version__", "4.0.0")
    counter = DecodeCounter(monkeypatch)
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=once") as ws:
        await joined(ws)
        [response] = responses(live)
        assert response.direct is (path == "fast")
        counter.take()
        for msg, reply in MESSAGES:
            await ws.send(json.dumps(msg))
            assert (await recv_type(ws, reply))["type"] == reply
            assert counter.take() == 1, msg
        # A frame orjson cannot read as the standard library does (an integer beyond 64
        # bits) is read by both: twice, never more.
        await ws.send('{"type":"ping","t":123456789012345678901234567890}')
        assert (await recv_type(ws, "pong"))["t"] == 123456789012345678901234567890
        assert counter.take() == 2


async def test_an_http_body_is_decoded_once(tmp_path, monkeypatch):
    import aiohttp

    counter = DecodeCounter(monkeypatch)
    async with serve(tmp_path) as live, aiohttp.ClientSession() as http:
        url = f"{live.http}/api/sessions/h1"
        for route, body, status in [
            ("state", {"set": {"in_combat": True}}, 200),
            ("events", {"name": "nope"}, 404),
            ("state", {"sett": {}}, 400),
        ]:
            async with http.post(f"{url}/{route}", data=json.dumps(body)) as r:
                assert r.status == status, await r.text()
            assert counter.take() == 1, body


async def test_a_connection_refused_a_frame_is_read_in_the_slow_lane(tmp_path):
    async with serve(tmp_path) as live:
        good = await RawClient.open(live.port, "lane-good")
        bad = await RawClient.open(live.port, "lane-bad")
        await good.joined()
        await bad.joined()
        lane = live.server.lane
        assert lane.chunks == 0
        bad.send(frame(b"{not json"))
        assert (await bad.message())["code"] == "bad_json"
        # What it sends next waits in the lane, and is answered in order, every chunk.
        for i in range(3):
            bad.send(frame(b'{"type":"ping","t":1,"id":%d}' % i) + frame(b"\x00", opcode=0x2))
            assert (await bad.message())["id"] == i
            assert (await bad.message())["code"] == "bad_message"
        assert lane.chunks == 3
        assert not lane.held and not lane.scheduled
        # A read bigger than a slice is parsed a slice per turn, frames across slices too.
        big = b"".join(frame(b'{"type":"nope%d","pad":"%s"}' % (i, b"x" * 9000)) for i in range(3))
        assert len(big) > SLOW_LANE_SLICE
        bad.send(big + frame(b'{"type":"ping","t":1,"id":"after"}'))
        for i in range(3):
            assert (await bad.message())["message"].startswith(f"unknown message type 'nope{i}'")
        assert (await bad.message())["id"] == "after"
        assert not lane.held and not lane.scheduled
        chunks = lane.chunks
        # A connection never refused is read at once.
        good.send(frame(b'{"type":"state","set":{"in_combat":true}}'))
        assert (await good.message())["type"] == "cue"
        assert lane.chunks == chunks
        async with aiohttp.ClientSession() as http, http.get(f"{live.http}/metrics") as r:
            assert f"segue_slow_lane_chunks_total {chunks:.1f}" in await r.text()
        await good.close()
        await bad.close()


class HeldReader:
    """What the slow lane needs of a connection's reader (ws_direct.DirectReader)."""

    def __init__(self, name: str, released: list[str]) -> None:
        self.name, self.released = name, released
        self.held: bytes | None = None
        self.paused = 0
        self.protocol = self
        self.transport = self

    def pause_reading(self) -> None:
        self.paused += 1

    def release(self) -> None:
        self.released.append(f"{self.name}:{self.held.decode()}")
        self.held = None


async def test_the_slow_lane_parses_in_order_a_budget_per_loop_turn():
    from segue.core.server.ws_direct import SlowLane

    released: list[str] = []
    lane = SlowLane(budget_s=0.0)  # one chunk per turn of the loop
    a, b, c = (HeldReader(n, released) for n in "abc")
    for reader in (a, b, c):
        assert lane.hold(reader, b"1") == (False, b"")
    lane.hold(a, b"2")  # more read before the pause took: kept, in order
    assert (a.paused, b.paused, c.paused) == (1, 1, 1) and lane.chunks == 4
    assert released == []  # nothing parsed where it was read
    await asyncio.sleep(0)
    assert released == ["a:12"]
    await asyncio.sleep(0)
    assert released == ["a:12", "b:1"]
    await asyncio.sleep(0)
    assert released == ["a:12", "b:1", "c:1"] and not lane.scheduled
