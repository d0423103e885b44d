"""Sessions: one game state, one Director, any number of connections, a musical clock.

A :class:`Session` owns its :class:`~segue.core.engine.director.Director` (the pure rules
engine) and drives it with the clock: every state change, event, tick and "a track was
generated" goes through the director, and what it decides (cues, stingers, pending
notices) is serialised and framed once, then written to every connection of the session.
The director's next deadline (a debounce or dwell running out) is a ``loop.call_at``.

A :class:`Connection` writes prebuilt frames straight to its transport. Its send queue is
the transport's write buffer, bounded: a client that does not read fills it and is
dropped (close 1013) without ever delaying the others. While the server handles the
frames of one read, its :class:`Cork` holds writes and then writes each connection's
frames at once.

The :class:`SessionManager` keeps sessions for ``ttl_s`` after their last connection
leaves, so a reconnect resumes the state, the mood and the cue sequence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from segue.core.cue import Cue, Duck, Layers, Pending, Stinger
from segue.core.engine.director import CUED, NO_RULE, PENDING, SAME_MOOD, UnknownEvent
from segue.core.engine.state import apply_state
from segue.core.errors import error_line
from segue.core.protocol import CloseCode, pending_message, prefetch_message
from segue.core.score import Duck as DuckSpec
from segue.core.score import Score
from segue.core.server.wire import Encoder, frame_message
from segue.core.track import Track

if TYPE_CHECKING:
    from aiohttp import web

    from segue.core.plugins import Plugins
    from segue.core.server.metrics import Metrics
    from segue.core.server.rooms_redis import RedisRooms, RoomLink

log = logging.getLogger("segue.server")

TrackSource = Callable[[str], Sequence[Track]]
Output = Cue | Stinger | Pending | Layers | Duck

DEFAULT_SEND_BUFFER_BYTES = 512 * 1024
SETTLED = frozenset((CUED, SAME_MOOD, NO_RULE))  # decisions where nothing waits
SLOW_READER = "send queue full: the client reads too slowly"


class Cork:
    """Writes held while a batch of frames read from one socket is handled.

    While corked (``begin()`` to ``flush()``), frames sent to any connection holding this
    cork are held, and ``flush()`` writes them once per connection, in order. A client
    that sent several messages in one TCP segment so gets its replies in one segment:
    one send(2) and one wake-up of the peer instead of one per message. The batch is
    handled synchronously, so nothing else runs before the flush: no added latency.
    (uWebSockets corks its message handlers the same way.) One per server: a server runs
    on one event loop, so one batch at a time.
    """

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: list[Connection] | None = None  # connections with frames held

    def begin(self) -> bool:
        """Start holding writes; False (and nothing to flush) if already holding."""
        if self.held is not None:
            return False
        self.held = []
        return True

    def flush(self) -> None:
        """Write what was held, one write per connection, in the order it was sent."""
        conns, self.held = self.held, None
        if not conns:
            return
        for conn in conns:
            frames = conn._held
            conn._held = None
            transport = conn.transport
            if not frames or transport.is_closing():
                continue
            try:
                transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            except Exception:  # one connection's failure is not the others'
                log.exception("writing to a connection failed")
                continue
            if transport.get_write_buffer_size() > conn.max_buffer:
                # What send() would have found at the next frame: a slow reader.
                conn.close(CloseCode.TRY_AGAIN, SLOW_READER)
                session = conn.session
                if session is not None and conn in session.connections:
                    del session.connections[conn]
                    session.watchers.pop(conn, None)
                    session.manager.check_idle(session)


class Connection:
    """One WebSocket connection: frames go straight to its transport, bounded."""

    __slots__ = (
        "_closing_task",
        "_cork",
        "_held",
        "closed",
        "limiter",
        "max_buffer",
        "on_drop",
        "session",
        "suspect_until",
        "transport",
        "watch",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        limiter: Any,
        max_buffer: int = DEFAULT_SEND_BUFFER_BYTES,
        on_drop: Callable[[Connection, int], None] | None = None,
        cork: Cork | None = None,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.limiter = limiter
        self.max_buffer = max_buffer
        self.session: Session | None = None
        self.watch = False  # receives the room's state (``?watch=state``)
        self.closed = False
        # Until then (time.monotonic()), what it sends waits in the slow lane: it was
        # refused a frame (see segue.core.server.ws_direct).
        self.suspect_until = 0.0
        self.on_drop = on_drop
        self._closing_task: asyncio.Task[Any] | None = None
        # Frames held while corked. They do not count against max_buffer: held, they are
        # not the client's backlog; once written, what the kernel cannot take is.
        self._held: list[bytes] | None = None
        self._cork = cork

    def send(self, frame: bytes) -> bool:
        """Write a prebuilt frame; False when the connection is gone or just dropped."""
        if self.closed:
            return False
        transport = self.transport
        if transport.is_closing() or self.ws.closed:
            self.closed = True
            return False
        if transport.get_write_buffer_size() > self.max_buffer:
            self.close(CloseCode.TRY_AGAIN, SLOW_READER)
            return False
        cork = self._cork
        if cork is None or cork.held is None:
            transport.write(frame)
            return True
        held = self._held
        if held is None:
            self._held = [frame]
            cork.held.append(self)
        else:
            held.append(frame)
        return True

    def close(self, code: int, reason: str = "") -> None:
        """Close with ``code`` (in the background; never waits on the client)."""
        if self.closed:
            return
        self.closed = True
        if self.on_drop is not None:
            self.on_drop(self, code)
        if not self.ws.closed:
            self._closing_task = asyncio.get_running_loop().create_task(
                self.ws.close(code=code, message=reason.encode()[:123])
            )

    async def wait_closed(self) -> None:
        """Wait for a close started by ``close()`` to finish (no-op otherwise)."""
        task = self._closing_task
        if task is not None:
            try:
                await task
            except Exception:
                pass


class Session:
    """One listener group: a game state, a director, its connections and timers."""

    # One per player or room, thousands per server: no per-instance __dict__.
    __slots__ = (
        "_expiry",
        "_room_told",
        "_timer",
        "_timer_at",
        "_told",
        "connected_once",
        "connections",
        "created",
        "director",
        "id",
        "manager",
        "pending_mood",
        "room",
        "watchers",
    )

    def __init__(self, manager: SessionManager, id: str, director: Any) -> None:
        self.manager = manager
        self.id = id
        self.director = director
        self.connections: dict[Connection, None] = {}  # insertion-ordered set
        self.watchers: dict[Connection, None] = {}  # those of them that watch the room
        self._room_told: tuple[Any, ...] | None = None  # what watchers last heard
        self.connected_once = False  # never: it expires after the (shorter) HTTP TTL
        self.pending_mood: str | None = None
        self.created = time.time()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._expiry: asyncio.TimerHandle | None = None
        # A room shared through Redis (rooms_redis.RoomLink), or None: this process's own.
        self.room: RoomLink | None = None
        # The wait (desired, reason, until) last told to the connections; None: nothing
        # waits (see _decided).
        self._told: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        return f"Session({self.id!r}, connections={len(self.connections)})"

    # --- what plugins see (segue_cue / segue_game_event receive the Session) -----------

    @property
    def state(self) -> dict[str, Any]:
        return dict(getattr(self.director, "state", {}) or {})

    @property
    def mood(self) -> str | None:
        """The mood of the latest cue (the one playing, or the one about to)."""
        current = self.director.current
        return current.mood if current is not None else None

    @property
    def desired(self) -> str | None:
        return getattr(self.director, "desired", None)

    @property
    def seq(self) -> int:
        return int(getattr(self.director, "seq", 0))

    # --- driving the director ------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        outputs = list(self.director.start(now))
        self.dispatch(outputs, now)
        return outputs

    def update(
        self,
        now: float,
        set: dict[str, Any] | None = None,
        unset: Iterable[str] = (),
        replace: dict[str, Any] | None = None,
    ) -> list[Output]:
        """Apply a state change; raises the director's StateError for bad state."""
        room = self.room
        if room is not None and not room.owner:
            # Another process runs this room: check the change here, apply it there.
            check = getattr(self.director, "check_update", None)
            if check is not None:  # with the state limits
                check(set, unset, replace)
            else:
                apply_state(self.director.state, set, unset, replace)
            self.manager.rooms.forward(  # type: ignore[union-attr]
                room, {"op": "state", "set": set, "unset": list(unset), "replace": replace}
            )
            return []
        outputs = self.director.update(now, set, unset, replace)
        if log.isEnabledFor(logging.DEBUG):
            self._log_decision(now, outputs, set, unset, replace)
        self.dispatch(outputs, now)
        return outputs

    def _log_decision(
        self,
        now: float,
        outputs: Sequence[Output],
        set: dict[str, Any] | None,
        unset: Iterable[str],
        replace: dict[str, Any] | None,
    ) -> None:
        """One debug line per state change: what changed, the desired mood, the decision."""
        director = self.director
        reason = getattr(director, "reason", None)
        until = getattr(director, "until", None)
        change = {k: v for k, v in (("replace", replace), ("set", set)) if v}
        if unset:
            change["unset"] = list(unset)
        cue = next((o for o in outputs if isinstance(o, Cue)), None)
        if cue is not None:
            decision = f"cued {cue.mood} (seq {cue.seq}, starts in {cue.start_at - now:.3f}s)"
        elif reason == PENDING:
            decision = "pending generation"
        elif until is not None:
            decision = f"{reason} until {until:.3f} (in {until - now:.3f}s)"
        else:
            decision = (reason or "no decision").replace("_", " ")
        log.debug(
            "session %s: state %s: desired %s, mood %s: %s",
            self.id,
            change or "{}",
            director.desired,
            self.mood,
            decision,
            extra={
                "session": self.id,
                "desired": director.desired,
                "mood": self.mood,
                "reason": reason,
                "until": until,
            },
        )

    def event(self, now: float, name: str, data: dict[str, Any]) -> list[Output]:
        """A game event; raises the director's UnknownEvent for a name the score lacks."""
        room = self.room
        if room is not None and not room.owner:
            if name not in self.director.score.events:
                raise UnknownEvent(name)
            self.manager.rooms.forward(  # type: ignore[union-attr]
                room, {"op": "event", "name": name, "data": data}
            )
            return []
        out = self.director.event(now, name, data)
        outputs: list[Output] = [] if out is None else [out]
        spec = self.manager.score.events[name]
        if spec.duck is not None:
            outputs.append(self.director.duck(now, spec.duck, event=name))
        self.manager.notify_event(self, {"name": name, "data": data})
        # A stinger without a track is generated but never replayed late: its pending
        # notice is not remembered for joiners.
        self.dispatch(outputs, now, sticky_pending=False)
        return outputs

    def duck(self, now: float, spec: DuckSpec | None) -> list[Output]:
        """A client's duck: start one (``spec``) or end the one under way (None)."""
        room = self.room
        if room is not None and not room.owner:
            message = {"op": "duck", "spec": spec.to_dict() if spec is not None else None}
            self.manager.rooms.forward(room, message)  # type: ignore[union-attr]
            return []
        out = self.director.duck(now, spec) if spec is not None else self.director.end_duck(now)
        outputs: list[Output] = [] if out is None else [out]
        self.dispatch(outputs, now)
        return outputs

    def tracks_changed(self, now: float) -> list[Output]:
        if self.room is not None and not self.room.owner:
            return []  # the owner decides
        outputs = list(self.director.tracks_changed(now))
        self.dispatch(outputs, now)
        return outputs

    def _tick(self) -> None:
        self._timer = None
        self._timer_at = None
        now = time.time()
        try:
            outputs = list(self.director.tick(now))
        except Exception as exc:
            self.manager.log_failure(self, "tick", exc)
            return
        self.dispatch(outputs, now)

    def dispatch(self, outputs: Sequence[Output], now: float, sticky_pending: bool = True) -> None:
        """Send what the director decided to every connection, then re-arm the timer."""
        manager = self.manager
        for out in outputs:
            if type(out) is Cue or isinstance(out, Cue):
                if self.pending_mood is not None and out.mood == self.pending_mood:
                    self.pending_mood = None
                self.broadcast(manager.encoder.cue_frame(out, now), "cue")
                manager.metrics.cues += 1
                if manager.cue_hook:
                    manager.notify_cue(self, out)
            elif type(out) is Layers:
                self.broadcast(frame_message(out.to_message(now)), "layers")
            elif isinstance(out, Stinger):
                self.broadcast(manager.encoder.stinger_frame(out, now), "stinger")
                manager.metrics.stingers += 1
                log.debug(
                    "session %s: stinger %s for event %s, starts in %.3fs",
                    self.id,
                    out.mood,
                    out.name,
                    out.start_at - now,
                    extra={"session": self.id, "event": out.name, "mood": out.mood},
                )
            elif isinstance(out, Duck):
                self.broadcast(frame_message(out.to_message(now)), "duck")
            elif isinstance(out, Pending):
                if sticky_pending:
                    self.pending_mood = out.mood
                self.broadcast(frame_message(out.to_message()), "pending")
                manager.metrics.pending += 1
                manager.on_pending(out.mood)
        room = self.room
        if room is not None:
            if not room.owner:
                return
            manager.rooms.changed(room, outputs, now)  # type: ignore[union-attr]
        self.tell_decision()
        self._rearm(now)

    def tell_decision(self) -> None:
        """The ``decision`` and ``room`` messages, when the director's decision or state
        changed: after a dispatch here, or a snapshot from the room's owner elsewhere."""
        reason = getattr(self.director, "reason", None)
        if reason is not None:
            self._decided(reason)
        if self.watchers:
            self._tell_room()

    def room_message(self) -> dict[str, Any]:
        """The ``room`` message: the session's state and what the director made of it."""
        director = self.director
        msg: dict[str, Any] = {
            "type": "room",
            "session": self.id,
            "state": self.state,
            "mood": self.mood,
            "desired": director.desired,
            "reason": getattr(director, "reason", None),
        }
        until = getattr(director, "until", None)
        if until is not None:
            msg["until"] = round(until, 6)
        return msg

    def _room_said(self) -> tuple[Any, ...]:
        """What a ``room`` message says, to tell a change from no change."""
        director = self.director
        return (
            getattr(director, "state", None),
            self.mood,
            director.desired,
            getattr(director, "reason", None),
            getattr(director, "until", None),
        )

    def _tell_room(self) -> None:
        """Send the room's state to its watchers when it (or the decision) changed,
        whichever connection or HTTP call changed it."""
        told = self._room_said()
        if told == self._room_told:
            return
        self._room_told = told
        frame = frame_message(self.room_message())
        sent = 0
        for conn in list(self.watchers):
            sent += conn.send(frame)
        self.manager.metrics.sent["room"] += sent

    def _decided(self, reason: str) -> None:
        """Tell the connections why no cue came, when that changes: a ``decision`` message.

        Only waits are told (debounce, dwell, pending generation), and their end when it is
        not a cue (the desire went back, or no rule matches any more); a state that changes
        nothing while nothing waits gets no reply, as before. Clients may ignore it.
        """
        director = self.director
        if reason in SETTLED:
            if self._told is None:
                return
            told = None
        else:
            told = (director.desired, reason, director.until)
            if told == self._told:
                return
        self._told = told
        if reason == CUED:  # the cue says it
            return
        msg: dict[str, Any] = {
            "type": "decision",
            "mood": self.mood,
            "desired": director.desired,
            "reason": reason,
        }
        if director.until is not None:
            msg["until"] = round(director.until, 6)
        self.broadcast(frame_message(msg), "decision")

    def _rearm(self, now: float) -> None:
        if self.room is not None and not self.room.owner:
            return  # the owner runs the room's timers
        wake = self.director.next_wakeup()
        if wake == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        if wake is not None:
            loop = self.manager.loop
            self._timer = loop.call_at(loop.time() + max(0.0, wake - now), self._tick)
            self._timer_at = wake

    def broadcast(self, frame: bytes, kind: str) -> int:
        """Write one prebuilt frame (a ``kind`` message) to every connection; returns how
        many got it."""
        sent = 0
        dropped = None
        for conn in self.connections:
            if conn.send(frame):
                sent += 1
            elif conn.closed:
                if dropped is None:
                    dropped = []
                dropped.append(conn)
        if dropped:
            for conn in dropped:
                self.connections.pop(conn, None)
                self.watchers.pop(conn, None)
            self.manager.check_idle(self)
        if sent:
            self.manager.metrics.sent[kind] += sent
        return sent

    # --- what a joining connection gets --------------------------------------------------

    def join_frames(self, now: float, watch: bool = False) -> list[tuple[str, bytes]]:
        """What a joining connection needs after the welcome, as (type, frame): the cue
        playing now (its ``start_at`` in the past for a late joiner), the latest cue if it
        is still to come, a pending notice if the desired mood is being generated, the
        room's state for a watcher, and prefetch."""
        frames = []
        cue_frame = self.manager.encoder.cue_frame
        latest = self.director.current
        playing = self.director.playing_cue(now)
        if playing is not None and playing is not latest:
            frames.append(("cue", cue_frame(playing, now)))
        if latest is not None:
            frames.append(("cue", cue_frame(latest, now)))
        # The current gains (and ramps under way) and the duck, right after the cues.
        layers_now = getattr(self.director, "layers_now", None)
        if layers_now is not None:
            frames.extend(("layers", frame_message(out.to_message(now))) for out in layers_now(now))
            duck = self.director.duck_now(now)
            if duck is not None:
                frames.append(("duck", frame_message(duck.to_message(now))))
        pending = self.pending_mood
        if (
            pending is not None
            and self.director.desired == pending
            and (latest is None or latest.mood != pending)
        ):
            frames.append(("pending", frame_message(pending_message(pending))))
        if watch:
            frames.append(("room", frame_message(self.room_message())))
            # What this watcher hears now; the others heard it already (every change is
            # told to the watchers there are): the next change is news to all of them.
            self._room_told = self._room_said()
        frames.append(("prefetch", self.manager.prefetch_frame(self)))
        return frames

    def close_timers(self) -> None:
        for handle in (self._timer, self._expiry):
            if handle is not None:
                handle.cancel()
        self._timer = self._expiry = None
        self._timer_at = None


class SessionManager:
    """Every session of one server, their TTL, and what they share."""

    def __init__(
        self,
        score: Score,
        tracks: TrackSource,
        metrics: Metrics,
        *,
        plugins: Plugins | None = None,
        lead_s: float = 0.2,
        ttl_s: float = 300.0,
        http_ttl_s: float | None = None,
        on_pending: Callable[[str], None] | None = None,
        director_factory: Callable[..., Any] | None = None,
        encoder: Encoder | None = None,
        rooms: RedisRooms | None = None,
    ) -> None:
        if director_factory is None:
            from segue.core.engine.director import Director

            director_factory = Director
        self.score = score
        self.tracks = tracks
        self.metrics = metrics
        self.plugins = plugins
        self.lead_s = lead_s
        self.ttl_s = ttl_s
        self.http_ttl_s = ttl_s if http_ttl_s is None else min(ttl_s, http_ttl_s)
        self._on_pending = on_pending
        self._director_factory = director_factory
        # The server's encoder (its memoised parts are shared by every session).
        self.encoder = encoder if encoder is not None else Encoder()
        self.sessions: dict[str, Session] = {}
        # Rooms shared with other processes through Redis (server.rooms), or None.
        self.rooms = rooms
        self.connections = 0
        self._prefetch: dict[tuple[str, ...], bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # Hooks with no implementation are not called on the hot path at all.
        self.cue_hook = plugins is not None and plugins.has("segue_cue")
        self.event_hook = plugins is not None and plugins.has("segue_game_event")

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # --- lifecycle -----------------------------------------------------------------------

    def get(self, id: str) -> Session | None:
        return self.sessions.get(id)

    def get_or_create(self, id: str, now: float | None = None) -> tuple[Session, bool]:
        """The session ``id``, created (and cued at once) if new."""
        session = self.sessions.get(id)
        if session is not None:
            return session, False
        director = self._director_factory(id, self.score, self.tracks, lead_s=self.lead_s)
        session = Session(self, id, director)
        self.sessions[id] = session
        if self.rooms is not None:
            # Started (or restored) once the room's owner is known.
            session.room = self.rooms.join(session)
        else:
            session.start(time.time() if now is None else now)
        self.check_idle(session)
        return session, True

    def attach(self, session: Session, conn: Connection) -> None:
        conn.session = session
        session.connections[conn] = None
        if conn.watch:
            session.watchers[conn] = None
        session.connected_once = True
        self.connections += 1
        if session._expiry is not None:
            session._expiry.cancel()
            session._expiry = None

    def detach(self, conn: Connection) -> None:
        session = conn.session
        if session is None:
            return
        conn.session = None
        self.connections -= 1
        session.connections.pop(conn, None)
        session.watchers.pop(conn, None)
        self.check_idle(session)

    def touch(self, session: Session) -> None:
        """An HTTP call used the session: its TTL starts again if nobody is connected."""
        if not session.connections:
            self._arm_expiry(session)

    def check_idle(self, session: Session) -> None:
        if not session.connections and session._expiry is None:
            self._arm_expiry(session)

    def _arm_expiry(self, session: Session) -> None:
        if session._expiry is not None:
            session._expiry.cancel()
        ttl = self.ttl_s if session.connected_once else self.http_ttl_s
        session._expiry = self.loop.call_later(ttl, self._expire, session)

    def _expire(self, session: Session) -> None:
        session._expiry = None
        if session.connections or self.sessions.get(session.id) is not session:
            return
        session.close_timers()
        del self.sessions[session.id]
        if self.rooms is not None:
            self.rooms.leave(session)
        log.debug("session %s expired", session.id)

    def close(self) -> None:
        for session in self.sessions.values():
            session.close_timers()
        self.sessions.clear()

    # --- shared work ---------------------------------------------------------------------

    def failure_line(self, exc: BaseException) -> str:
        """``exc`` in one line, after the plugin whose code raised it (a cache's ``get``, a
        sink's ``open``) when one did: ``plugin segue_redis2: RuntimeError: …``."""
        return self.plugins.failure_line(exc) if self.plugins is not None else error_line(exc)

    def log_failure(self, session: Session, when: str, exc: BaseException) -> None:
        """One ERROR line for the director's failure on a timer's tick or on stored tracks
        (the traceback at debug level, ``-v``); the session and the others keep running."""
        log.error(
            "session %s: the director failed on %s: %s", session.id, when, self.failure_line(exc)
        )
        log.debug("the traceback of session %s's %s", session.id, when, exc_info=exc)

    def on_pending(self, mood: str) -> None:
        if self._on_pending is not None:
            self._on_pending(mood)

    def tracks_changed(self) -> None:
        """A track was stored: every session may now cue what it was waiting for."""
        self._prefetch.clear()
        now = time.time()
        for session in list(self.sessions.values()):
            try:
                session.tracks_changed(now)
            except Exception as exc:
                self.log_failure(session, "tracks_changed", exc)
                continue
            if session.connections:
                session.broadcast(self.prefetch_frame(session), "prefetch")

    def prefetch_frame(self, session: Session) -> bytes:
        """The prefetch message for the moods ``session`` can reach (memoised)."""
        moods = tuple(session.director.reachable_moods())
        frame = self._prefetch.get(moods)
        if frame is None:
            tracks: list[Track] = []
            seen: set[str] = set()
            for mood in moods:
                for track in self.tracks(mood):
                    if track.id not in seen:
                        seen.add(track.id)
                        tracks.append(track)
            frame = frame_message(prefetch_message(tracks))
            self._prefetch[moods] = frame
        return frame

    def notify_cue(self, session: Session, cue: Cue) -> None:
        if self.cue_hook:
            # Each plugin on its own: one that raises is logged naming it; the rest still run.
            self.plugins.notify("segue_cue", session=session, cue=cue)

    def notify_event(self, session: Session, event: dict[str, Any]) -> None:
        self.metrics.events += 1
        if self.event_hook:
            self.plugins.notify("segue_game_event", session=session, event=event)
