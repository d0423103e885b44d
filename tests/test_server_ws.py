"""The WebSocket protocol v1 end to end: real server on a free port, real sockets.

Each test runs its own server on a score whose tracks come from the fast ``tone``
generator (see server_support.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import aiohttp
import pytest
from server_support import (
    SCORE,
    connect_raw,
    joined,
    no_message,
    recv_json,
    recv_type,
    serve,
    started,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

pytestmark = pytest.mark.timeout(60)


async def test_join_gets_welcome_cue_prefetch_in_order(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=s1") as ws:
        msgs = await joined(ws)
        assert [m["type"] for m in msgs] == ["welcome", "cue", "prefetch"]
        welcome, cue, prefetch = msgs
        assert welcome["protocol"] == 1 and welcome["session"] == "s1"
        assert welcome["moods"] == ["explore", "combat", "danger", "victory"]
        assert abs(welcome["server_time"] - time.time()) < 5
        # A new session is cued at once with the mood of the empty state.
        assert cue["mood"] == "explore" and cue["seq"] == 1 and cue["previous"] is None
        assert cue["session"] == "s1"
        assert cue["start_at"] > cue["server_time"]  # at least the lead time ahead
        track = cue["track"]
        assert track["url"] == f"/tracks/{track['id']}.wav" and track["mood"] == "explore"
        # Prefetch lists every reachable mood's tracks, stinger included.
        moods = sorted(t["mood"] for t in prefetch["tracks"])
        assert moods == ["combat", "combat", "danger", "explore", "victory"]


@pytest.mark.parametrize("query", ["", "?session="])
async def test_session_id_made_by_server_when_missing(tmp_path, query):
    async with serve(tmp_path) as live, connect_raw(live.ws + query) as ws:
        welcome = await recv_json(ws)
        assert welcome["type"] == "welcome"
        assert 1 <= len(welcome["session"]) <= 64
        cue = await recv_type(ws, "cue")
        assert cue["session"] == welcome["session"]


@pytest.mark.parametrize("bad", ["a%20b", "x" * 65, "..%2F..", "%C3%A9", "%20"])
async def test_bad_session_id_is_refused_before_upgrade(tmp_path, bad):
    async with serve(tmp_path) as live:
        with pytest.raises(InvalidStatus) as info:
            async with connect_raw(f"{live.ws}?session={bad}"):
                pass
        assert info.value.response.status_code == 400
        body = json.loads(info.value.response.body)
        assert body["code"] == "bad_message"
        assert body["message"].startswith("session: must be 1-64 characters")


async def test_state_changes_mood_and_seq_grows(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=s") as ws:
        _welcome, first, _prefetch = await joined(ws)
        await started(first)
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        cue = await recv_type(ws, "cue")
        assert (cue["mood"], cue["previous"], cue["seq"]) == ("combat", "explore", 2)
        await started(cue)
        assert cue["transition"] == {
            "at": "now",
            "entry": "start",
            "fade": "cross",
            "fade_ms": 100,
            "exit": "fade",
        }
        await ws.send(json.dumps({"type": "state", "set": {"player": {"health": 0.1}}}))
        cue = await recv_type(ws, "cue")
        assert (cue["mood"], cue["previous"], cue["seq"]) == ("danger", "combat", 3)
        await started(cue)
        await ws.send(json.dumps({"type": "state", "unset": ["in_combat"]}))
        cue = await recv_type(ws, "cue")
        assert (cue["mood"], cue["seq"]) == ("explore", 4)
        await ws.send(json.dumps({"type": "state", "replace": {"in_combat": True}}))
        cue = await recv_type(ws, "cue")
        assert (cue["mood"], cue["seq"]) == ("combat", 5)
        # A state that keeps the mood sends nothing.
        await ws.send(json.dumps({"type": "state", "set": {"score": 10}}))
        await no_message(ws, 0.3)


async def test_variants_rotate_without_immediate_repeat(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=v") as ws:
        await joined(ws)
        seen = []
        for i in range(6):
            await ws.send(json.dumps({"type": "state", "set": {"in_combat": i % 2 == 0}}))
            cue = await recv_type(ws, "cue")
            if cue["mood"] == "combat":
                seen.append(cue["track"]["variant"])
        assert len(seen) == 3
        assert all(a != b for a, b in itertools.pairwise(seen))


async def test_event_sends_stinger_and_unknown_event_errors(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=e") as ws:
        await joined(ws)
        await ws.send(json.dumps({"type": "event", "name": "boss_defeated", "data": {"x": 1}}))
        stinger = await recv_json(ws)
        assert stinger["type"] == "stinger"
        assert stinger["name"] == "victory" and stinger["event"] == "boss_defeated"
        assert stinger["track"]["loop"] is False
        assert stinger["at"] == "next_beat" and stinger["start_at"] >= stinger["server_time"]
        await ws.send(json.dumps({"type": "event", "name": "dragon", "id": "e1"}))
        err = await recv_json(ws)
        assert err == {
            "type": "error",
            "code": "unknown_event",
            "message": "event.name: unknown event 'dragon' (known: boss_defeated)",
            "id": "e1",
        }


async def test_ping_pong_echoes_t_and_id(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=p") as ws:
        await joined(ws)
        before = time.time()
        await ws.send(json.dumps({"type": "ping", "t": 123.25, "id": 9}))
        pong = await recv_json(ws)
        assert pong["type"] == "pong" and pong["t"] == 123.25 and pong["id"] == 9
        assert before - 1 <= pong["server_time"] <= time.time() + 1


@pytest.mark.parametrize(
    "frame, code, fragment",
    [
        ("{not json", "bad_json", "not valid JSON"),
        ("[]", "bad_message", "message: must be a JSON object"),
        ('{"type":"state","set":[],"id":"x"}', "bad_message", "state.set: must be an object"),
        ('{"type":"state","set":{"a..b":1}}', "bad_message", "state: set: bad key"),
        ('{"type":"event","id":3}', "bad_message", "event.name: missing"),
        ('{"type":"dance","id":4}', "unknown_type", "unknown message type 'dance'"),
    ],
)
async def test_bad_messages_get_errors_and_the_connection_stays(tmp_path, frame, code, fragment):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=b") as ws:
        await joined(ws)
        await ws.send(frame)
        err = await recv_json(ws)
        assert err["type"] == "error" and err["code"] == code
        assert fragment in err["message"], err["message"]
        sent = json.loads(frame) if frame.startswith('{"') else {}
        if "id" in sent:
            assert err["id"] == sent["id"]
        # Still open and working.
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        assert (await recv_type(ws, "cue"))["mood"] == "combat"


async def test_binary_frame_is_a_bad_message(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=bin") as ws:
        await joined(ws)
        await ws.send(b'{"type":"ping"}')
        err = await recv_json(ws)
        assert err["code"] == "bad_message" and "binary" in err["message"]


async def test_oversized_frame_gets_too_large_then_1009(tmp_path):
    async with (
        serve(tmp_path, max_frame_bytes=4096) as live,
        connect_raw(f"{live.ws}?session=big") as ws,
        connect_raw(f"{live.ws}?session=big") as other,
    ):
        await joined(ws)
        await joined(other)
        await ws.send(json.dumps({"type": "state", "set": {"blob": "x" * 5000}}))
        err = await recv_json(ws)
        assert err["code"] == "too_large" and "over the limit of 4096" in err["message"]
        with pytest.raises(ConnectionClosed) as info:
            await recv_json(ws)
        assert info.value.rcvd.code == 1009
        # The other connection of the same session is untouched.
        await other.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        assert (await recv_type(other, "cue"))["mood"] == "combat"
        # Far over the limit: aiohttp itself closes with 1009.
        async with connect_raw(f"{live.ws}?session=huge") as ws:
            await joined(ws)
            await ws.send("x" * 20000)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await recv_json(ws)
            assert info.value.rcvd.code == 1009


async def test_flood_gets_rate_limited_then_1008_and_others_are_fine(tmp_path):
    async with (
        serve(tmp_path, rate_per_s=5, burst=5) as live,
        connect_raw(f"{live.ws}?session=f") as ws,
        connect_raw(f"{live.ws}?session=g") as calm,
    ):
        await joined(ws)
        await joined(calm)
        for i in range(200):
            await ws.send(json.dumps({"type": "ping", "t": i}))
        codes = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                msg = await recv_json(ws)
                if msg["type"] == "error":
                    codes.append(msg["code"])
        assert info.value.rcvd.code == 1008
        assert codes and set(codes) == {"rate_limited"}
        await calm.send(json.dumps({"type": "ping", "t": 1}))
        assert (await recv_type(calm, "pong"))["t"] == 1


async def test_two_connections_of_a_session_get_one_cue_with_one_start_at(tmp_path):
    async with (
        serve(tmp_path) as live,
        connect_raw(f"{live.ws}?session=room") as a,
        connect_raw(f"{live.ws}?session=room") as b,
    ):
        ja, jb = await joined(a), await joined(b)
        assert ja[1] == {**jb[1], "server_time": ja[1]["server_time"]}  # same first cue
        await a.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        ca, cb = await recv_type(a, "cue"), await recv_type(b, "cue")
        assert ca == cb
        assert ca["mood"] == "combat" and ca["seq"] == 2
        await b.send(json.dumps({"type": "event", "name": "boss_defeated"}))
        sa, sb = await recv_type(a, "stinger"), await recv_type(b, "stinger")
        assert sa == sb


async def test_late_joiner_gets_the_playing_cue_with_start_at_in_the_past(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=late") as first:
        await joined(first)
        await first.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        cue = await recv_type(first, "cue")
        await asyncio.sleep(max(0.0, cue["start_at"] - time.time()) + 0.3)
        async with connect_raw(f"{live.ws}?session=late") as late:
            msgs = await joined(late)
            cues = [m for m in msgs if m["type"] == "cue"]
            assert len(cues) == 1
            assert cues[0]["seq"] == cue["seq"] and cues[0]["mood"] == "combat"
            assert cues[0]["start_at"] == cue["start_at"]
            assert cues[0]["start_at"] < cues[0]["server_time"]  # in the past: seek


async def test_joiner_before_a_cue_starts_gets_the_playing_and_the_coming_cue(tmp_path):
    slow = SCORE.replace("at: now, fade_ms: 100", "at: next_bar, fade_ms: 100")
    async with serve(tmp_path, slow) as live, connect_raw(f"{live.ws}?session=j") as first:
        (_w, first_cue, _p) = await joined(first)
        await asyncio.sleep(max(0.0, first_cue["start_at"] - time.time()) + 0.05)
        await first.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        coming = await recv_type(first, "cue")
        assert coming["start_at"] > time.time()  # the next bar (2 s at 120 BPM)
        async with connect_raw(f"{live.ws}?session=j") as late:
            cues = [m for m in await joined(late) if m["type"] == "cue"]
            assert [c["seq"] for c in cues] == [1, 2]
            assert cues[0]["mood"] == "explore" and cues[1]["mood"] == "combat"
            assert cues[1]["start_at"] == coming["start_at"]


DWELL_DEBOUNCE = SCORE.replace(
    '  - {from: "*", to: "*", at: now, fade_ms: 100}',
    '  - {from: "*", to: "*", at: now, fade_ms: 100, min_dwell_s: 1.5}\n'
    "  - {from: combat, to: explore, at: now, fade_ms: 100, debounce_ms: 600}",
)


async def test_debounce_end_to_end(tmp_path):
    async with (
        serve(tmp_path, DWELL_DEBOUNCE) as live,
        connect_raw(f"{live.ws}?session=d") as ws,
    ):
        await joined(ws)
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        combat = await recv_type(ws, "cue")  # first change: no dwell on the first cue
        assert combat["mood"] == "combat"
        # Wait out combat's dwell, so only the debounce is in play.
        await asyncio.sleep(max(0.0, combat["start_at"] + 1.5 - time.time()) + 0.05)
        # A desire that flips back inside the debounce cancels silently.
        # (Sent back to back, so that even a slow machine flips back inside the window.)
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": False}}))
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        # No cue: only the `decision` notices of the wait and its end (clients may ignore).
        notices = [await recv_json(ws), await recv_json(ws)]
        assert [n["type"] for n in notices] == ["decision", "decision"]
        assert [n["reason"] for n in notices] == ["debounce", "same_mood"]
        await no_message(ws, 0.8)
        # A desire that persists is cued once the debounce has passed.
        sent = time.time()
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": False}}))
        cue = await recv_type(ws, "cue", timeout=5)
        assert cue["mood"] == "explore" and cue["seq"] == combat["seq"] + 1
        assert cue["server_time"] >= sent + 0.6 - 0.01


async def test_dwell_end_to_end(tmp_path):
    async with (
        serve(tmp_path, DWELL_DEBOUNCE) as live,
        connect_raw(f"{live.ws}?session=w") as ws,
    ):
        _welcome, first, _prefetch = await joined(ws)
        await started(first)
        await asyncio.sleep(1.5)  # explore's own dwell
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        combat = await recv_type(ws, "cue")
        await started(combat)
        await ws.send(json.dumps({"type": "state", "set": {"player.health": 0.1}}))
        danger = await recv_type(ws, "cue", timeout=5)
        assert danger["mood"] == "danger"
        # Combat holds at least its dwell, counted from its start_at.
        assert danger["start_at"] >= combat["start_at"] + 1.5 - 1e-6
        assert danger["server_time"] >= combat["start_at"] + 1.5 - 0.25


async def test_tracks_and_json_stay_consistent_over_many_messages(tmp_path):
    async with (
        serve(tmp_path, rate_per_s=1000, burst=1000) as live,
        connect_raw(f"{live.ws}?session=many") as ws,
    ):
        await joined(ws)
        for i in range(100):
            await ws.send(json.dumps({"type": "state", "set": {"in_combat": i % 2 == 0}}))
        seqs = []
        for _ in range(100):
            cue = await recv_type(ws, "cue")
            seqs.append(cue["seq"])
        assert seqs == list(range(2, 102))


async def test_slow_reader_is_dropped_and_never_delays_others(tmp_path):
    async with serve(
        tmp_path, rate_per_s=100000, burst=100000, send_buffer_bytes=16 * 1024
    ) as live:
        # A raw socket with a tiny receive window that never reads.
        import socket

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", live.port))
        sock.sendall(
            b"GET /ws?session=slow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            async with connect_raw(f"{live.ws}?session=slow") as fast:
                await joined(fast)
                n = 3000
                got = 0
                for i in range(n):
                    await fast.send(json.dumps({"type": "state", "set": {"in_combat": i % 2 == 0}}))
                for _ in range(n):
                    await recv_type(fast, "cue")
                    got += 1
                assert got == n
                session = live.server.manager.get("slow")
                assert session is not None and len(session.connections) == 1
                assert live.server.metrics.slow_drops == 1
        finally:
            sock.close()


async def test_http_state_post_reaches_websocket_clients(tmp_path):
    async with serve(tmp_path) as live, connect_raw(f"{live.ws}?session=h") as ws:
        await joined(ws)
        async with aiohttp.ClientSession() as http:
            r = await http.post(
                f"{live.http}/api/sessions/h/state", json={"set": {"in_combat": True}}
            )
            assert r.status == 200
            body = await r.json()
        assert body["mood"] == "combat" and body["desired"] == "combat"
        cue = await recv_type(ws, "cue")
        assert cue == {**body["cue"], "server_time": cue["server_time"]}
