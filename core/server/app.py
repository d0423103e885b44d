"""The soundtrack server: one aiohttp app, WebSocket protocol v1 and HTTP on one port.

``create_app(score, ...)`` builds the app; ``segue serve`` runs it. App state lives in a
:class:`SegueServer` under the ``SERVER`` AppKey; startup and shutdown are a
``cleanup_ctx``; ``on_shutdown`` closes every WebSocket with 1001 and the cleanup lets
on-demand generation finish (for ``shutdown_grace_s``) before cancelling what is left,
which the pipeline resumes at the next start.

The WebSocket hot path: a text frame is handed over as aiohttp parses it
(``segue.core.server.ws_direct``), size-checked, rate-limited, decoded once and
validated (``segue.core.protocol``), handed to the session's director, and what it
decides is serialised (``segue.core.server.wire``) and framed once and written to every
connection of the session; the replies to the frames of one read are written once per
connection at its end (``Cork``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from segue.core.cue import Cue
from segue.core.engine.director import UnknownEvent
from segue.core.engine.state import StateError
from segue.core.protocol import (
    CloseCode,
    DuckRequest,
    ErrorCode,
    EventMessage,
    PingMessage,
    ProtocolError,
    StateMessage,
    decode_client_frame,
    error_message,
    parse_client_object,
    pong_message,
    session_id_problem,
    state_set_only,
    welcome_message,
)
from segue.core.score import RoomsOptions, Score
from segue.core.server.admission import Admission, install
from segue.core.server.http_api import CORS_PREFLIGHT, HttpApi, error_response
from segue.core.server.metrics import Metrics
from segue.core.server.ratelimit import MessageLimiter, Verdict
from segue.core.server.rooms_redis import RoomUnavailable
from segue.core.server.sessions import (
    DEFAULT_SEND_BUFFER_BYTES,
    Connection,
    Cork,
    Session,
    SessionManager,
)
from segue.core.server.sockets import BACKLOG, listen
from segue.core.server.wire import Encoder, frame_message
from segue.core.server.ws_direct import DirectResponse, SlowLane, fast_path_problem
from segue.core.track import Track

if TYPE_CHECKING:
    from segue.core.plugins import Plugins
    from segue.core.pregen.pipeline import Pipeline

log = logging.getLogger("segue.server")

_monotonic = time.monotonic
_time = time.time
_OK = Verdict.OK
FAILURE_LOG_INTERVAL_S = 10.0
# A connection refused a frame is read in the slow lane for this long after (ws_direct).
SUSPECT_S = 10.0
ACCEPT_BATCH = 16  # connections accepted per turn of the event loop (see start())
_ABNORMAL = 1006  # closed without a close frame (what the client sees of a dropped peer)
_FRAME_NAMES = {
    WSMsgType.BINARY: "binary",
    WSMsgType.PING: "ping_frame",
    WSMsgType.PONG: "pong_frame",
}


def names_this_host(host: str) -> bool:
    """Whether a ``Host`` header reaches this machine whatever DNS says: an IP address
    (v4, or v6 in brackets) or ``localhost`` (which browsers resolve to loopback), with
    or without a port."""
    name = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    if name.lower().rstrip(".") == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ServerConfig:
    """Server limits and options; ``from_score`` reads the score's ``server`` section."""

    tokens: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()  # allowed Origin headers; empty: any
    lead_s: float = 0.2
    session_ttl_s: float = 300.0
    max_frame_bytes: int = 65536
    rate_per_s: float = 20.0
    burst: int = 40
    send_buffer_bytes: int = DEFAULT_SEND_BUFFER_BYTES
    # Every connection gets a WebSocket ping this often (proxies close idle connections;
    # nginx after 60 s by default). Pinging is spread over the interval by one task, and
    # vanished peers are found by TCP keepalive (about 90 s), so neither costs anything
    # per message (aiohttp's own heartbeat adds a callback per received message).
    ping_interval_s: float | None = 30.0
    close_timeout_s: float = 5.0  # waiting for a client's close reply
    shutdown_grace_s: float = 30.0  # on-demand generation may finish within this
    # Generate every missing track behind the server, most wanted first (segue serve).
    generate_in_background: bool = False
    max_sessions: int = 100_000  # new sessions beyond this are refused (503)
    rooms: RoomsOptions | None = None  # rooms shared through Redis; None: in memory
    # A client silent (no pong, no message) this long after a ping is dropped.
    pong_timeout_s: float = 30.0
    # A session that never had a WebSocket connection (HTTP only) lives this long after
    # its last call, not session_ttl_s: sessions made in bulk over HTTP do not pile up.
    http_session_ttl_s: float = 60.0
    # Admission (segue.core.server.admission): None is "below the descriptor limit".
    max_connections: int | None = None
    max_connections_per_address: int = 256
    session_rate_per_s: float = 2.0  # new sessions per client address…
    session_burst: int = 60  # …with this burst
    api_rate_per_s: float = 20.0  # /api/* requests per client address…
    api_burst: int = 40  # …with this burst
    trusted_proxies: tuple[str, ...] = ()  # their X-Forwarded-For names the client
    header_timeout_s: float = 10.0  # a connection without a request by then is closed
    body_timeout_s: float = 10.0  # a request body not received by then: 408

    @classmethod
    def from_score(cls, score: Score, **overrides: Any) -> ServerConfig:
        opts = score.server
        tokens = list(opts.tokens)
        tokens += [t.strip() for t in os.environ.get("SEGUE_TOKENS", "").split(",") if t.strip()]
        config = cls(
            tokens=tuple(dict.fromkeys(tokens)),
            origins=tuple(opts.origins),
            lead_s=opts.lead_ms / 1000.0,
            session_ttl_s=float(opts.session_ttl_s),
            max_frame_bytes=int(opts.max_frame_bytes),
            rate_per_s=float(opts.rate_per_s),
            burst=int(opts.burst),
            rooms=opts.rooms,
            max_sessions=int(opts.max_sessions),
            max_connections=opts.max_connections,
            max_connections_per_address=int(opts.max_connections_per_address),
            session_rate_per_s=float(opts.session_rate_per_s),
            session_burst=int(opts.session_burst),
            api_rate_per_s=float(opts.api_rate_per_s),
            api_burst=int(opts.api_burst),
            trusted_proxies=tuple(opts.trusted_proxies),
            header_timeout_s=float(opts.header_timeout_s),
            body_timeout_s=float(opts.body_timeout_s),
            pong_timeout_s=float(opts.pong_timeout_s),
            http_session_ttl_s=float(opts.http_session_ttl_s),
        )
        return replace(config, **overrides) if overrides else config


class OnDemand:
    """Generates moods that sessions want and storage lacks; once per key across sessions."""

    def __init__(self, server: SegueServer) -> None:
        self.server = server
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def request(self, mood: str) -> list[asyncio.Task[None]]:
        """Generate ``mood``'s missing tracks; returns the tasks making them (new or not).

        While none of the mood's tracks is stored, the first one is made alone and the
        others after it: one track is all a session needs for its cue, and variants made
        beside it would share the CPU with it and delay that cue.
        """
        pipeline = self.server.pipeline
        if pipeline is None or self.server.shutting_down:
            return []
        planned = [p for p in pipeline.plan() if p.request.mood == mood]
        stored = {
            p.key
            for p in planned
            if p.key not in self.tasks and pipeline.stored(p.request) is not None
        }
        tasks: list[asyncio.Task[None]] = []
        for p in planned:
            request, key = p.request, p.key
            task = self.tasks.get(key)
            if task is None:
                if key in stored:
                    continue
                log.debug(
                    "generating %s#%d (%s)", mood, request.variant, key[:12], extra={"mood": mood}
                )
                after = tasks[0] if tasks and not stored else None
                task = asyncio.get_running_loop().create_task(self._run(key, request, after))
                self.tasks[key] = task
                self.server.metrics.generating += 1
            tasks.append(task)
        return tasks

    async def _run(self, key: str, request: Any, after: asyncio.Task[None] | None = None) -> None:
        server = self.server
        result = "failed"
        try:
            assert server.pipeline is not None
            if after is not None:
                await asyncio.wait([after])  # the mood's first track, made alone
            await server.pipeline.ensure(request)
            result = "stored"
        except asyncio.CancelledError:
            result = "failed"
            raise
        except Exception as exc:
            log.warning(
                "generation of %s (%s) failed: %s",
                request.mood,
                key[:12],
                exc,
                extra={"mood": request.mood},
            )
            server.pending_failed(request.mood, str(exc))
        finally:
            server.metrics.generating -= 1
            server.metrics.generations[result] += 1
            self.tasks.pop(key, None)
        server.forget_tracks()
        server.manager.tracks_changed()

    async def wait(self, timeout: float) -> None:
        """Let generation in flight finish (up to ``timeout``), then cancel what is left."""
        tasks = list(self.tasks.values())
        if not tasks:
            return
        log.info(
            "letting %d generation(s) in flight finish (up to %gs; Ctrl-C again stops now)",
            len(tasks),
            timeout,
        )
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.info("%d generation(s) interrupted; the next start resumes them", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)


class SegueServer:
    """Everything one app holds: score, pipeline, sessions, metrics, config."""

    def __init__(
        self,
        score: Score,
        pipeline: Pipeline | None,
        plugins: Plugins | None,
        config: ServerConfig,
        *,
        director_factory: Any = None,
    ) -> None:
        self.score = score
        self.pipeline = pipeline
        self.plugins = plugins
        self.config = config
        self.started = time.monotonic()
        self.shutting_down = False
        self.sink = pipeline.primary if pipeline is not None else None
        self.moods = list(score.moods)
        self.on_demand = OnDemand(self)
        self.encoder = Encoder()  # remembers parts of the messages it encodes
        # aiohttp internals the WebSocket fast path relies on: checked once, at start.
        problem = fast_path_problem()
        if problem is not None:
            log.info("WebSocket messages take aiohttp's plain path: %s", problem)
        self.direct = problem is None
        self.metrics = Metrics(
            sessions=lambda: len(self.manager.sessions),
            connections=lambda: self.manager.connections,
            tracks=lambda: len(self.stored_tracks()),
        )
        self.admission = Admission(
            max_connections=config.max_connections,
            max_connections_per_address=config.max_connections_per_address,
            session_rate_per_s=config.session_rate_per_s,
            session_burst=config.session_burst,
            api_rate_per_s=config.api_rate_per_s,
            api_burst=config.api_burst,
            trusted_proxies=config.trusted_proxies,
        )
        self.admission.refused = self.metrics.refused
        self.manager = SessionManager(
            score,
            self.tracks_for,
            self.metrics,
            plugins=plugins,
            lead_s=config.lead_s,
            ttl_s=config.session_ttl_s,
            http_ttl_s=config.http_session_ttl_s,
            on_pending=self.on_demand.request,
            director_factory=director_factory,
            encoder=self.encoder,
        )
        if config.rooms is not None:
            from segue.core.server.rooms_redis import RedisRooms

            rooms = RedisRooms(
                config.rooms.url, config.rooms.prefix, self.manager, config.session_ttl_s
            )
            self.manager.rooms = rooms
            self.metrics.rooms_round_trips = lambda: rooms.round_trips
        self._tracks: dict[str, tuple[Track, ...]] = {}
        self.websockets: set[web.WebSocketResponse] = set()
        self._failures = 0  # messages whose handling failed since the last report
        self._failure_log_at = 0.0
        self.cork = Cork()  # replies to one read, written once per connection
        self.lane = SlowLane()  # reads from connections refused a frame: after the others
        self.metrics.slow_lane_chunks = lambda: self.lane.chunks
        self._tokens = [t.encode() for t in config.tokens]
        self._origins = frozenset(config.origins)

    def log_request_failure(self, request: web.Request, exc: BaseException, note: str = "") -> None:
        """One ERROR line for a request that failed (``GET /tracks/…: plugin X: …``), the
        traceback at debug level (``-v``)."""
        log.error("%s %s: %s%s", request.method, request.path, self.manager.failure_line(exc), note)
        log.debug("the traceback of %s %s", request.method, request.path, exc_info=exc)

    # --- tracks ----------------------------------------------------------------------------

    def tracks_for(self, mood: str) -> Sequence[Track]:
        """The Director's TrackSource: stored tracks of ``mood``.

        Found tracks are remembered (a stored track is immutable) until ``forget_tracks``
        (a generation finished); a mood with none is asked again every time, so tracks
        stored meanwhile by another process (``segue pregen``) are found.
        """
        tracks = self._tracks.get(mood)
        if tracks is not None:
            self.metrics.cache_hits += 1
            return tracks
        if self.pipeline is None:
            return ()
        found = tuple(self.pipeline.tracks_for(mood))
        if found:
            self._tracks[mood] = found
            self.metrics.cache_hits += 1
        else:
            self.metrics.cache_misses += 1
        return found

    def forget_tracks(self) -> None:
        self._tracks.clear()

    def stored_tracks(self) -> list[Track]:
        """Every stored track of this score, once each."""
        if self.pipeline is None:
            return []
        seen: dict[str, Track] = {}
        for mood in self.score.moods:
            for track in self.pipeline.tracks_for(mood):
                seen.setdefault(track.id, track)
        return list(seen.values())

    def lookup_track(self, track_id: str) -> Track | None:
        """A stored track by id (cache key), if its file is in the primary sink."""
        if self.pipeline is None:
            return None
        track = self.pipeline.cache.get(track_id)
        if track is None or track.id != track_id:
            return None
        if self.sink is None or not self.sink.exists(track.filename):
            return None
        return track

    def track_size(self, track: Track) -> int | None:
        path = self.sink.local_path(track.filename) if self.sink is not None else None
        if path is None:
            return None
        try:
            return os.stat(path).st_size
        except OSError:
            return None

    # --- applying messages (shared by WebSocket and HTTP) ------------------------------

    def apply_state(self, session: Session, now: float, msg: StateMessage) -> list[Any]:
        try:
            return session.update(now, set=msg.set, unset=msg.unset, replace=msg.replace)
        except StateError as exc:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"state: {exc}", msg.id) from None
        except RoomUnavailable as exc:
            raise ProtocolError(ErrorCode.ROOM_UNAVAILABLE, str(exc), msg.id) from None

    def apply_event(self, session: Session, now: float, msg: EventMessage) -> list[Any]:
        try:
            return session.event(now, msg.name, msg.data)
        except RoomUnavailable as exc:
            raise ProtocolError(ErrorCode.ROOM_UNAVAILABLE, str(exc), msg.id) from None
        except UnknownEvent:
            known = ", ".join(sorted(self.score.events)) or "none"
            raise ProtocolError(
                ErrorCode.UNKNOWN_EVENT,
                f"event.name: unknown event {msg.name!r} (known: {known})",
                msg.id,
            ) from None

    @staticmethod
    def last_cue(outputs: Sequence[Any]) -> Cue | None:
        for out in reversed(outputs):
            if isinstance(out, Cue):
                return out
        return None

    def pending_failed(self, mood: str, reason: str) -> None:
        """Generation for ``mood`` failed: sessions waiting for it hear why (the music
        they have plays on; the next state change asks again)."""
        frame = frame_message({"type": "pending", "mood": mood, "reason": "failed"})
        for session in self.manager.sessions.values():
            if session.pending_mood == mood:
                session.pending_mood = None
                session.broadcast(frame, "pending")

    def session_room(self, sid: str | None) -> bool:
        """Whether ``sid`` exists or a new session may be made (``max_sessions``)."""
        manager = self.manager
        return (sid is not None and sid in manager.sessions) or len(
            manager.sessions
        ) < self.config.max_sessions

    def session_refusal(self, request: web.Request, sid: str | None) -> web.Response | None:
        """The reply refusing a new session ``sid`` (``None``: admitted or not new)."""
        if sid is not None and sid in self.manager.sessions:
            return None
        if len(self.manager.sessions) >= self.config.max_sessions:
            self.admission.note("max_sessions")
            return error_response(503, "too_many_sessions", "the server holds too many sessions")
        if not self.admission.new_session_ok(self.admission.client_key(request)):
            self.metrics.errors[ErrorCode.RATE_LIMITED] += 1
            return error_response(
                429,
                ErrorCode.RATE_LIMITED,
                f"too many new sessions from this address (over {self.config.session_rate_per_s:g}"
                f"/s, burst {self.config.session_burst}); join an existing one or retry later",
                headers={"Retry-After": "5"},
            )
        return None

    def connections(self) -> list[Connection]:
        """Every open connection (a snapshot)."""
        return [c for s in list(self.manager.sessions.values()) for c in s.connections]

    # --- auth ------------------------------------------------------------------------------

    def authorized(self, request: web.Request) -> bool:
        if not self._tokens:
            return True
        given = None
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if given is None:
            given = _query_param(request, "token")
        if not given:
            return False
        raw = given.encode()
        ok = False
        for token in self._tokens:  # compare with every token: no timing hint of which
            ok |= hmac.compare_digest(raw, token)
        return ok

    def origin_allowed(self, request: web.Request) -> bool:
        if not self._origins:
            return True
        origin = request.headers.get("Origin")
        if origin is None or origin in self._origins:
            return True
        # A page this server served (the demo page) is of its own origin, not another one;
        # but only where the Host names this machine, not any name: a DNS-rebinding page
        # (evil.example made to resolve to 127.0.0.1) asks with Host evil.example, its own
        # origin. A name of this server (behind a proxy) is listed in ``origins`` instead.
        host = request.headers.get("Host")
        return host is not None and origin.partition("://")[2] == host and names_this_host(host)

    # --- WebSocket -------------------------------------------------------------------------

    async def ws_handler(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        # ``?session=`` (an empty room field) is "without one": the server makes one.
        sid = _query_param(request, "session") or None
        watch = _query_param(request, "watch") or None
        problem = session_id_problem(sid)
        if problem is None and watch not in (None, "state"):
            problem = f"watch: must be 'state' (the room's state), not {watch[:40]!r}"
        if problem is not None:
            self.metrics.errors[ErrorCode.BAD_MESSAGE] += 1
            return error_response(400, ErrorCode.BAD_MESSAGE, problem)
        if self.shutting_down:
            return error_response(503, "shutting_down", "the server is shutting down")
        refusal = self.session_refusal(request, sid)
        if refusal is not None:
            return refusal
        ws = DirectResponse(
            direct=self.direct,
            compress=False,  # frames are built once for every receiver, uncompressed
            # A frame over the limit still reaches us (up to twice the limit), so the
            # client gets a ``too_large`` error before the 1009 close; beyond that
            # aiohttp closes with 1009 itself.
            max_msg_size=2 * config.max_frame_bytes,
            timeout=config.close_timeout_s,
            heartbeat=None,
            # Pings and pongs come to the read loop: they pay the rate limit like every
            # frame, and a pong tells the client is alive.
            autoping=False,
            decode_text=False,
        )
        if not ws.can_prepare(request).ok:
            return error_response(
                426,
                ErrorCode.BAD_MESSAGE,
                "/ws needs a WebSocket upgrade",
                headers={"Upgrade": "websocket", "Connection": "Upgrade"},
            )
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client left during the handshake: nothing to do
            # (aiohttp finishes a response after the handler; a plain one fails quietly
            # on the closed connection, the half-prepared WebSocket would raise)
            return web.Response(status=400)
        if not self.authorized(request):
            # Accepted then closed, so that a browser sees the close code.
            self.metrics.errors[ErrorCode.UNAUTHORIZED] += 1
            self.metrics.close(CloseCode.UNAUTHORIZED)
            await ws.send_str(
                '{"type":"error","code":"unauthorized","message":"missing or invalid token"}'
            )
            await ws.close(code=CloseCode.UNAUTHORIZED, message=b"unauthorized")
            return ws
        transport = request.transport
        if transport is None:
            return ws
        _keepalive(transport)
        now = time.time()
        if sid is None:
            sid = secrets.token_urlsafe(12)
        conn = Connection(
            ws,
            transport,
            MessageLimiter(config.rate_per_s, config.burst, time.monotonic()),
            config.send_buffer_bytes,
            on_drop=self._on_drop,
            cork=self.cork,
        )
        self.websockets.add(ws)
        self.metrics.connections_accepted += 1
        try:
            session, _created = self.manager.get_or_create(sid, now)
            sent = self.metrics.sent
            if conn.send(frame_message(welcome_message(sid, now, self.moods))):
                sent["welcome"] += 1
            for kind, frame in session.join_frames(now, watch=bool(watch)):
                if conn.send(frame):
                    sent[kind] += 1
            conn.watch = bool(watch)
            self.manager.attach(session, conn)
            log.debug(
                "session %s: connection from %s (%s session, %d connected)",
                sid,
                request.remote,
                "new" if _created else "existing",
                len(session.connections),
                extra={"session": sid, "remote": request.remote},
            )
            # Text messages go to _handle_text as they are parsed (see ws_direct); the
            # read loop below gets the rest, and any text queued before this.
            # Replies to the messages of one chunk are written once, at its end.
            if ws.early:  # it sent frames before the handshake's answer: not a good sign
                conn.suspect_until = _monotonic() + SUSPECT_S
            ws.bind(
                conn,
                self._handle_text,
                self.cork.begin,
                self.cork.flush,
                frames=self._handle_frame,
                lane=self.lane,
            )
            await self._read_loop(ws, conn)
            # A close we started (flood, too large, slow reader) must finish with its
            # code before aiohttp's own end-of-response close (1000) gets a chance.
            await conn.wait_closed()
        finally:
            ws.unbind()
            self.manager.detach(conn)
            self.websockets.discard(ws)
            log.debug(
                "session %s: connection from %s closed (code %s)",
                sid,
                request.remote,
                ws.close_code,
                extra={"session": sid, "remote": request.remote, "code": ws.close_code},
            )
        return ws

    def drop_silent(self, conn: Connection) -> None:
        """A client that stopped answering pings: its connection is aborted (there is
        nobody to send a close frame to); it counts as closed with 1006."""
        self.metrics.close(_ABNORMAL)
        self.admission.note("ping_timeout")
        conn.closed = True
        conn.transport.abort()

    def _on_drop(self, conn: Connection, code: int) -> None:
        self.metrics.close(code)
        if code == CloseCode.TRY_AGAIN:
            self.metrics.slow_drops += 1

    async def _read_loop(self, ws: web.WebSocketResponse, conn: Connection) -> None:
        receive = ws.receive
        handle = self._handle_text
        frame = self._handle_frame
        while True:
            msg = await receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                handle(conn, msg.data)
            elif kind is WSMsgType.BINARY or kind is WSMsgType.PING or kind is WSMsgType.PONG:
                frame(conn, kind, msg.data)
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                if kind is WSMsgType.ERROR:
                    code = ws.close_code or CloseCode.TOO_BIG
                    self.metrics.close(code)
                break
            if conn.closed:
                break

    def _handle_frame(self, conn: Connection, kind: WSMsgType, data: bytes) -> None:
        """A binary, ping or pong frame (from the read loop, or as it is parsed)."""
        # Every frame pays the rate limit (a flood of pings or binary frames is a
        # flood), and tells the client is alive.
        received = self.metrics.received
        verdict = conn.limiter.check(_monotonic())
        if verdict is not _OK:
            received["invalid"] += 1
            self._refuse_rate(conn, verdict)
            return
        received[_FRAME_NAMES[kind]] += 1
        if kind is WSMsgType.BINARY:
            self._send_error(
                conn,
                ErrorCode.BAD_MESSAGE,
                "binary frames are not part of protocol 1; send JSON text",
                None,
            )
        elif kind is WSMsgType.PING and conn.send(_pong_frame(data)):
            self.metrics.sent["pong_frame"] += 1

    def _refuse_rate(self, conn: Connection, verdict: Verdict) -> None:
        """A frame over the connection's rate: an error, and on a sustained flood, 1008."""
        if verdict is Verdict.FLOOD:
            self._send_error(
                conn,
                ErrorCode.RATE_LIMITED,
                "sustained flood: closing the connection",
                None,
            )
            conn.close(CloseCode.POLICY, "rate limit exceeded")
        else:
            config = self.config
            self._send_error(
                conn,
                ErrorCode.RATE_LIMITED,
                f"over {config.rate_per_s:g} messages/s (burst {config.burst}); message dropped",
                None,
            )

    def _send_error(self, conn: Connection, code: str, message: str, id: Any) -> None:
        self.metrics.errors[code] += 1
        if code != ErrorCode.ROOM_UNAVAILABLE:  # the client's fault: the slow lane
            conn.suspect_until = _monotonic() + SUSPECT_S
        if conn.send(frame_message(error_message(code, message, id))):
            self.metrics.sent["error"] += 1

    def _handle_text(self, conn: Connection, data: bytes | str) -> None:
        config = self.config
        metrics = self.metrics
        if len(data) > config.max_frame_bytes:
            metrics.received["invalid"] += 1
            self._send_error(
                conn,
                ErrorCode.TOO_LARGE,
                f"message of {len(data)} bytes is over the limit of {config.max_frame_bytes}",
                None,
            )
            conn.close(CloseCode.TOO_BIG, "message too large")
            return
        # A token per message, and one per 2 KiB: decoding costs the server by the byte.
        verdict = conn.limiter.check(_monotonic(), 1.0 + (len(data) >> 11))
        if verdict is not _OK:
            metrics.received["invalid"] += 1
            self._refuse_rate(conn, verdict)
            return
        try:
            # One decode of the frame; the commonest message, {"type":"state","set":{...}},
            # goes straight to the session without a StateMessage.
            obj = decode_client_frame(data)
            set_ = state_set_only(obj)
            if set_ is not None:
                metrics.received["state"] += 1
                session = conn.session
                if session is None:
                    return
                try:
                    session.update(_time(), set_)
                except StateError as exc:
                    raise ProtocolError(ErrorCode.BAD_MESSAGE, f"state: {exc}", None) from None
                except RoomUnavailable as exc:
                    raise ProtocolError(ErrorCode.ROOM_UNAVAILABLE, str(exc), None) from None
                return
            msg = parse_client_object(obj)
            metrics.received[msg.type] += 1
            session = conn.session
            if session is None:
                return
            now = time.time()
            if type(msg) is StateMessage:
                self.apply_state(session, now, msg)
            elif type(msg) is PingMessage:
                if conn.send(frame_message(pong_message(msg.t, now, msg.id))):
                    metrics.sent["pong"] += 1
            elif type(msg) is DuckRequest:
                session.duck(now, msg.spec)
            else:
                self.apply_event(session, now, msg)  # type: ignore[arg-type]
        except ProtocolError as exc:
            if exc.code in (ErrorCode.BAD_JSON, ErrorCode.BAD_MESSAGE, ErrorCode.UNKNOWN_TYPE):
                metrics.received["invalid"] += 1
            self._send_error(conn, exc.code, exc.message, exc.id)
        except Exception as exc:
            # A bug (here, in the rules engine or a plugin) must not end the connection
            # or reach the client as a traceback; it is logged with the session.
            # A client that triggers it on every message must not fill the disk: one
            # traceback per interval, the rest counted.
            session = conn.session
            self._failures += 1
            now = _monotonic()
            if now >= self._failure_log_at:
                self._failure_log_at = now + FAILURE_LOG_INTERVAL_S
                log.exception(
                    "session %s: failed to handle a message: %s (%d failure(s) since the last "
                    "report; at most one traceback per %g s)",
                    session and session.id,
                    self.manager.failure_line(exc),
                    self._failures,
                    FAILURE_LOG_INTERVAL_S,
                )
                self._failures = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def close_websockets(self) -> None:
        """Close every WebSocket with 1001 (going away)."""
        self.shutting_down = True
        sockets = list(self.websockets)
        self.metrics.close(CloseCode.GOING_AWAY, len(sockets))
        await asyncio.gather(
            *(
                ws.close(code=CloseCode.GOING_AWAY, message=b"server shutting down")
                for ws in sockets
            ),
            return_exceptions=True,
        )

    async def aclose(self, owns_pipeline: bool) -> None:
        self.shutting_down = True
        await self.on_demand.wait(self.config.shutdown_grace_s)
        if self.manager.rooms is not None:
            await self.manager.rooms.close()  # hands owned rooms over at once
        self.manager.close()
        if owns_pipeline and self.pipeline is not None:
            await self.pipeline.aclose()


def _query_param(request: web.Request, name: str) -> str | None:
    """One query parameter, without the MultiDict that ``request.query`` would build and
    keep for the connection's lifetime (WebSocket requests live as long as the socket)."""
    from urllib.parse import parse_qsl

    for key, value in parse_qsl(request.query_string, keep_blank_values=True):
        if key == name:
            return value
    return None


_PING_FRAME = b"\x89\x00"  # a WebSocket ping with no payload, unmasked (server to client)


def _pong_frame(payload: bytes) -> bytes:
    """A pong echoing a client's ping (control payloads are at most 125 bytes)."""
    payload = bytes(payload[:125])
    return bytes((0x8A, len(payload))) + payload


def _keepalive(transport: asyncio.BaseTransport) -> None:
    """TCP keepalive on the connection's socket: a vanished peer is noticed in ~90 s."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass


async def _pinger(server: SegueServer, interval: float) -> None:
    """Ping every connection once per ``interval``, a slice of them each second; drop
    those silent (no pong, no message) for ``interval + pong_timeout_s``."""
    tick = 0
    slices = max(1, round(interval))
    silent_limit = interval + server.config.pong_timeout_s
    while True:
        await asyncio.sleep(interval / slices)
        tick = (tick + 1) % slices
        now = _monotonic()
        for i, conn in enumerate(server.connections()):
            if i % slices != tick:
                continue
            # The limiter's clock moves with every frame the client sends, pongs too.
            if now - conn.limiter.updated > silent_limit:
                server.drop_silent(conn)
            elif conn.send(_PING_FRAME):
                server.metrics.sent["ping_frame"] += 1


SERVER: web.AppKey[SegueServer] = web.AppKey("segue_server", SegueServer)


def create_app(
    score: Score,
    *,
    pipeline: Pipeline | None = None,
    plugins: Plugins | None = None,
    generator: str | None = None,
    config: ServerConfig | None = None,
    director_factory: Any = None,
    **overrides: Any,
) -> web.Application:
    """The aiohttp app serving ``score``.

    Without ``pipeline`` one is built from the score (and ``plugins``, loaded if not
    given) and closed with the app. ``overrides`` replace ServerConfig fields.
    """
    owns_pipeline = pipeline is None
    if plugins is None:
        from segue.core.plugins import Plugins

        plugins = pipeline.plugins if pipeline is not None else Plugins()
    if pipeline is None:
        from segue.core.pregen.pipeline import Pipeline

        pipeline = Pipeline(score, plugins, generator=generator)
    if config is None:
        config = ServerConfig.from_score(score, **overrides)
    elif overrides:
        config = replace(config, **overrides)
    pipeline.plan()  # a generator that refuses the plan fails here, not mid-session
    server = SegueServer(score, pipeline, plugins, config, director_factory=director_factory)

    async def api(request: web.Request, handler: Any, preflight: bool) -> web.StreamResponse:
        """An /api/* request from an allowed origin: token (not in a browser's CORS
        preflight, which never carries one), rate, then the handler."""
        if not preflight and not server.authorized(request):
            server.metrics.errors[ErrorCode.UNAUTHORIZED] += 1
            return error_response(
                401,
                ErrorCode.UNAUTHORIZED,
                "missing or invalid token (send 'Authorization: Bearer <token>' or ?token=)",
                headers={"WWW-Authenticate": 'Bearer realm="segue"'},
            )
        admission = server.admission
        cost = 1.0 + ((request.content_length or 0) >> 11)  # as for frames
        if not admission.api_ok(admission.client_key(request), cost):
            server.metrics.errors[ErrorCode.RATE_LIMITED] += 1
            return error_response(
                429,
                ErrorCode.RATE_LIMITED,
                f"over {config.api_rate_per_s:g} API requests/s from this address "
                f"(burst {config.api_burst})",
                headers={"Retry-After": "1"},
            )
        if preflight:
            return web.Response(status=204, headers=CORS_PREFLIGHT)
        response = await handler(request)
        resource = request.match_info.route.resource
        key = (resource.canonical if resource is not None else "?", response.status)
        server.metrics.http[key] = server.metrics.http.get(key, 0) + 1
        return response

    @web.middleware
    async def failures(request: web.Request, handler: Any) -> web.StreamResponse:
        """A request whose handler raised (a cache or sink plugin's bug, or ours): one log
        line naming the plugin (the traceback at debug level, ``-v``) and a 500 in the
        error shape, not aiohttp's traceback."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own refusals (no such route or file, a method the route does not
            # take) in the error shape too, not its "404: Not Found" text.
            if exc.status < 400 or exc.text not in (None, "", f"{exc.status}: {exc.reason}"):
                raise
            keep = {k: v for k, v in exc.headers.items() if k not in _BODY_HEADERS}
            message = f"{request.method} {request.path}: {exc.reason.lower()}"
            if exc.status == 405:
                message += f" (allowed: {', '.join(exc.headers.get('Allow', '').split(','))})"
            code = _HTTP_CODES.get(exc.status, "bad_message")
            return error_response(exc.status, code, message, headers=keep)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            server.log_request_failure(request, exc)
            return error_response(
                500, "server_error", "the server failed to answer (its log says why)"
            )

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path == "/ws" or path.startswith("/api/"):
            if not server.origin_allowed(request):
                return error_response(
                    403,
                    "forbidden_origin",
                    f"origin {request.headers.get('Origin')!r} is not allowed",
                )
            if path == "/ws":
                return await handler(request)
            origin = request.headers.get("Origin")
            if origin is None:  # not a browser's cross-origin call: no CORS headers
                return await api(request, handler, preflight=False)
            # A page of an allowed origin may call the API (and read its answers, errors too).
            cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
            preflight = (
                request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
            )
            try:
                response = await api(request, handler, preflight)
            except web.HTTPException as exc:
                exc.headers.update(cors)
                raise
            response.headers.update(cors)
            return response
        return await handler(request)

    app = web.Application(middlewares=[failures, guard], client_max_size=config.max_frame_bytes)
    app[SERVER] = server
    app.router.add_get("/ws", server.ws_handler)
    HttpApi(server).add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        server.started = time.monotonic()
        if server.manager.rooms is not None:
            await server.manager.rooms.start()
        loop = asyncio.get_running_loop()
        background = []
        if config.ping_interval_s:
            background.append(loop.create_task(_pinger(server, config.ping_interval_s)))
        if config.generate_in_background:
            from segue.core.server.warmup import generate_in_background

            background.append(loop.create_task(generate_in_background(server)))
        yield
        for task in background:  # no new generation starts; what is in flight may finish
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.aclose(owns_pipeline)

    async def on_shutdown(app: web.Application) -> None:
        await server.close_websockets()
        server.admission.close()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    plugins.register_routes(app)
    return app


# The error code of aiohttp's own refusals by status (docs/protocol.md's HTTP errors).
_HTTP_CODES = {403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
_BODY_HEADERS = frozenset({"Content-Type", "Content-Length", "Content-Encoding"})


async def start(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    backlog: int = BACKLOG,
    sockets: Sequence[socket.socket] | None = None,
) -> tuple[web.AppRunner, int]:
    """Run ``app`` on ``host:port`` (port 0: any free port), or on ``sockets`` from
    ``listen()``; returns the runner and the port."""
    if sockets is None:
        sockets = listen(host, port, backlog)
    server = app.get(SERVER)
    # aiohttp's keep-alive timer also runs from the moment a connection opens and closes
    # it when no request has arrived by then: the header timeout (slowloris).
    keepalive = server.config.header_timeout_s if server is not None else 75.0
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=10.0,
        keepalive_timeout=keepalive,
        # After an error reply to a request whose body was not read (413, 408), aiohttp
        # reads and drops the rest for this long so the client sees the reply (10 s by
        # default: a slow body would hold its connection that much longer).
        lingering_time=2.0,
    )
    await runner.setup()
    if server is not None and runner.server is not None:
        install(runner.server, server.admission)
    for sock in sockets:
        # asyncio accepts up to ``backlog`` connections each time the socket is ready and
        # sets them all up in the next turn of the loop: a storm of thousands (an idle
        # flood renewed) stalled every client for tens of ms. It is given a small batch
        # and the kernel's queue its size back.
        await web.SockSite(runner, sock, backlog=ACCEPT_BATCH).start()
        sock.listen(backlog)
    return runner, int(sockets[0].getsockname()[1])


# Young collections once per this many new objects (Python's default: 700), full ones
# once per this many middle-generation ones (default: 10). See settle_heap.
GC_YOUNG_EVERY = 5000
GC_FULL_EVERY = 100


def settle_heap() -> None:
    """Tune the garbage collector for a long-running server; call once it has started.

    What was loaded at startup (modules, the score, plugins, tracks: some 100,000
    objects) is moved out of the collector's sight (``gc.freeze``), and collections run
    less often. Under a flood of connections with Python's defaults, objects that live
    a few milliseconds (a refused connection, a request) outlived the young generations
    by the thousand and Python ran a full collection about every second, each walking
    every object in the process: 100 ms stalls of every connection at once (measured
    with ``benchmarks/hostile.py``). With this, short-lived objects die young and a full
    collection walks the connections' own objects only, and rarely. The frozen objects
    are never collected: call it once, in the process that serves.
    """
    gc.collect()
    gc.freeze()
    _young, middle, _full = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_EVERY, middle, GC_FULL_EVERY)
    gc.enable()  # `segue serve` starts with it off


__all__ = [
    "SERVER",
    "SegueServer",
    "ServerConfig",
    "create_app",
    "listen",
    "settle_heap",
    "start",
]
