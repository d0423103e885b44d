"""Admission control on a live server: connection caps (global and per address), header
and body timeouts, session and API floods, silent clients, every frame paying the rate
limit. Clients come from several loopback addresses (127.0.0.x) so that one address's
flood can be told from another's players."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os

import aiohttp
import pytest
from server_support import connect_raw, joined, recv_type, serve
from websockets.exceptions import ConnectionClosed

from segue.core.server.admission import address_key, auto_max_connections, fd_limit


async def tcp(port: int, source: str = "127.0.0.1"):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bytes:
    """Everything the server sends until it closes (fails if it does not, in time)."""
    data = b""
    async with asyncio.timeout(within):
        while chunk := await reader.read(65536):
            data += chunk
    return data


def http_session(source: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


async def test_a_connection_without_a_request_is_closed_after_the_header_timeout(tmp_path):
    async with serve(tmp_path, header_timeout_s=1.0) as live:
        idle_r, idle_w = await tcp(live.port)
        slow_r, slow_w = await tcp(live.port)
        slow_w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the end
        async with connect_raw(live.ws + "?session=stays") as ws:
            await joined(ws)
            for line in (b"X-a: 1\r\n", b"X-b: 2\r\n", b"X-c: 3\r\n"):
                await asyncio.sleep(0.4)  # slowloris: a header now and then
                slow_w.write(line)
            assert await closed_by_server(idle_r) == b""
            assert await closed_by_server(slow_r) == b""
            # A WebSocket (a request that was made) is not subject to it.
            await asyncio.sleep(0.5)
            await ws.send(json.dumps({"type": "ping", "id": "alive"}))
            assert (await recv_type(ws, "pong"))["id"] == "alive"
        for w in (idle_w, slow_w):
            w.close()


async def test_connection_caps_refuse_cleanly_and_other_addresses_get_in(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="segue.server")
    async with serve(tmp_path, max_connections=8, max_connections_per_address=5) as live:
        held = [await tcp(live.port, "127.0.0.1") for _ in range(5)]
        await asyncio.sleep(0.1)
        for _ in range(30):  # one address over its cap: 429 and closed, again and again
            r, w = await tcp(live.port, "127.0.0.1")
            reply = await closed_by_server(r)
            assert reply.startswith(b"HTTP/1.1 429 "), reply
            assert b'"code":"too_many_connections"' in reply
            w.close()
        # Another address gets in while the first one floods.
        async with http_session("127.0.0.2") as http, http.get(f"{live.http}/healthz") as resp:
            assert resp.status == 200
        held += [await tcp(live.port, "127.0.0.3") for _ in range(3)]
        await asyncio.sleep(0.1)
        r, w = await tcp(live.port, "127.0.0.4")  # over the global cap: 503
        reply = await closed_by_server(r)
        assert reply.startswith(b"HTTP/1.1 503 "), reply
        w.close()
        for _r, held_w in held:
            held_w.close()
        await asyncio.sleep(0.2)
        async with http_session("127.0.0.4") as http, http.get(f"{live.http}/metrics") as resp:
            text = await resp.text()
        assert 'segue_refused_total{reason="max_connections_per_address"} 30.0' in text
        assert 'segue_refused_total{reason="max_connections"} 1.0' in text
        assert live.server.admission.open <= 1
    refused_lines = [r for r in caplog.records if r.getMessage().startswith("refused:")]
    assert len(refused_lines) == 1  # 31 refusals, one log line (per 10 s)


async def test_new_sessions_and_api_calls_are_limited_per_address(tmp_path):
    async with (
        serve(
            tmp_path, session_burst=5, session_rate_per_s=0.01, api_burst=12, api_rate_per_s=0.01
        ) as live,
        http_session("127.0.0.1") as flood,
        http_session("127.0.0.2") as good,
    ):

        async def post(http, sid: str) -> int:
            url = f"{live.http}/api/sessions/{sid}/state"
            async with http.post(url, json={"set": {"in_combat": True}}) as resp:
                await resp.read()
                return resp.status

        assert [await post(flood, f"s{i}") for i in range(6)] == [200] * 5 + [429]
        assert await post(flood, "s0") == 200  # an existing session: not new
        async with flood.get(live.ws + "?session=new-one") as resp:
            assert resp.status == 429  # refused before the upgrade
            assert (await resp.json())["code"] == "rate_limited"
        assert await post(good, "other") == 200  # another address gets in
        # /api/* has its own limit per address (12 here: 7 calls made above).
        statuses = [await post(flood, "s0") for _ in range(8)]
        assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 3
        async with flood.get(f"{live.http}/healthz") as resp:
            assert resp.status == 200  # not an /api/* route
        assert await post(good, "other") == 200


async def test_sessions_never_connected_expire_sooner(tmp_path):
    async with serve(tmp_path, http_session_ttl_s=0.5, session_ttl_s=300) as live:
        async with aiohttp.ClientSession() as http:
            for sid in ("http-only", "joined"):
                url = f"{live.http}/api/sessions/{sid}/state"
                async with http.post(url, json={"set": {}}) as resp:
                    assert resp.status == 200
        async with connect_raw(live.ws + "?session=joined") as ws:
            await joined(ws)
        await asyncio.sleep(1.2)
        assert set(live.server.manager.sessions) == {"joined"}


async def test_a_client_that_stops_answering_pings_is_dropped(tmp_path):
    async with serve(tmp_path, ping_interval_s=0.5, pong_timeout_s=0.5) as live:
        # A raw WebSocket that completes the handshake, then never reads nor answers.
        reader, writer = await tcp(live.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /ws?session=mute HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        async with connect_raw(live.ws + "?session=talks") as ws:  # answers pings itself
            await joined(ws)
            data = await closed_by_server(reader)
            assert data.startswith(b"HTTP/1.1 101")
            assert data.count(b"\x89\x00") >= 1  # it was pinged
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            assert (await recv_type(ws, "pong"))["id"] == 1
        writer.close()
        assert live.server.metrics.closed.get("1006") == 1


@pytest.mark.parametrize("kind", ["ping", "binary"])
async def test_ping_and_binary_frames_pay_the_rate_limit(tmp_path, kind):
    async with serve(tmp_path, rate_per_s=2, burst=5) as live:
        async with connect_raw(live.ws + "?session=f") as ws:
            await joined(ws)
            with pytest.raises(ConnectionClosed) as info:
                for _ in range(500):
                    if kind == "ping":
                        await ws.ping()
                    else:
                        await ws.send(b"\x00\x01")
                    await asyncio.sleep(0)
                await asyncio.wait_for(ws.recv(), 10)
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        received = live.server.metrics.received
        name = "ping_frame" if kind == "ping" else "binary"
        assert received[name] <= 5 + 2 * 5  # the burst, and what refilled meanwhile
        assert received["invalid"] >= 5


async def test_a_body_that_never_arrives_times_out(tmp_path):
    async with serve(tmp_path, body_timeout_s=0.5) as live:
        reader, writer = await tcp(live.port)
        writer.write(
            b"POST /api/sessions/b/state HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b'\r\nContent-Length: 100\r\n\r\n{"set":'
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 408 ")
        writer.close()


def test_addresses_and_the_descriptor_cap():
    assert address_key("127.0.0.9") == "127.0.0.9"
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert 16 <= auto_max_connections() < fd_limit()


async def test_metrics_count_every_frame_received_and_sent_by_type(tmp_path):
    async with serve(tmp_path, ping_interval_s=0.5) as live:
        got: dict[str, int] = {}
        async with connect_raw(live.ws + "?session=m") as ws:
            for msg in await joined(ws):
                got[msg["type"]] = got.get(msg["type"], 0) + 1
            for flag in (True, False, True):
                await ws.send(json.dumps({"type": "state", "set": {"in_combat": flag}}))
            await ws.send(json.dumps({"type": "event", "name": "boss_defeated"}))
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            await ws.send("{bad")
            await ws.send(b"\x01")
            await ws.ping()
            await ws.send(json.dumps({"type": "ping", "id": "last"}))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                got[msg["type"]] = got.get(msg["type"], 0) + 1
                if msg["type"] == "pong" and msg.get("id") == "last":
                    break
            await asyncio.sleep(1.2)  # a server ping or two, answered by the client
        await asyncio.sleep(0.2)
        m = live.server.metrics
        sent = {k: v for k, v in m.sent.items() if v and not k.endswith("_frame")}
        assert sent == got
        assert got["error"] == 2 and got["pong"] == 2 and got["cue"] >= 4
        received = {k: v for k, v in m.received.items() if v}
        assert received.pop("pong_frame") >= 1 and m.sent["ping_frame"] >= 1
        assert received == {
            "state": 3,
            "event": 1,
            "ping": 2,
            "invalid": 1,
            "binary": 1,
            "ping_frame": 1,
        }
        assert m.sent["pong_frame"] == 1
