"""Hostile input on a live server: every bad message is a clear error (WebSocket) or a 400
(HTTP) naming what is wrong or the limit passed; never a traceback, a 500 or a log line
per message; a session's state stays within its limits."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest
from server_support import SCORE, connect_raw, joined, recv_type, serve

DEEP = '{"type":"state","set":{"a":' + "[" * 900 + "]" * 900 + "}}"
HUGE_NUMBER = '{"type":"state","set":{"n":' + "9" * 5000 + "}}"
DOTTED = '{"type":"state","set":{"' + "a." * 30000 + 'z":1}}'
MANY_KEYS = '{"type":"state","set":{' + ",".join(f'"k{i}":{i}' for i in range(4000)) + "}}"
BIG_FLOAT = '{"type":"state","set":{"f":1' + "0" * 400 + ".5}}"

CASES = [
    (DEEP, "bad_message", "nested deeper than 16 levels (server.max_state_depth)"),
    (HUGE_NUMBER, "bad_json", "digits"),
    (DOTTED, "bad_message", "over the limit of 8 (server.max_key_parts)"),
    (MANY_KEYS, "bad_message", "over the limit of 1000 (server.max_state_keys)"),
    ('{"type":"state","set":{"s":"' + "x" * 70000 + '"}}', "too_large", "over the limit"),
    ("[" * 100000, "too_large", "over the limit"),
    ('{"type":"state","replace":' + '{"a":' * 5000 + "1" + "}" * 5001, "bad_json", "nested"),
]


async def test_bad_frames_get_a_clear_error_and_nothing_in_the_log(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with serve(tmp_path, rate_per_s=1000, burst=1000) as live:
        for i, (frame, code, words) in enumerate(CASES):
            async with connect_raw(live.ws + f"?session=bad{i}") as ws:
                await joined(ws)
                for _ in range(3):
                    await ws.send(frame)
                    error = await recv_type(ws, "error")
                    assert error["code"] == code, (frame[:40], error)
                    assert words in error["message"], error
                    assert len(error["message"]) < 300 and "\n" not in error["message"]
                    if code == "too_large":
                        break
        # The state of a session that passed none of this is what it was.
        assert live.server.manager.sessions["bad0"].state == {}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.exc_info]
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()]


async def test_state_limits_hold_per_session_and_a_change_costs_its_own_size(tmp_path):
    text = SCORE + "server: {max_state_keys: 20, max_state_bytes: 800}\n"
    async with serve(tmp_path, text) as live:
        manager = live.server.manager
        async with connect_raw(live.ws + "?session=lim") as ws:
            await joined(ws)
            for i in range(25):
                await ws.send(json.dumps({"type": "state", "set": {f"k{i}": i}, "id": i}))
            error = await recv_type(ws, "error")
            assert error["id"] == 20
            assert error["message"] == (
                "state: 21 keys, over the limit of 20 (server.max_state_keys)"
            )
            assert len(manager.sessions["lim"].state) == 20
            # Changing a key that is there is fine; so is making room first.
            await ws.send(json.dumps({"type": "state", "set": {"k0": "changed"}}))
            await ws.send(json.dumps({"type": "state", "unset": ["k1"], "set": {"new": 1}}))
            await ws.send(json.dumps({"type": "ping", "id": "sync"}))
            assert (await recv_type(ws, "pong"))["id"] == "sync"
            state = manager.sessions["lim"].state
            assert state["k0"] == "changed" and "k1" not in state and state["new"] == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"set":{"a":' + "[" * 900 + "]" * 900 + "}}", "max_state_depth"),
        ('{"set":{"n":' + "9" * 5000 + "}}", "digits"),
        ('{"set":{"' + "a." * 30000 + 'z":1}}', "max_key_parts"),
        ('{"set":{' + ",".join(f'"k{i}":{i}' for i in range(4000)) + "}}", "max_state_keys"),
        ('{"replace":' + '{"a":' * 5000 + "1" + "}" * 5001, "nested"),
    ],
)
async def test_bad_http_bodies_are_400s(tmp_path, body, words):
    async with serve(tmp_path) as live, aiohttp.ClientSession() as http:
        url = f"{live.http}/api/sessions/h/state"
        async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400, await r.text()
            error = await r.json()
            assert error["code"] in ("bad_json", "bad_message")
            assert words in error["message"]


async def test_a_range_of_thousands_of_digits_is_the_whole_file(tmp_path):
    async with serve(tmp_path) as live, aiohttp.ClientSession() as http:
        track = live.server.stored_tracks()[0]
        url = f"{live.http}/tracks/{track.filename}"
        async with http.get(url, headers={"Range": "bytes=-" + "9" * 5000}) as r:
            assert r.status == 206
            assert len(await r.read()) == track.bytes
        async with http.get(url, headers={"Range": "bytes=" + "9" * 5000 + "-"}) as r:
            assert r.status == 416
