"""A room's state is visible to the room: connections that ask (``?watch=state``) get
a ``room`` message whenever the state or the decision changes, whoever changed it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import aiohttp
from server_support import connect_raw, joined, no_message, recv_json, recv_type, serve


async def test_watchers_see_state_sent_by_others(tmp_path: Path) -> None:
    async with (
        serve(tmp_path) as live,
        connect_raw(f"{live.ws}?session=room-1&watch=state") as watcher,
        connect_raw(f"{live.ws}?session=room-1") as player,
    ):
        # On joining, the room as it is: empty, the default mood cued.
        first = await joined(watcher)
        room = next(m for m in first if m["type"] == "room")
        assert room == {
            "type": "room",
            "session": "room-1",
            "state": {},
            "mood": "explore",
            "desired": "explore",
            "reason": "cued",
        }
        assert all(m["type"] != "room" for m in await joined(player))
        # Another connection's state reaches the watcher, nested as the rules read it.
        await player.send(json.dumps({"type": "state", "set": {"player.health": 0.5}}))
        room = await recv_type(watcher, "room")
        assert room["state"] == {"player": {"health": 0.5}}
        assert (room["mood"], room["reason"]) == ("explore", "same_mood")
        # A change that cues: the watcher hears the state with the cued mood.
        await player.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        msgs = [await recv_json(watcher), await recv_json(watcher)]
        assert [m["type"] for m in msgs] == ["cue", "room"]
        assert msgs[1]["state"] == {"player": {"health": 0.5}, "in_combat": True}
        assert (msgs[1]["mood"], msgs[1]["desired"]) == ("combat", "combat")
        # ...and an HTTP call's.
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{live.http}/api/sessions/room-1/state", json={"unset": ["player"]}) as r,
        ):
            assert r.status == 200
        room = await recv_type(watcher, "room")
        assert room["state"] == {"in_combat": True}
        # The same state again changes nothing: nothing is said.
        await player.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        await no_message(watcher, 0.3)
        # A connection that did not ask hears no room messages at all (its cue, yes).
        heard = []
        with contextlib.suppress(TimeoutError):
            while True:
                heard.append((await recv_json(player, timeout=0.3))["type"])
        assert heard == ["cue"]


async def test_tracks_stored_for_another_room_leave_a_watchers_room_unsaid(
    tmp_path: Path,
) -> None:
    """A track stored (another room's pending mood) changes nothing in a room where nothing
    waits: its watchers get the new prefetch, and no ``room`` message (no state changed,
    and no wait ended: ``same_mood`` would say one did)."""
    async with (
        serve(tmp_path, pregen=["explore", "combat", "victory"]) as live,
        connect_raw(f"{live.ws}?session=calm&watch=state") as watcher,
        connect_raw(f"{live.ws}?session=fight") as player,
    ):
        first = await joined(watcher)
        room = next(m for m in first if m["type"] == "room")
        assert (room["mood"], room["reason"]) == ("explore", "cued")
        await joined(player)
        danger = {"in_combat": True, "player.health": 0.1}
        await player.send(json.dumps({"type": "state", "set": danger}))
        assert (await recv_type(player, "pending"))["mood"] == "danger"
        assert (await recv_type(player, "cue"))["mood"] == "danger"
        heard = []
        while not heard or heard[-1]["type"] != "prefetch":
            heard.append(await recv_json(watcher))
        assert [m["type"] for m in heard] == ["prefetch"]
        assert "danger" in {t["mood"] for t in heard[0]["tracks"]}
        await no_message(watcher, 0.3)


async def test_watch_takes_state_only(tmp_path: Path) -> None:
    async with (
        serve(tmp_path) as live,
        aiohttp.ClientSession() as http,
        http.get(f"{live.ws}?session=r&watch=everything".replace("ws://", "http://")) as r,
    ):
        assert r.status == 400
        body = await r.json()
    assert body["code"] == "bad_message"
    assert body["message"] == "watch: must be 'state' (the room's state), not 'everything'"
