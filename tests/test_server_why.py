"""Say why: the reason for every decision over HTTP and WebSocket, and the server's logs.

The reason itself comes from the pure director (tests/test_rules_director.py); here it
reaches clients over real sockets, and the logs a user reads with ``-v``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import aiohttp
import pytest
from server_support import SCORE, connect_raw, joined, no_message, recv_type, serve

from segue.core.logs import JsonFormatter

# Leaving combat waits 1.5 s (debounce); danger holds at least 30 s (dwell).
WHY = SCORE.replace(
    '  - {from: "*", to: "*", at: now, fade_ms: 100}\n',
    '  - {from: "*", to: "*", at: now, fade_ms: 100}\n'
    "  - {from: combat, to: explore, at: now, debounce_ms: 1500}\n"
    "  - {from: danger, to: combat, at: now, min_dwell_s: 30}\n",
)


async def test_http_state_reply_says_why_and_until(tmp_path: Path) -> None:
    async with serve(tmp_path, WHY) as live, aiohttp.ClientSession() as http:
        url = f"{live.http}/api/sessions/why-1/state"

        async def post(body: dict) -> dict:
            async with http.post(url, json=body) as r:
                assert r.status == 200
                return await r.json()

        reply = await post({"set": {"in_combat": True}})
        assert reply["cue"]["mood"] == "combat" and reply["reason"] == "cued"
        assert "until" not in reply
        await asyncio.sleep(0.3)  # the cue starts (lead 0.2 s): combat plays
        reply = await post({"set": {"gold": 3}})
        assert reply["cue"] is None and reply["reason"] == "same_mood" and "until" not in reply
        before = time.time()
        reply = await post({"set": {"in_combat": False}})
        assert (reply["mood"], reply["desired"], reply["cue"]) == ("combat", "explore", None)
        assert reply["reason"] == "debounce"
        assert before + 1.5 - 0.01 <= reply["until"] <= time.time() + 1.5 + 0.01
        # Into danger, then wanting combat back: the dwell of 30 s holds it.
        await post({"set": {"in_combat": True, "player.health": 0.1}})
        await asyncio.sleep(0.3)
        reply = await post({"set": {"player.health": 0.9}})
        assert (reply["mood"], reply["desired"], reply["reason"]) == ("danger", "combat", "dwell")
        assert reply["until"] > time.time() + 29


async def test_http_reply_says_pending_generation(tmp_path: Path) -> None:
    async with (
        serve(tmp_path, WHY, pregen=["explore"]) as live,
        aiohttp.ClientSession() as http,
        http.post(f"{live.http}/api/sessions/p/state", json={"set": {"in_combat": True}}) as r,
    ):
        reply = await r.json()
    assert (reply["mood"], reply["desired"], reply["cue"]) == ("explore", "combat", None)
    assert reply["reason"] == "pending" and "until" not in reply


async def test_websocket_gets_a_decision_when_a_wait_starts_or_ends(tmp_path: Path) -> None:
    async with serve(tmp_path, WHY) as live, connect_raw(f"{live.ws}?session=w") as ws:
        await joined(ws)
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        assert (await recv_type(ws, "cue"))["mood"] == "combat"
        await asyncio.sleep(0.3)  # the cue starts (lead 0.2 s): combat plays
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": False}}))
        decision = await recv_type(ws, "decision")
        assert decision["mood"] == "combat" and decision["desired"] == "explore"
        assert decision["reason"] == "debounce" and decision["until"] > time.time()
        # The same wait again: nothing new to say.
        await ws.send(json.dumps({"type": "state", "set": {"gold": 1}}))
        await no_message(ws, 0.3)
        # The desire goes back inside the debounce: the wait ends without a cue.
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        ended = await recv_type(ws, "decision")
        assert (ended["desired"], ended["reason"]) == ("combat", "same_mood")
        assert "until" not in ended
        # A wait that ends in a cue: the cue says it, with no decision after it.
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": False}}))
        assert (await recv_type(ws, "decision"))["reason"] == "debounce"
        cue = await recv_type(ws, "cue", timeout=5)
        assert cue["mood"] == "explore"
        await no_message(ws, 0.3)


async def test_verbose_logs_connections_decisions_stingers_and_generations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="segue")
    async with (
        serve(tmp_path, WHY, pregen=["explore", "combat", "victory"]) as live,
        connect_raw(f"{live.ws}?session=logged") as ws,
    ):
        await joined(ws)
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        await recv_type(ws, "cue")
        await asyncio.sleep(0.3)
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": False}}))
        await recv_type(ws, "decision")
        await ws.send(json.dumps({"type": "event", "name": "boss_defeated"}))
        await recv_type(ws, "stinger")
        await ws.send(json.dumps({"type": "state", "set": {"player.health": 0.1}}))
        await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        await recv_type(ws, "pending")
    lines = [r.getMessage() for r in caplog.records]
    text = "\n".join(lines)
    assert "session logged: connection from 127.0.0.1 (new session, 1 connected)" in text
    assert "session logged: connection from 127.0.0.1 closed (code" in text
    cued = next(line for line in lines if "'in_combat': True}" in line and "cued" in line)
    assert "desired combat, mood combat: cued combat (seq 2, starts in" in cued
    waiting = next(line for line in lines if "'in_combat': False}" in line)
    assert "desired explore, mood combat: debounce until" in waiting
    assert "session logged: stinger victory for event boss_defeated" in text
    assert "desired danger, mood combat: pending generation" in text
    assert "generating danger#0" in text
    # The same records as JSON lines: the decision's fields are keys.
    record = next(r for r in caplog.records if "debounce until" in r.getMessage())
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "debug" and doc["logger"] == "segue.server"
    assert (doc["session"], doc["desired"], doc["reason"]) == ("logged", "explore", "debounce")
    assert doc["mood"] == "combat" and doc["until"] > 0 and doc["time"].endswith("+00:00")
