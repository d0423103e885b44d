"""On-demand generation, plugin hooks, session TTL, and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from server_support import SCORE, connect_raw, joined, no_message, recv_json, recv_type, serve
from websockets.exceptions import ConnectionClosed

from segue.core import hookimpl

pytestmark = pytest.mark.timeout(60)


async def test_pending_then_cue_when_generated_on_demand(tmp_path):
    text = SCORE.replace("prompt: driving battle", "prompt: 'driving battle [slow=0.3]'")
    async with serve(tmp_path, text, pregen=["explore", "victory"]) as live:  # noqa: SIM117
        async with (
            connect_raw(f"{live.ws}?session=a") as a,
            connect_raw(f"{live.ws}?session=b") as b,
        ):
            _w, first, prefetch = await joined(a)
            assert first["mood"] == "explore"
            assert sorted(t["mood"] for t in prefetch["tracks"]) == ["explore", "victory"]
            await joined(b)
            await a.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
            await b.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
            pending = {"type": "pending", "mood": "combat", "reason": "generating"}
            assert await recv_json(a) == pending
            assert await recv_json(b) == pending
            # A joiner meanwhile hears that combat is coming.
            async with connect_raw(f"{live.ws}?session=a") as c:
                kinds = [m["type"] for m in await joined(c)]
                assert kinds == ["welcome", "cue", "pending", "prefetch"]
            ca = await recv_type(a, "cue", timeout=20)
            cb = await recv_type(b, "cue", timeout=20)
            assert ca["mood"] == cb["mood"] == "combat"
            # New tracks are announced to everyone.
            prefetch = await recv_type(a, "prefetch")
            assert "combat" in {t["mood"] for t in prefetch["tracks"]}
            # Both sessions wanted combat; each key was generated once.
            while live.server.on_demand.tasks:
                await asyncio.sleep(0.05)
            assert live.pipeline.generator.calls.count("combat") == 2  # two variants
            assert live.server.metrics.generations["stored"] == 2
            # The audio is served.
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{live.http}{ca['track']['url']}") as r,
            ):
                assert r.status == 200


async def test_a_mood_with_nothing_stored_has_its_first_variant_made_alone(tmp_path):
    # One track is all a session needs for its cue: the other variant waits for it.
    text = SCORE.replace("prompt: driving battle", "prompt: 'driving battle [slow=0.2]'")
    async with serve(tmp_path, text, pregen=["explore"]) as live:  # noqa: SIM117
        async with connect_raw(f"{live.ws}?session=a") as a:
            await joined(a)
            await a.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
            assert (await recv_json(a))["type"] == "pending"
            assert (await recv_type(a, "cue", timeout=20))["mood"] == "combat"
            while live.server.on_demand.tasks:
                await asyncio.sleep(0.05)
    events = [e for e in live.pipeline.generator.events if e[1] == "combat"]
    assert events == [
        ("start", "combat", 0),
        ("end", "combat", 0),
        ("start", "combat", 1),
        ("end", "combat", 1),
    ]


async def test_failed_generation_says_so_and_music_plays_on(tmp_path):
    text = SCORE.replace("prompt: desperate", "prompt: 'desperate [fail]'")
    async with serve(tmp_path, text, pregen=["explore", "combat", "victory"]) as live:  # noqa: SIM117
        async with connect_raw(f"{live.ws}?session=f") as ws:
            await joined(ws)
            await ws.send(
                json.dumps({"type": "state", "set": {"in_combat": True, "player.health": 0.1}})
            )
            assert (await recv_json(ws))["type"] == "pending"
            failed = await recv_type(ws, "pending", timeout=20)
            assert failed == {"type": "pending", "mood": "danger", "reason": "failed"}
            assert live.server.metrics.generations["failed"] >= 1


class Recorder:
    """A real plugin: records the cue and event hooks, adds a route."""

    def __init__(self) -> None:
        self.cues: list[tuple[str, str, int]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def segue_cue(self, session: Any, cue: Any) -> None:
        self.cues.append((session.id, cue.mood, cue.seq))

    @hookimpl
    def segue_game_event(self, session: Any, event: dict[str, Any]) -> None:
        self.events.append((session.id, event))

    @hookimpl
    def segue_register_routes(self, app: web.Application) -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"cues": len(self.cues)})

        app.router.add_get("/plugin/hello", hello)


async def test_plugin_hooks_are_called(tmp_path):
    rec = Recorder()
    async with serve(tmp_path, extra_plugins=(rec,)) as live:
        async with connect_raw(f"{live.ws}?session=hk") as ws:
            await joined(ws)
            await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
            await recv_type(ws, "cue")
            await ws.send(json.dumps({"type": "event", "name": "boss_defeated", "data": {"k": 1}}))
            await recv_type(ws, "stinger")
            await ws.send(json.dumps({"type": "event", "name": "unknown"}))
            await recv_type(ws, "error")
        assert rec.cues == [("hk", "explore", 1), ("hk", "combat", 2)]
        assert rec.events == [("hk", {"name": "boss_defeated", "data": {"k": 1}})]
        async with aiohttp.ClientSession() as http, http.get(f"{live.http}/plugin/hello") as r:
            assert r.status == 200 and await r.json() == {"cues": 2}


async def test_session_kept_for_ttl_then_forgotten(tmp_path):
    async with serve(tmp_path, session_ttl_s=0.5) as live:
        async with connect_raw(f"{live.ws}?session=ttl") as ws:
            await joined(ws)
            await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
            await recv_type(ws, "cue")
        await asyncio.sleep(0.1)
        # Within the TTL: resumed (state, mood and seq).
        async with connect_raw(f"{live.ws}?session=ttl") as ws:
            cues = [m for m in await joined(ws) if m["type"] == "cue"]
            assert cues[-1]["mood"] == "combat" and cues[-1]["seq"] == 2
        await asyncio.sleep(1.0)
        assert live.server.manager.get("ttl") is None
        # After it: a new session, cued from the empty state.
        async with connect_raw(f"{live.ws}?session=ttl") as ws:
            cues = [m for m in await joined(ws) if m["type"] == "cue"]
            assert [(c["mood"], c["seq"]) for c in cues] == [("explore", 1)]


async def test_http_only_session_expires_too(tmp_path):
    async with serve(tmp_path, session_ttl_s=0.3) as live, aiohttp.ClientSession() as http:
        async with http.post(f"{live.http}/api/sessions/h/state", json={"set": {}}) as r:
            assert r.status == 200
        assert live.server.manager.get("h") is not None
        await asyncio.sleep(0.8)
        assert live.server.manager.get("h") is None


async def test_graceful_shutdown_closes_with_1001(tmp_path):
    async with (
        serve(tmp_path) as live,
        connect_raw(f"{live.ws}?session=s1") as a,
        connect_raw(f"{live.ws}?session=s2") as b,
    ):
        await joined(a)
        await joined(b)
        stopping = asyncio.create_task(live.stop())
        for ws in (a, b):
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await recv_json(ws)
            assert info.value.rcvd.code == 1001
            assert info.value.rcvd.reason == "server shutting down"
        await asyncio.wait_for(stopping, 20)


async def test_shutdown_lets_generation_in_flight_finish(tmp_path):
    text = SCORE.replace("prompt: driving battle", "prompt: 'driving battle [slow=0.5]'")
    async with serve(tmp_path, text, pregen=["explore", "victory"]) as live:
        async with connect_raw(f"{live.ws}?session=g") as ws:
            await joined(ws)
            await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
            assert (await recv_json(ws))["type"] == "pending"
            await live.stop()
        # Both combat variants were finished and stored before the server stopped.
        stored = [p for p in live.pipeline.plan() if live.pipeline.stored(p.request)]
        assert sorted(p.request.mood for p in stored) == [
            "combat",
            "combat",
            "explore",
            "victory",
        ]


async def test_unprompted_state_keeps_quiet(tmp_path):
    # A message that changes nothing musical gets no reply at all.
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=q") as ws:
        await joined(ws)
        await ws.send(json.dumps({"type": "state", "set": {"gold": 12}}))
        await no_message(ws, 0.3)


async def test_idle_connections_are_pinged_and_kept_alive(tmp_path):
    import socket

    async with serve(tmp_path, ping_interval_s=1.0) as live:
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        writer.write(
            b"GET /ws?session=idle HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        data = b""
        async with asyncio.timeout(10):
            while b"\x89\x00" not in data.split(b'"type":"prefetch"', 1)[-1]:
                data += await reader.read(65536)
        (conn,) = live.server.connections()
        sock = conn.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        writer.close()
