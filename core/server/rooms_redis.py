"""Rooms shared by several ``segue serve`` processes through Redis (``server.rooms``).

One process at a time *owns* a room: it holds the room's lease in Redis and runs its
Director (rules, debounce and dwell timers, the musical clock); every other process with
clients in the room keeps a *replica* of the Director, restored from the owner's
snapshots, to answer late joiners. The pattern is Colyseus's single ownership with a
fencing epoch and Centrifugo's last-value snapshot:

- ``<prefix>:room:<id>:lease`` = ``<process>:<epoch>``, ``PX`` ``LEASE_MS``, renewed every
  ``POLL_S`` by the owner. Taking it increments ``<prefix>:room:<id>:epoch``. Every write
  the owner makes is a script that first checks the lease still holds its value, so a
  process that lost the room (paused, partitioned) can no longer change it (fencing).
- ``<prefix>:room:<id>:snap``: the owner's latest snapshot (Director state, the playing
  cue and its ``start_at``, ``seq``, the pending target, the epoch, the last inbox entry
  applied), written and ``PUBLISH``ed to ``<prefix>:room:<id>:out`` with the messages it
  sent (cues, stingers, pending) on every change, in one script.
- ``<prefix>:room:<id>:in``: a stream of the state and event messages that clients sent
  to other processes; the owner reads it (one blocking ``XREAD`` for all its rooms) and
  records the last entry applied in its snapshot, so a new owner applies what the old one
  had not.

A process that has clients in a room and does not own it tries to take the lease every
``POLL_S``: when the owner dies the lease expires after ``LEASE_MS`` and the room goes on
from the snapshot within ``LEASE_MS + POLL_S``. The attempt also reads the snapshot, but a
follower applies it only where pub/sub cannot bring it (``_poll_follows``): pub/sub brings
every publication in order with what it carried, and a snapshot applied ahead of it would
drop those. The Director stays pure (core/engine); this module is the I/O around it.

Redis unreachable: the owner's rooms run on in its process (timers, cues to its own
clients); other processes' clients of those rooms hear nothing new, and states sent to a
process that does not own the room are refused (``room_unavailable``). When Redis is back
the owner takes its lease again (a new epoch) and writes its snapshot; the other processes
wait ``2 x LEASE_MS`` before they try to take rooms, so a live owner keeps its rooms and
only a dead one's are taken over. A process that finds another holding its room (a
partition longer than the lease) follows that one's snapshot.

Delivery: a state or event sent to a process that does not own the room is applied at
least once. It waits in the room's stream until an owner reads it; the owner records the
last entry applied in the snapshot that carries its effect (one script), and a new owner
reads on from there. So what was sent while the owner was dying or frozen, and what a dead
owner applied but never got into Redis, is applied by the next owner; a forward whose
write failed is sent again when Redis is back (for ``FORWARD_KEEP_S``). Lost with a dead
owner: the states sent to it directly that it applied but had not yet written to Redis
(its snapshot write is one pipelined round trip after the change).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from segue.core.cue import Cue, Duck, Layers, Pending, Stinger
from segue.core.errors import ConfigError
from segue.core.protocol import dumps as _std_dumps
from segue.core.score import Duck as DuckSpec
from segue.core.score_check import CLUSTER_REFUSED
from segue.core.server.wire import frame_message

if TYPE_CHECKING:
    from segue.core.server.sessions import Session, SessionManager

log = logging.getLogger("segue.rooms")

LEASE_MS = 1000  # a dead owner's rooms are taken over after this (plus up to POLL_S)
POLL_S = 0.25  # lease renewal / takeover attempts
XREAD_BLOCK_MS = 200  # how soon a room just taken over has its inbox read
INBOX_MAXLEN = 10_000
# Forwards accepted before an outage was known are sent again until Redis is back, for
# at most this long and this many (older ones are dropped, and logged).
FORWARD_KEEP_S = 30.0
FORWARD_KEEP = 1000

# KEYS: lease, epoch, snap. ARGV: process id, lease ms. -> {epoch or 0, snapshot or false}
_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur == false then
  local e = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. e, 'PX', ARGV[2])
  return {e, redis.call('GET', KEYS[3])}
end
return {0, redis.call('GET', KEYS[3])}
"""
# KEYS: lease, snap, inbox, epoch. ARGV: lease value, lease ms, ttl ms, process id
# -> 1 held; -epoch: it had expired (an outage) and is taken again; 0 another holds it
_RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  return 1
end
if cur == false then
  local e = redis.call('INCR', KEYS[4])
  redis.call('SET', KEYS[1], ARGV[4] .. ':' .. e, 'PX', ARGV[2])
  return -e
end
return 0
"""
# KEYS: lease, snap, channel. ARGV: lease value, snapshot, publication, ttl ms
_PUBLISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
  redis.call('PUBLISH', KEYS[3], ARGV[3])
  return 1
end
return 0
"""
# KEYS: lease. ARGV: lease value
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


try:  # a declared dependency: several times faster than json for a room's snapshot
    import orjson

    def _dumps(obj: Any) -> str:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:  # what orjson refuses (an integer over 64 bits): json can
            return _std_dumps(obj)

except ImportError:  # pragma: no cover
    _dumps = _std_dumps


class RoomUnavailable(Exception):
    """A message for a room owned elsewhere cannot reach its owner (Redis unreachable)."""


class RoomLink:
    """This process's side of one shared room."""

    __slots__ = (
        "epoch",
        "in_id",
        "keys",
        "lease_value",
        "owner",
        "polled",
        "ready",
        "session",
        "version",
    )

    def __init__(self, session: Session, prefix: str) -> None:
        self.session = session
        base = f"{prefix}:room:{session.id}"
        self.keys = {
            "lease": f"{base}:lease",
            "epoch": f"{base}:epoch",
            "snap": f"{base}:snap",
            "in": f"{base}:in",
            "out": f"{base}:out",
        }
        self.owner = False
        self.epoch = 0  # the epoch of the newest snapshot seen or made here
        self.version = 0  # the owner's publication count within the epoch
        self.lease_value = ""
        self.in_id = "0-0"  # the last inbox entry applied (owner)
        self.ready = False  # has a Director state: started here or restored
        # (epoch, version) of a snapshot the lease poll read and left to pub/sub, or None
        self.polled: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"RoomLink({self.session.id!r}, owner={self.owner}, epoch={self.epoch})"


def _outputs_messages(outputs: Any) -> list[dict[str, Any]]:
    out = []
    for o in outputs:
        if isinstance(o, Cue | Stinger | Layers | Duck):
            msg = o.to_message(0.0)
            del msg["server_time"]  # each server stamps its own when it sends
            out.append(msg)
        elif isinstance(o, Pending):
            out.append(o.to_message())
    return out


class RedisRooms:
    """Every shared room this process has clients in (see the module docstring)."""

    def __init__(self, url: str, prefix: str, manager: SessionManager, ttl_s: float) -> None:
        self.url = url
        self.prefix = prefix
        self.manager = manager
        self.ttl_ms = int((ttl_s + 60) * 1000)
        self.proc = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.links: dict[str, RoomLink] = {}
        self.healthy = True
        self.round_trips = 0  # Redis commands sent (benchmarks/rooms.py)
        self._redis: Any = None
        self._reader_redis: Any = None
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._subs_dirty = asyncio.Event()
        self._listening: set[str] = set()  # channels whose subscription Redis confirmed
        self._closed = False
        self._grace_until = 0.0

    def _safe_url(self) -> str:
        _head, sep, tail = self.url.rpartition("@")
        return ("redis://…@" + tail) if sep else self.url

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        import redis.asyncio as aredis

        opts = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0, "decode_responses": True}
        self._redis = aredis.Redis.from_url(self.url, **opts)
        # XREAD blocks its connection: a client of its own.
        self._reader_redis = aredis.Redis.from_url(
            self.url, socket_connect_timeout=2.0, decode_responses=True
        )
        try:
            await self._redis.ping()
            cluster = int((await self._redis.info("cluster")).get("cluster_enabled", 0))
        except Exception as exc:
            self._unhealthy(exc)
        else:
            if cluster:
                await self._close_clients()
                raise ConfigError(
                    f"server.rooms.url: redis at {self._safe_url()} is a Redis Cluster node: "
                    + CLUSTER_REFUSED
                )
            log.info("rooms: shared through redis at %s (process %s)", self._safe_url(), self.proc)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._lease_loop(), name="segue-rooms-lease"),
            loop.create_task(self._writer(), name="segue-rooms-writer"),
            loop.create_task(self._inbox_loop(), name="segue-rooms-inbox"),
            loop.create_task(self._subscriber(), name="segue-rooms-sub"),
        ]

    async def close(self) -> None:
        """Stop, handing every room owned here over at once (the leases are released)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                for link in self.links.values():
                    if link.owner:
                        await self._redis.eval(_RELEASE, 1, link.keys["lease"], link.lease_value)
            await self._close_clients()
        self.links.clear()

    async def _close_clients(self) -> None:
        for client in (self._redis, self._reader_redis):
            with contextlib.suppress(Exception):
                await client.aclose()

    def _unhealthy(self, exc: BaseException) -> None:
        # No room is taken over until Redis has been back for a while (see _healthy).
        self._grace_until = float("inf")
        if self.healthy:
            self.healthy = False
            if str(exc).startswith(("MOVED", "ASK", "CROSSSLOT", "CLUSTERDOWN")):
                # A Redis that became a Cluster node after the start: say so.
                log.error("rooms: redis at %s: %s", self._safe_url(), CLUSTER_REFUSED)
            log.error(
                "rooms: redis at %s unreachable (%s): rooms owned here keep running here; "
                "other servers' clients of them hear nothing new until it is back",
                self._safe_url(),
                " ".join(str(exc).split()) or type(exc).__name__,
            )

    def _healthy(self) -> None:
        if self._grace_until == float("inf"):
            self._grace_until = time.monotonic() + 2 * LEASE_MS / 1000
        if not self.healthy:
            self.healthy = True
            log.warning("rooms: redis at %s is back", self._safe_url())

    # --- what sessions call ----------------------------------------------------------------

    def join(self, session: Session) -> RoomLink:
        """A room this process now has a session for: take it, or follow its owner."""
        link = RoomLink(session, self.prefix)
        self.links[session.id] = link
        self._wake.set()
        self._subs_dirty.set()
        return link

    def leave(self, session: Session) -> None:
        """The session expired here: hand the room over if owned, stop following it."""
        link = self.links.pop(session.id, None)
        if link is None:
            return
        if link.owner:
            link.owner = False
            self._queue.put_nowait(("release", link))
        self._subs_dirty.set()

    def changed(self, link: RoomLink, outputs: Any, now: float) -> None:
        """The owner's Director changed: snapshot and publish (in order, in the background)."""
        session = link.session
        link.version += 1
        snap = {
            "p": self.proc,
            "e": link.epoch,
            "v": link.version,
            "in": link.in_id,
            "pm": session.pending_mood,
            "d": session.director.snapshot(),
            "t": now,
        }
        text = _dumps(snap)
        # What the owner sent, as JSON texts: a cue from the encoder's remembered parts
        # (its server_time is each relaying server's own, set there).
        encoder = self.manager.encoder
        out = []
        for o in outputs:
            if type(o) is Cue:
                out.append(encoder.cue_payload(o, 0.0).decode())
            else:
                out.extend(_dumps(m) for m in _outputs_messages((o,)))
        head = _dumps({"p": self.proc, "e": link.epoch, "v": link.version})
        # The publication carries the snapshot too: one message, applied whole.
        pub = f'{head[:-1]},"out":[{",".join(out)}],"s":{text}}}'
        self._queue.put_nowait(("publish", (link, text, pub)))

    def forward(self, link: RoomLink, message: dict[str, Any]) -> None:
        """A state or event for a room owned elsewhere: to its owner, through the inbox."""
        if not self.healthy:
            raise RoomUnavailable(
                f"room {link.session.id}: redis unreachable, the message cannot reach the "
                "server that runs this room"
            )
        text = json.dumps(message, separators=(",", ":"))
        self._queue.put_nowait(("forward", (link, text, time.monotonic())))

    # --- background work -------------------------------------------------------------------

    async def _writer(self) -> None:
        """Publications, forwards and releases, in order, batched into pipelines."""
        retry: list[tuple[str, Any]] = []  # forwards a failed write could not send
        stale: set[RoomLink] = set()  # owned rooms whose publication a failed write lost
        while True:
            jobs = retry or [await self._queue.get()]
            retry = []
            while not self._queue.empty() and len(jobs) < 256:
                jobs.append(self._queue.get_nowait())
            try:
                await self._write(jobs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._unhealthy(exc)
                # Forwards were accepted (their senders were not told): sent again when
                # Redis is back, at least once (an XADD whose answer was lost is sent
                # twice). Publications are not kept (a room changes many times during an
                # outage): the room's next snapshot replaces them.
                retry = self._kept([job for job in jobs if job[0] == "forward"])
                stale.update(job[1][0] for job in jobs if job[0] == "publish")
                await asyncio.sleep(POLL_S)
                continue
            self._healthy()
            if stale:
                now = time.time()
                for link in stale:
                    if link.owner and self.links.get(link.session.id) is link:
                        self.changed(link, [], now)  # followers catch up with its cue
                stale.clear()

    def _kept(self, forwards: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """The forwards still worth sending (young enough, the newest FORWARD_KEEP)."""
        oldest = time.monotonic() - FORWARD_KEEP_S
        kept = [job for job in forwards if job[1][2] >= oldest][-FORWARD_KEEP:]
        if len(kept) < len(forwards):
            log.error(
                "rooms: redis at %s unreachable for too long: %d states and events sent to "
                "this server for rooms owned elsewhere are dropped",
                self._safe_url(),
                len(forwards) - len(kept),
            )
        return kept

    async def _write(self, jobs: list[tuple[str, Any]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        kinds = []
        for kind, arg in jobs:
            if kind == "publish":
                link, text, pub = arg
                if not link.owner:
                    continue
                k = link.keys
                pipe.eval(
                    _PUBLISH,
                    3,
                    k["lease"],
                    k["snap"],
                    k["out"],
                    link.lease_value,
                    text,
                    pub,
                    self.ttl_ms,
                )
                kinds.append(("publish", link))
            elif kind == "forward":
                link, text, _at = arg
                pipe.xadd(link.keys["in"], {"m": text}, maxlen=INBOX_MAXLEN, approximate=True)
                pipe.pexpire(link.keys["in"], self.ttl_ms)
                kinds.append(("forward", link))
                kinds.append(("pexpire", link))
            elif kind == "release":
                link = arg
                pipe.eval(_RELEASE, 1, link.keys["lease"], link.lease_value)
                kinds.append(("release", link))
        if not kinds:
            return
        self.round_trips += 1
        results = await pipe.execute(raise_on_error=False)
        for (kind, link), result in zip(kinds, results, strict=True):
            if isinstance(result, Exception):
                raise result
            if kind == "publish" and result == 0 and link.owner:
                log.warning(
                    "rooms: room %s lost its lease (epoch %d): following the new owner",
                    link.session.id,
                    link.epoch,
                )
                self._demote(link)

    def _demote(self, link: RoomLink) -> None:
        link.owner = False
        link.session.close_timers()
        self._wake.set()

    async def _lease_loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            self._wake.clear()
            links = list(self.links.values())
            if not links:
                continue
            try:
                await self._lease_round(links)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._unhealthy(exc)
                await asyncio.sleep(POLL_S)
            else:
                self._healthy()

    async def _lease_round(self, links: list[RoomLink]) -> None:
        if time.monotonic() < self._grace_until:
            # Just reconnected: the rooms' owners take their leases back first.
            links = [link for link in links if link.owner]
        if not links:
            self.round_trips += 1
            await self._redis.ping()
            return
        listening = set(self._listening)  # confirmed before the snapshots below are read
        pipe = self._redis.pipeline(transaction=False)
        for link in links:
            k = link.keys
            if link.owner:
                pipe.eval(
                    _RENEW,
                    4,
                    k["lease"],
                    k["snap"],
                    k["in"],
                    k["epoch"],
                    link.lease_value,
                    LEASE_MS,
                    self.ttl_ms,
                    self.proc,
                )
            else:
                pipe.eval(_ACQUIRE, 3, k["lease"], k["epoch"], k["snap"], self.proc, LEASE_MS)
        self.round_trips += 1
        results = await pipe.execute()
        now = time.time()
        for link, result in zip(links, results, strict=True):
            if self.links.get(link.session.id) is not link:
                continue  # left meanwhile
            if link.owner:
                if result < 0:  # it expired during an outage and nobody took it: ours again
                    link.epoch, link.version = -result, 0
                    link.lease_value = f"{self.proc}:{-result}"
                    log.info("rooms: room %s held again (epoch %d)", link.session.id, -result)
                    self.changed(link, [], now)  # what it did meanwhile, for the others
                elif result == 0:  # taken by another process: follow it
                    link.owner = False
                    link.session.close_timers()
                    self._wake.set()
                    link.lease_value = ""  # the next round follows the owner's snapshot
                continue
            epoch, raw = int(result[0]), result[1]
            snap = json.loads(raw) if raw else None
            if epoch:
                self._took(link, epoch, snap, now)
            elif snap is not None and self._poll_follows(link, snap, link.keys["out"] in listening):
                self._follow(link, snap, [], now)

    @staticmethod
    def _poll_follows(link: RoomLink, snap: dict[str, Any], listening: bool) -> bool:
        """Whether the lease poll applies the owner's snapshot it read, or leaves it to
        pub/sub (``listening``: this process's subscription to the room was confirmed
        before the snapshot was read).

        Pub/sub brings every publication in order, with the messages it carries (cues,
        stingers, pending notices) and its decision. A snapshot applied here first would
        make its publication, and any older one still on its way, look already seen:
        those would be dropped, and a wait the room went through (a pending superseded
        by the debounce after it) never told. So the poll applies a newer snapshot only
        when pub/sub cannot bring it: not subscribed yet (a joiner waits for the
        subscription, which wakes the poll, so that nothing published after the snapshot
        is lost), or behind what the previous poll saw (a publication lost).
        """
        key = (snap["e"], snap["v"])
        mine = (link.epoch, link.version)
        if link.ready and key <= mine:
            link.polled = None
            return False  # seen already
        polled = link.polled
        if link.ready:
            follow = not listening or (polled is not None and polled > mine)
        else:
            follow = listening or polled is not None
        link.polled = None if follow else key
        return follow

    def _took(self, link: RoomLink, epoch: int, snap: dict[str, Any] | None, now: float) -> None:
        """This process just took the room's lease (a new epoch)."""
        session = link.session
        previous_epoch = link.epoch
        link.owner = True
        link.lease_value = f"{self.proc}:{epoch}"
        # The snapshot in Redis is the room unless this process made a newer one that
        # Redis has not got (it owned the room through an outage).
        theirs = snap is not None and (snap["e"], snap["v"]) >= (link.epoch, link.version)
        was_ready = link.ready
        if snap is not None and (theirs or not link.ready):
            session.director.restore(snap["d"])
            session.pending_mood = snap.get("pm")
            link.in_id = snap.get("in", "0-0")
        link.epoch, link.version = epoch, 0
        if snap is None and not link.ready:
            log.info("rooms: room %s starts here (epoch %d)", session.id, epoch)
            link.ready = was_ready = True  # start() sends the first cue to every client
            session.start(now)  # the first cue: dispatched here and published
        else:
            log.info(
                "rooms: room %s taken over here (epoch %d after %d, seq %d)",
                session.id,
                epoch,
                previous_epoch,
                session.seq,
            )
            link.ready = True
            self.changed(link, [], now)  # the new epoch's snapshot
            session._rearm(now)
        if not was_ready:
            self._send_join(session, now)

    def _follow(self, link: RoomLink, snap: dict[str, Any], out: list[Any], now: float) -> None:
        """A snapshot (and what it sent) from the room's owner."""
        if (snap["e"], snap["v"]) <= (link.epoch, link.version) and link.ready:
            return  # seen already (the lease poll returns what pub/sub brought)
        session = link.session
        seen_seq = session.seq
        # The clients first (what they wait for), then the replica.
        for msg in out:
            kind = msg.get("type")
            if kind == "pending":
                session.pending_mood = msg["mood"]
            else:
                if kind == "cue" and session.pending_mood == msg.get("mood"):
                    session.pending_mood = None
                msg = dict(msg, server_time=time.time())
            session.broadcast(frame_message(msg), str(kind))
        session.director.restore(snap["d"])
        current = session.director.current
        if link.ready and not out and current is not None and current.seq > seen_seq:
            # Cues made while this process could not hear them (a Redis outage, a
            # takeover): the clients catch up with the latest.
            session.broadcast(self.manager.encoder.cue_frame(current, now), "cue")
        link.epoch, link.version = snap["e"], snap["v"]
        link.in_id = snap.get("in", "0-0")  # what the owner has applied of the inbox
        was_ready = link.ready
        link.ready = True
        session.pending_mood = snap.get("pm")
        if not was_ready:
            self._send_join(session, now)
        # The owner's decision (a debounce or dwell wait, its end) and, to watchers, the
        # room's state: as the owner's own clients heard them.
        session.tell_decision()

    def _send_join(self, session: Session, now: float) -> None:
        """Connections that joined before the room's state was known get it now."""
        if not session.connections:
            return
        for kind, frame in session.join_frames(now):
            session.broadcast(frame, kind)

    async def _inbox_loop(self) -> None:
        while True:
            owned = {link.keys["in"]: link for link in self.links.values() if link.owner}
            if not owned or not self.healthy:
                await asyncio.sleep(XREAD_BLOCK_MS / 1000)
                continue
            try:
                self.round_trips += 1
                answer = await self._reader_redis.xread(
                    {key: link.in_id for key, link in owned.items()},
                    count=100,
                    block=XREAD_BLOCK_MS,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._unhealthy(exc)
                await asyncio.sleep(POLL_S)
                continue
            for key, entries in answer or ():
                link = owned[key]
                for entry_id, fields in entries:
                    if not link.owner or self.links.get(link.session.id) is not link:
                        break
                    link.in_id = entry_id
                    self._apply(link, fields.get("m", ""))

    def _apply(self, link: RoomLink, text: str) -> None:
        session = link.session
        now = time.time()
        try:
            msg = json.loads(text)
            if msg["op"] == "state":
                session.update(now, msg.get("set"), msg.get("unset") or (), msg.get("replace"))
            elif msg["op"] == "event":
                session.event(now, msg["name"], msg.get("data") or {})
            elif msg["op"] == "duck":
                spec = msg.get("spec")
                session.duck(now, DuckSpec(**spec) if spec is not None else None)
        except Exception as exc:  # checked by the sender: only a bug or a newer score
            log.warning("rooms: room %s: inbox message not applied: %s", session.id, exc)

    async def _subscriber(self) -> None:
        while True:
            try:
                await self._subscribe_loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._unhealthy(exc)
                await asyncio.sleep(POLL_S)

    async def _subscribe_loop(self) -> None:
        # Subscription confirmations are read: the lease poll leaves what a confirmed
        # subscription brings to it (see _poll_follows).
        pubsub = self._redis.pubsub()
        subscribed: dict[str, str] = {}
        own = _dumps({"p": self.proc})[:-1] + ","  # how this process's publications begin
        try:
            self._subs_dirty.set()
            while True:
                if self._subs_dirty.is_set():
                    self._subs_dirty.clear()
                    wanted = {link.keys["out"]: sid for sid, link in self.links.items()}
                    add = [c for c in wanted if c not in subscribed]
                    drop = [c for c in subscribed if c not in wanted]
                    if add:
                        await pubsub.subscribe(*add)
                    if drop:
                        await pubsub.unsubscribe(*drop)
                        self._listening.difference_update(drop)
                    subscribed = wanted
                if not subscribed:
                    await self._subs_dirty.wait()
                    continue
                message = await pubsub.get_message(timeout=0.1)
                if message is None:
                    continue
                if not self.healthy:
                    # Redis answers: back (the lease loop may not have seen it yet, and a
                    # client that hears the catch-up cue may send a state at once).
                    self._healthy()
                kind = message.get("type")
                if kind == "subscribe":
                    channel = message["channel"]
                    if channel in subscribed:
                        self._listening.add(channel)
                        link = self.links.get(subscribed[channel])
                        if link is not None and not link.ready:
                            self._wake.set()  # a joiner: the poll follows the room now
                    continue
                if kind != "message":
                    continue
                link = self.links.get(subscribed.get(message["channel"], ""))
                if link is None or link.owner:
                    continue
                data = message["data"]
                if data.startswith(own):
                    continue  # this process's own publication: not parsed at all
                pub = json.loads(data)
                self._follow(link, pub["s"], pub["out"], time.time())
        finally:
            self._listening.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
