"""The Python SDK against a real server: typed messages, clock sync, reconnect and resume."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web
from server_support import SCORE, serve, started

from segue.core.client import (
    ConnectionLost,
    CueMessage,
    PendingMessage,
    SegueClient,
    SegueClientError,
    StingerMessage,
    Unauthorized,
)

pytestmark = pytest.mark.timeout(60)


async def test_connect_cues_events_errors(tmp_path):
    async with serve(tmp_path) as live, SegueClient(live.ws, session="sdk") as c:
        assert c.welcome is not None and c.welcome.session == "sdk" and c.session == "sdk"
        assert c.welcome.moods == ("explore", "combat", "danger", "victory")
        first = await c.next_cue(5)
        assert isinstance(first, CueMessage) and first.mood == "explore" and first.seq == 1
        assert first.track.url.startswith("/tracks/") and first.track.bpm == 120.0
        assert {t.mood for t in c.prefetch} == {"explore", "combat", "danger", "victory"}
        await started(first)
        await c.set_state({"in_combat": True})
        cue = await c.next_cue(5)
        assert isinstance(cue, CueMessage)
        assert (cue.mood, cue.previous, cue.seq) == ("combat", "explore", 2)
        assert c.current_cue == cue
        await c.event("boss_defeated", {"by": "test"})
        stinger = await c.next_cue(5)
        assert isinstance(stinger, StingerMessage) and stinger.mood == "victory"
        await c.event("no_such_event", id="x1")
        err = await c.next_error(5)
        assert (err.code, err.id) == ("unknown_event", "x1")
        await c.set_state(unset=["in_combat"])
        assert (await c.next_cue(5)).mood == "explore"
        await c.set_state(replace={"in_combat": True, "player": {"health": 0.1}})
        assert (await c.next_cue(5)).mood == "danger"


async def test_cues_iterator_yields_pending_then_cue(tmp_path):
    text = SCORE.replace("prompt: driving battle", "prompt: 'driving battle [slow=0.2]'")
    async with (
        serve(tmp_path, text, pregen=["explore", "victory"]) as live,
        SegueClient(live.ws, session="it") as c,
    ):
        got = []
        async for msg in c.cues():
            got.append(msg)
            if len(got) == 1:
                await c.set_state({"in_combat": True})
            if isinstance(msg, CueMessage) and msg.mood == "combat":
                break
        assert isinstance(got[1], PendingMessage) and got[1].mood == "combat"
        assert [type(m) for m in got] == [CueMessage, PendingMessage, CueMessage]


async def test_clock_offset_against_a_server_with_another_clock(unused_tcp_port_factory=None):
    """A server whose clock runs 100 s ahead: the NTP estimate finds it."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(
            json.dumps(
                {
                    "type": "welcome",
                    "protocol": 1,
                    "session": "c",
                    "server_time": time.time() + 100,
                    "moods": [],
                }
            )
        )
        async for msg in ws:
            data = json.loads(msg.data)
            if data["type"] == "ping":
                await asyncio.sleep(0.005)  # the server stamps mid-way
                await ws.send_str(
                    json.dumps(
                        {
                            "type": "pong",
                            "t": data["t"],
                            "id": data.get("id"),
                            "server_time": time.time() + 100,
                        }
                    )
                )
                await asyncio.sleep(0.005)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with SegueClient(f"ws://127.0.0.1:{port}/ws", ping_samples=5) as c:
            assert c.clock_offset == pytest.approx(100.0, abs=0.05)
            assert c.clock_rtt is not None and c.clock_rtt > 0
            assert c.server_now() - time.time() == pytest.approx(100.0, abs=0.05)
    finally:
        await runner.cleanup()


async def test_clock_offset_is_near_zero_on_one_machine(tmp_path):
    async with serve(tmp_path) as live, SegueClient(live.ws) as c:
        assert abs(c.clock_offset) < 0.5
        assert abs(c.server_now() - time.time()) < 0.5
        assert c.welcome is not None and c.session == c.welcome.session


async def test_reconnect_resumes_the_session(tmp_path):
    async with serve(tmp_path) as live:
        c = SegueClient(live.ws, session="rc", backoff_initial_s=0.05)
        async with c:
            first = await c.next_cue(5)
            await started(first)
            await c.set_state({"in_combat": True})
            combat = await c.next_cue(5)
            assert combat.seq == 2
            await started(combat)
            # The network drops: the server's side of every connection is cut.
            session = live.server.manager.get("rc")
            for conn in list(session.connections):
                conn.transport.abort()
            # The client reconnects and the server resends the current cue.
            again = await c.next_cue(10)
            assert isinstance(again, CueMessage)
            assert (again.seq, again.mood, again.start_at) == (2, "combat", combat.start_at)
            assert c.reconnects == 1
            await started(again)
            await c.set_state({"in_combat": False})
            after = await c.next_cue(5)
            assert (after.seq, after.mood) == (3, "explore")  # seq continues
            await started(after)
            # A server restart (close 1012) is survived the same way.
            for ws in list(live.server.websockets):
                await ws.close(code=1012, message=b"restart")
            again = await c.next_cue(10)
            assert again.seq == 3 and c.reconnects == 2


async def test_messages_sent_while_reconnecting_are_delivered(tmp_path):
    async with serve(tmp_path) as live:  # noqa: SIM117
        async with SegueClient(live.ws, session="q", backoff_initial_s=0.2) as c:
            first = await c.next_cue(5)
            await started(first)
            for conn in list(live.server.manager.get("q").connections):
                conn.transport.abort()
            await asyncio.sleep(0.05)
            await c.set_state({"in_combat": True})  # waits for the new connection
            msgs = [await c.next_cue(10), await c.next_cue(10)]
            assert [m.mood for m in msgs] == ["explore", "combat"]  # resent, then new


async def test_unauthorized(tmp_path):
    text = SCORE + "server:\n  tokens: [sdk-token]\n"
    async with serve(tmp_path, text) as live:
        with pytest.raises(Unauthorized):
            async with SegueClient(live.ws):
                pass
        with pytest.raises(Unauthorized):
            async with SegueClient(live.ws, token="wrong"):
                pass
        async with SegueClient(live.ws, token="sdk-token") as c:
            assert (await c.next_cue(5)).type == "cue"
        async with SegueClient(live.ws, token="sdk-token", token_in_query=True) as c:
            assert (await c.next_cue(5)).type == "cue"


async def test_fatal_close_is_not_retried(tmp_path):
    async with serve(tmp_path, rate_per_s=2, burst=2) as live:  # noqa: SIM117
        async with SegueClient(live.ws, session="fl", ping_samples=1) as c:
            await c.next_cue(5)
            for _ in range(50):
                await c.send_raw('{"type":"state"}')
            with pytest.raises(ConnectionLost) as info:
                while True:
                    await c.next_cue(5)
            assert info.value.code == 1008
            assert c.reconnects == 0
            with pytest.raises(ConnectionLost):
                await c.set_state({"a": 1})


async def test_gives_up_when_the_server_is_gone(tmp_path):
    async with serve(tmp_path) as live:
        c = SegueClient(
            live.ws,
            session="gone",
            backoff_initial_s=0.02,
            backoff_max_s=0.05,
            max_reconnect_attempts=3,
        )
        await c.connect()
        try:
            await c.next_cue(5)
            await live.stop()
            with pytest.raises(ConnectionLost, match="gave up after 3 reconnect attempts"):
                while True:
                    await c.next_cue(10)
        finally:
            await c.close()


async def test_bad_url_and_refused_session(tmp_path):
    with pytest.raises(ValueError, match="url: expected"):
        await SegueClient("ftp://x/ws").connect()
    async with serve(tmp_path) as live:
        with pytest.raises(SegueClientError, match="HTTP 400"):
            await SegueClient(live.ws, session="bad id").connect()
