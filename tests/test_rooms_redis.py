"""Rooms shared by three real ``segue serve`` processes through a real redis-server.

Clients spread over the processes, states sent to different ones, one cue per change with
one ``start_at`` and ``seq``; the room's owner killed with SIGKILL mid-room and the room
going on elsewhere, states sent while it was dying applied by the next owner; decisions
and the room's state told to every process's clients; two processes that need the same
missing mood generate it once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis_support import RedisServer, require_redis
from server_support import connect_raw, recv_json

pytestmark = [pytest.mark.timeout(240), pytest.mark.services]

SCORE = """\
segue: 1
title: Shared Keep
generator: synth
cache: {{backend: redis, url: "{url}", prefix: t}}
storage: local
server:
  rooms: {{backend: redis, url: "{url}", prefix: t}}
defaults: {{duration_s: 4, format: ogg}}
moods:
  explore: {{prompt: gentle harp and flute, bpm: 90, key: D major}}
  combat: {{prompt: driving battle drums, bpm: 140, key: D minor}}
rules:
  - {{mood: combat, when: {{in_combat: true}}, priority: 10}}
  - {{mood: explore}}
transitions:
  - {{from: "*", to: "*", at: next_beat, fade_ms: 300}}
"""


class Serve:
    """One ``segue serve --no-pregen --port 0`` process; its port read from its banner."""

    def __init__(self, folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "SEGUE_TOKENS")}
        env["PYTHONUNBUFFERED"] = "1"
        self.log = open(folder / f"serve-{time.monotonic_ns()}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "segue.core", "serve", "--no-pregen", "--port", "0"],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        self.port = 0

    async def ready(self, timeout: float = 60) -> Serve:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = await loop.run_in_executor(None, self.proc.stdout.readline)
            if "serving" in line:
                self.port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
                return self
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"segue serve exited {self.proc.returncode}: {self.text()}")
        raise AssertionError("segue serve did not start")

    def text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def ws(self, session: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?session={session}"

    def http(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


async def next_cue(ws: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv_json(ws, timeout=max(0.1, deadline - time.monotonic()))
        if msg["type"] == "cue":
            return msg


async def cue_after(ws: Any, seq: int, timeout: float = 20.0) -> dict[str, Any]:
    """The first cue with a seq above ``seq`` (earlier ones are the join's)."""
    while True:
        cue = await next_cue(ws, timeout)
        if cue["seq"] > seq:
            return cue


def owner_pid(url: str, room: str) -> int | None:
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        value = client.get(f"t:room:{room}:lease")
    finally:
        client.close()
    return int(value.split("-")[0]) if value else None


# Into combat: a short debounce, then combat's track is generated (pending). Out of it: a
# debounce long enough that the wait is still on when the test looks at it.
WAIT_SCORE = SCORE.replace(
    "transitions:\n",
    "transitions:\n"
    "  - {{from: explore, to: combat, at: next_beat, debounce_ms: 1000}}\n"
    "  - {{from: combat, to: explore, at: next_beat, debounce_ms: 60000}}\n",
)


@pytest.fixture
async def cluster(tmp_path, request):
    require_redis()
    redis_server = RedisServer(tmp_path / "redis").start()
    score = getattr(request, "param", SCORE)
    (tmp_path / "adaptive_score.yaml").write_text(score.format(url=redis_server.url))
    servers = [Serve(tmp_path) for _ in range(3)]
    try:
        await asyncio.gather(*(s.ready() for s in servers))
        yield redis_server, servers
    finally:
        for s in servers:
            s.stop()
        redis_server.stop()


async def test_rooms_across_three_processes(cluster):
    redis_server, (a, b, c) = cluster
    # Two rooms owned by two processes want the same missing moods: each is generated once.
    async with connect_raw(a.ws("g1")) as g1, connect_raw(b.ws("g2")) as g2:
        first = await asyncio.gather(next_cue(g1, 60), next_cue(g2, 60))
        assert {cue["mood"] for cue in first} == {"explore"}
        assert first[0]["track"]["id"] == first[1]["track"]["id"]
        for ws in (g1, g2):
            await ws.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
        combat = await asyncio.gather(cue_after(g1, 1, 60), cue_after(g2, 1, 60))
        assert {cue["mood"] for cue in combat} == {"combat"}
    stored = [line for s in (a, b) for line in s.text().splitlines() if " stored" in line]
    assert len(stored) == 2, stored  # explore and combat, once each over both processes

    # One room, a client on each process: one cue per change, one start_at, one seq.
    async with (
        connect_raw(a.ws("room")) as ca,
        connect_raw(b.ws("room")) as cb,
        connect_raw(c.ws("room")) as cc,
    ):
        clients = [ca, cb, cc]
        joined = await asyncio.gather(*(next_cue(ws) for ws in clients))
        assert len({(j["seq"], j["start_at"], j["mood"]) for j in joined}) == 1
        seq = joined[0]["seq"]
        # A state to each process in turn, over WebSocket and over HTTP.
        async with aiohttp.ClientSession() as http:
            for sender, body in [
                (cb, {"in_combat": True}),
                (None, {"in_combat": False}),
                (cc, {"in_combat": True}),
            ]:
                if sender is None:
                    r = await http.post(a.http("/api/sessions/room/state"), json={"set": body})
                    assert r.status == 200, await r.text()
                else:
                    await sender.send(json.dumps({"type": "state", "set": body}))
                cues = await asyncio.gather(*(cue_after(ws, seq) for ws in clients))
                assert len({(q["seq"], q["start_at"], q["mood"]) for q in cues}) == 1, cues
                assert cues[0]["seq"] == seq + 1
                assert cues[0]["mood"] == ("combat" if body["in_combat"] else "explore")
                seq += 1
        playing = cues[0]

        # SIGKILL the room's owner: another process takes the room over and goes on.
        pid = owner_pid(redis_server.url, "room")
        by_pid = {s.proc.pid: (s, ws) for s, ws in zip((a, b, c), clients, strict=True)}
        assert pid in by_pid
        dead, _ = by_pid.pop(pid)
        dead.proc.send_signal(signal.SIGKILL)
        dead.proc.wait()
        killed = time.monotonic()
        while owner_pid(redis_server.url, "room") in (None, pid):
            assert time.monotonic() - killed < 10, "nobody took the room over"
            await asyncio.sleep(0.05)
        (s1, w1), (_s2, w2) = by_pid.values()
        # A bad state is refused by the server it reaches, owner or not, at once.
        await w1.send(json.dumps({"type": "state", "set": {"a..b": 1}}))
        err = await error_of(w1)
        assert err["code"] == "bad_message" and "a..b" in err["message"]
        # A client reconnecting anywhere hears the same track on the same clock.
        async with connect_raw(s1.ws("room")) as again:
            cue = await next_cue(again)
            assert (cue["seq"], cue["start_at"], cue["track"]["id"]) == (
                playing["seq"],
                playing["start_at"],
                playing["track"]["id"],
            )
            await w2.send(json.dumps({"type": "state", "set": {"in_combat": False}}))
            cues = await asyncio.gather(*(cue_after(ws, seq) for ws in (w1, w2, again)))
            assert len({(q["seq"], q["start_at"]) for q in cues}) == 1
            assert cues[0]["seq"] == seq + 1 and cues[0]["mood"] == "explore"


async def error_of(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv_json(ws, timeout=max(0.1, deadline - time.monotonic()))
        if msg["type"] == "error":
            return msg


async def test_rooms_ride_out_a_redis_outage(cluster):
    redis_server, (a, b, _c) = cluster
    async with connect_raw(a.ws("out")) as ca:
        await next_cue(ca, 60)  # A owns the room (first there) and generates explore
        async with connect_raw(b.ws("out")) as cb:
            seq = (await next_cue(cb))["seq"]
            for value in (True, False):  # both moods stored before the outage
                await ca.send(json.dumps({"type": "state", "set": {"in_combat": value}}))
                got = await asyncio.gather(cue_after(ca, seq, 60), cue_after(cb, seq, 60))
                seq = got[0]["seq"]
            redis_server.stop()
            await asyncio.sleep(1.0)
            # B cannot reach the room's owner: the client is told so, on one line.
            await cb.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
            err = await error_of(cb)
            assert err["code"] == "room_unavailable" and "redis unreachable" in err["message"]
            # A runs the room on for its own clients.
            await ca.send(json.dumps({"type": "state", "set": {"in_combat": True}}))
            during = await cue_after(ca, seq)
            assert during["seq"] == seq + 1 and during["mood"] == "combat"
            redis_server.start()
            # Redis is back: A takes its room again and B's client catches up.
            caught = await cue_after(cb, seq, 20)
            assert (caught["seq"], caught["start_at"]) == (during["seq"], during["start_at"])
            await cb.send(json.dumps({"type": "state", "set": {"in_combat": False}}))
            after = await asyncio.gather(cue_after(ca, seq + 1), cue_after(cb, seq + 1))
            assert len({(q["seq"], q["start_at"]) for q in after}) == 1
            assert after[0]["mood"] == "explore"
    for server in (a, b):
        log = server.text()
        assert "rooms: redis at redis://127.0.0.1:" in log and "unreachable" in log
        assert "is back" in log


async def message_of(ws: Any, kind: str, check: Any = None, timeout: float = 20.0) -> dict:
    """The next ``kind`` message (for which ``check`` holds, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv_json(ws, timeout=max(0.1, deadline - time.monotonic()))
        if msg["type"] == kind and (check is None or check(msg)):
            return msg


async def until_playing(cue: dict[str, Any]) -> None:
    """Wait until ``cue`` plays: transitions are looked up from the mood playing (before
    anything plays only ``*`` sources match, docs/timing.md), so a state sent earlier
    would meet another transition."""
    await asyncio.sleep(max(0.0, cue["start_at"] - time.time()) + 0.05)


async def waits_until_cue(ws: Any, mood: str, timeout: float = 60.0) -> tuple[list, list, dict]:
    """The ``decision`` and ``room`` messages before the next cue of ``mood``, and the cue."""
    deadline = time.monotonic() + timeout
    decisions: list[dict[str, Any]] = []
    rooms: list[dict[str, Any]] = []
    while True:
        msg = await recv_json(ws, timeout=max(0.1, deadline - time.monotonic()))
        if msg["type"] == "decision":
            decisions.append(msg)
        elif msg["type"] == "room":
            rooms.append(msg)
        elif msg["type"] == "cue" and msg["mood"] == mood:
            return decisions, rooms, msg


@pytest.mark.parametrize("cluster", [WAIT_SCORE], indirect=True, ids=["debounce"])
async def test_decisions_room_state_and_states_sent_to_a_dying_owner(cluster):
    redis_server, (a, b, c) = cluster
    async with connect_raw(a.ws("w")) as ca:
        explore = await next_cue(ca, 60)  # A owns the room (first there)
        assert owner_pid(redis_server.url, "w") == a.proc.pid
        async with (
            connect_raw(b.ws("w") + "&watch=state") as cb,
            connect_raw(c.ws("w")) as cc,
        ):
            await asyncio.gather(next_cue(cb), next_cue(cc))
            await until_playing(explore)
            # A state to the owner: the mood it wants must persist (debounce), then its
            # track is generated (pending), then it is cued. Every process's clients are
            # told the same waits, in the same order, and the watcher on B sees the room's
            # new state.
            await ca.send(json.dumps({"type": "state", "set": {"in_combat": True, "hp": 3}}))
            heard = await asyncio.gather(*(waits_until_cue(ws, "combat") for ws in (ca, cb, cc)))
            waits = [[(d["reason"], d["desired"], d.get("until")) for d in h[0]] for h in heard]
            until = waits[0][0][2]
            assert waits[0] == [("debounce", "combat", until), ("pending", "combat", None)]
            assert waits[1] == waits[2] == waits[0]
            assert len({(h[2]["seq"], h[2]["start_at"]) for h in heard}) == 1
            room = next(m for m in heard[1][1] if m["state"].get("hp") == 3)
            assert room["state"] == {"in_combat": True, "hp": 3}
            assert (room["reason"], room["until"]) == ("debounce", until)
            assert [m["reason"] for m in heard[1][1]][-1] == "pending"

            # Out of combat: a 60 s debounce, told everywhere with one ``until``.
            await until_playing(heard[0][2])
            await ca.send(json.dumps({"type": "state", "set": {"in_combat": False}}))
            told = await asyncio.gather(*(message_of(ws, "decision") for ws in (ca, cb, cc)))
            assert len({(d["reason"], d["desired"], d["until"]) for d in told}) == 1
            assert (told[0]["reason"], told[0]["desired"]) == ("debounce", "explore")

            # The owner freezes, then dies: states sent meanwhile to the other two (over
            # WebSocket and HTTP) wait in the room's inbox and the next owner applies them.
            a.proc.send_signal(signal.SIGSTOP)
            await cb.send(json.dumps({"type": "state", "set": {"hp": 2}}))
            async with aiohttp.ClientSession() as http:
                r = await http.post(
                    c.http("/api/sessions/w/state"), json={"set": {"in_combat": True}}
                )
                assert r.status == 200, await r.text()
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait()
            # On B: the room's state with both, and the wait's end (in either order); on C too.
            seen: dict[str, dict[str, Any]] = {}
            while len(seen) < 2:
                msg = await recv_json(cb, 20)
                if msg["type"] == "room" and msg["state"] == {"in_combat": True, "hp": 2}:
                    seen["room"] = msg
                elif msg["type"] == "decision" and msg["reason"] == "same_mood":
                    seen["decision"] = msg
            end = await message_of(cc, "decision", lambda m: m["reason"] == "same_mood")
            assert owner_pid(redis_server.url, "w") in (b.proc.pid, c.proc.pid)
            room = seen["room"]
            assert (room["mood"], room["desired"], room["reason"]) == (
                "combat",
                "combat",
                "same_mood",
            )
            assert seen["decision"]["desired"] == end["desired"] == "combat"


async def test_a_forward_whose_write_failed_is_sent_when_redis_is_back(tmp_path):
    """A state accepted for a room owned elsewhere just as Redis went away is not lost."""
    import types

    import redis

    from segue.core.server.rooms_redis import RedisRooms, RoomLink

    require_redis()
    server = RedisServer(tmp_path / "redis").start()
    rooms = RedisRooms(server.url, "t", manager=None, ttl_s=60)  # type: ignore[arg-type]
    try:
        await rooms.start()
        link = RoomLink(types.SimpleNamespace(id="r"), "t")  # type: ignore[arg-type]
        server.stop()
        assert rooms.healthy  # nothing has noticed yet: the forward is accepted
        rooms.forward(link, {"op": "state", "set": {"hp": 1}})
        for _ in range(100):
            await asyncio.sleep(0.05)
            if not rooms.healthy:
                break
        assert not rooms.healthy  # the write failed
        server.start()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        deadline = time.monotonic() + 10
        while not client.xlen("t:room:r:in"):
            assert time.monotonic() < deadline, "the forward was lost"
            await asyncio.sleep(0.05)
        ((_id, fields),) = client.xrange("t:room:r:in")
        assert json.loads(fields["m"])["set"] == {"hp": 1}
        client.close()
    finally:
        await rooms.close()
        server.stop()


class Heard:
    """A connection of a follower's session that keeps the messages sent to it."""

    def __init__(self) -> None:
        self.session: Any = None
        self.watch = False
        self.closed = False
        self.messages: list[dict[str, Any]] = []

    def send(self, frame: bytes) -> bool:
        size = frame[1] & 0x7F  # a server's text frame: unmasked, length then payload
        self.messages.append(json.loads(frame[{126: 4, 127: 10}.get(size, 2) :]))
        return True

    async def heard(self, kind: str, check: Any, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.messages:
                if msg["type"] == kind and check(msg):
                    return msg
            assert time.monotonic() < deadline, f"no {kind} in {self.messages}"
            await asyncio.sleep(0.01)


async def test_a_publication_the_lease_poll_read_first_is_still_passed_on(tmp_path):
    """A follower whose lease poll reads the owner's newer snapshot before pub/sub brings
    its publication still passes on what that publication carries (a pending notice, the
    wait it told): the poll leaves it to pub/sub, and applies a snapshot only when pub/sub
    lost it. The owner is played by the test (its snapshots from a real Director)."""
    import redis

    from segue.core.engine.director import Director
    from segue.core.server.metrics import Metrics
    from segue.core.server.rooms_redis import RedisRooms
    from segue.core.server.sessions import SessionManager

    require_redis()
    server = RedisServer(tmp_path / "redis").start()
    path = tmp_path / "adaptive_score.yaml"
    path.write_text(SCORE.format(url=server.url))
    from segue.core.score import load_score

    score = load_score(path)
    manager = SessionManager(score, lambda mood: (), Metrics(lambda: 0, lambda: 0, lambda: 0))
    rooms = manager.rooms = RedisRooms(server.url, "t", manager, ttl_s=60)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    owner = Director("r", score, lambda mood: (), lead_s=0.2)
    version = 0

    def publish(out: list[Any], *, write: bool = True, send: bool = True) -> str:
        """The owner's snapshot (written) and its publication (sent): its text."""
        nonlocal version
        version += 1
        snap = {"p": "other", "e": 1, "v": version, "in": "0-0", "d": owner.snapshot()}
        snap["pm"] = owner.desired if owner.reason == "pending" else None
        messages = [o.to_message() for o in out]
        pub = json.dumps({"p": "other", "e": 1, "v": version, "out": messages, "s": snap})
        if write:
            client.set("t:room:r:snap", json.dumps(snap))
        if send:
            client.publish("t:room:r:out", pub)
        return pub

    try:
        client.set("t:room:r:lease", "other:1", px=60_000)  # the room is owned elsewhere
        publish(owner.start(time.time()))  # pending explore
        await rooms.start()
        lease_task = next(t for t in rooms._tasks if t.get_name() == "segue-rooms-lease")
        lease_task.cancel()  # the test runs the polls
        session, _ = manager.get_or_create("r")
        conn = Heard()
        manager.attach(session, conn)  # type: ignore[arg-type]
        link = session.room
        deadline = time.monotonic() + 10
        while link.keys["out"] not in rooms._listening:
            assert time.monotonic() < deadline, "the follower did not subscribe"
            await asyncio.sleep(0.01)
        await rooms._lease_round([link])  # subscribed: it joins from the snapshot
        assert link.ready and link.version == 1
        await conn.heard("decision", lambda m: m["reason"] == "pending")

        # The owner changes the room; the poll reads the snapshot before pub/sub brings
        # the publication. It is left to pub/sub, which passes it on whole.
        outputs = owner.update(time.time(), {"in_combat": True})  # pending combat
        pub = publish(outputs, send=False)
        await rooms._lease_round([link])
        assert link.version == 1
        client.publish("t:room:r:out", pub)
        await conn.heard("pending", lambda m: m["mood"] == "combat")
        told = await conn.heard("decision", lambda m: m["desired"] == "combat")
        assert told["reason"] == "pending"
        assert link.version == 2

        # A publication lost (never sent): the poll after next applies the snapshot.
        owner.update(time.time(), {"in_combat": False})
        publish([], send=False)
        await rooms._lease_round([link])
        assert link.version == 2  # one poll: maybe on its way
        await rooms._lease_round([link])
        assert link.version == 3
        await conn.heard("decision", lambda m: m["desired"] == "explore")
    finally:
        await rooms.close()
        client.close()
        server.stop()


def test_a_redis_cluster_is_refused_on_one_line(tmp_path):
    """Rooms need one Redis: a cluster URL, or a Cluster node, is a clear error at start."""
    from redis_support import REDIS_SERVER, free_cluster_port

    from segue.core.errors import ScoreError
    from segue.core.score import load_score

    require_redis()
    path = tmp_path / "adaptive_score.yaml"
    path.write_text(SCORE.format(url="redis+cluster://10.0.0.1:7000,10.0.0.2:7000"))
    with pytest.raises(ScoreError) as info:
        load_score(path)
    assert any(
        "server.rooms.url" in line and "Redis Cluster is not supported" in line
        for line in info.value.errors
    ), info.value.errors
    port = free_cluster_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]
    node = subprocess.Popen(
        [REDIS_SERVER, *args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 60
        while True:
            try:
                assert client.info("cluster")["cluster_enabled"] == 1
                break
            except redis.ConnectionError:
                assert node.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()
        path.write_text(SCORE.format(url=f"redis://127.0.0.1:{port}/0"))
        done = subprocess.run(
            [sys.executable, "-m", "segue.core", "serve", "--no-pregen", "--port", "0"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert "Traceback" not in done.stderr, done.stderr
        assert any(
            "is a Redis Cluster node: Redis Cluster is not supported" in line for line in lines
        ), done.stderr
    finally:
        node.terminate()
        node.wait()
