"""The Python client SDK for segue's WebSocket protocol v1 (on ``websockets``).

::

    async with SegueClient("ws://127.0.0.1:8765/ws", session="room-1") as client:
        await client.set_state({"in_combat": True})
        async for msg in client.cues():  # Cue-, Stinger-, Pending-, Layers-, DuckMessage
            if isinstance(msg, CueMessage):
                delay = msg.start_at - client.server_now()
                ...

- ``clock_offset`` is estimated NTP-style from pings (the sample with the shortest
  round trip of ``ping_samples`` wins); ``server_now()`` is the server's clock.
- When the connection drops (not closed by us, not refused), the client reconnects with
  exponential backoff and full jitter to the same session; the server keeps the session
  for its TTL, so state, mood and the cue sequence resume, and it sends the current cue
  again: compare ``seq`` with the cue you are playing to skip it.
- Close 4401 (bad token), 1008 (flood) and 1009 (frame too large) are not retried: the
  iterator raises :class:`ConnectionLost` with the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from segue.core.messages import (
    CueExit,
    CueMessage,
    DuckMessage,
    ErrorMessage,
    LayersMessage,
    PendingMessage,
    PongMessage,
    PrefetchMessage,
    ServerMessageError,
    StingerMessage,
    UnknownMessage,
    Welcome,
    duck_message,
    event_message,
    parse_server_message,
    ping_message,
    state_message,
)
from segue.core.protocol import CloseCode, dumps
from segue.core.track import Track

log = logging.getLogger("segue.client")

CueLike = CueMessage | StingerMessage | PendingMessage | LayersMessage | DuckMessage

# Close codes that reconnecting would not cure.
FATAL_CLOSE_CODES = frozenset({CloseCode.UNAUTHORIZED, CloseCode.POLICY, CloseCode.TOO_BIG})

__all__ = [
    "ConnectionLost",
    "CueExit",
    "CueMessage",
    "DuckMessage",
    "ErrorMessage",
    "LayersMessage",
    "PendingMessage",
    "SegueClient",
    "SegueClientError",
    "StingerMessage",
    "Unauthorized",
]


class SegueClientError(Exception):
    """The SDK cannot go on (refused, closed for good, gave up reconnecting)."""


class Unauthorized(SegueClientError):
    """The server wants a (different) token: close 4401 or HTTP 401."""


class ConnectionLost(SegueClientError):
    """The connection closed and will not be reopened."""

    def __init__(self, message: str, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


_END = object()


def ws_url(url: str, session: str | None, token: str | None) -> str:
    """``url`` (ws, wss, http or https; ``/ws`` added when it has no path) with the query."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"url: expected ws://, wss://, http:// or https://, not {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    query = [(k, v) for k, v in _query_pairs(parts.query) if k not in ("session", "token")]
    if session is not None:
        query.append(("session", session))
    if token is not None:
        query.append(("token", token))
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def _query_pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


class SegueClient:
    """A connection to one session of a segue server, kept open across drops."""

    def __init__(
        self,
        url: str,
        *,
        session: str | None = None,
        token: str | None = None,
        token_in_query: bool = False,
        reconnect: bool = True,
        max_reconnect_attempts: int | None = None,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 10.0,
        ping_samples: int = 5,
        open_timeout_s: float = 10.0,
        send_timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.session = session
        self.token = token
        self.token_in_query = token_in_query
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.ping_samples = max(1, ping_samples)
        self.open_timeout_s = open_timeout_s
        self.send_timeout_s = send_timeout_s

        self.welcome: Welcome | None = None
        self.current_cue: CueMessage | None = None
        self.prefetch: tuple[Track, ...] = ()
        # The latest layers message per mood, and the latest duck (docs/protocol.md).
        self.layers: dict[str, LayersMessage] = {}
        self.duck_state: DuckMessage | None = None
        self.clock_offset = 0.0  # server clock minus ours, seconds
        self.clock_rtt: float | None = None  # round trip of the sample used
        self.reconnects = 0
        self.last_close: tuple[int | None, str] | None = None

        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._failure: SegueClientError | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._errors: asyncio.Queue[ErrorMessage] = asyncio.Queue()
        self._pongs: dict[str, asyncio.Future[tuple[PongMessage, float]]] = {}
        self._ids = itertools.count(1)
        self._supervisor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # --- connecting ------------------------------------------------------------------------

    async def __aenter__(self) -> SegueClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection, read the welcome, and estimate the clock offset."""
        await self._open()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        await self.sync_clock()

    async def _open(self) -> None:
        query_token = self.token if self.token_in_query else None
        url = ws_url(self.url, self.session, query_token)
        headers = {}
        if self.token is not None and not self.token_in_query:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                compression=None,
                open_timeout=self.open_timeout_s,
                max_size=2**24,  # a prefetch of a large score is well under this
                max_queue=None,
                ping_interval=20,
                ping_timeout=20,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
            if status in (401, 403):
                raise Unauthorized(f"HTTP {status}: {body}") from None
            raise SegueClientError(f"HTTP {status}: {body}") from None
        try:
            raw = await asyncio.wait_for(ws.recv(), self.open_timeout_s)
            first = parse_server_message(raw)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            if code == CloseCode.UNAUTHORIZED:
                raise Unauthorized("closed 4401: missing or invalid token") from None
            raise ConnectionLost(f"closed before welcome ({code})", code) from None
        if isinstance(first, ErrorMessage) and first.code == "unauthorized":
            await ws.close()
            raise Unauthorized(f"unauthorized: {first.message}")
        if not isinstance(first, Welcome):
            await ws.close()
            raise SegueClientError(f"expected a welcome first, got {first.type}")
        if first.protocol != 1:
            await ws.close()
            raise SegueClientError(f"server speaks protocol {first.protocol}, this SDK 1")
        self.welcome = first
        self.session = first.session
        self._ws = ws
        self._ready.set()

    async def close(self) -> None:
        """Close the connection for good; iterators end."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(BaseException):
                await self._supervisor
        for task in list(self._background):
            task.cancel()
        self._queue.put_nowait(_END)
        for fut in self._pongs.values():
            if not fut.done():
                fut.cancel()

    # --- reading -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        try:
            while True:
                ws = self._ws
                assert ws is not None
                try:
                    async for raw in ws:
                        self._dispatch(raw)
                except ConnectionClosed:
                    pass
                code, reason = ws.close_code, ws.close_reason or ""
                self.last_close = (code, reason)
                self._ready.clear()
                if self._closing:
                    return
                if code in FATAL_CLOSE_CODES or not self.reconnect:
                    exc_type = Unauthorized if code == CloseCode.UNAUTHORIZED else ConnectionLost
                    if exc_type is Unauthorized:
                        self._fail(Unauthorized(f"closed {code}: {reason}"))
                    else:
                        self._fail(ConnectionLost(f"closed {code}: {reason}", code, reason))
                    return
                log.info("connection lost (%s %s); reconnecting", code, reason)
                if not await self._reconnect():
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never die silently: iterators must learn of it
            self._fail(ConnectionLost(f"client failed: {type(exc).__name__}: {exc}"))

    async def _reconnect(self) -> bool:
        attempt = 0
        while not self._closing:
            attempt += 1
            if self.max_reconnect_attempts is not None and attempt > self.max_reconnect_attempts:
                self._fail(ConnectionLost(f"gave up after {attempt - 1} reconnect attempts"))
                return False
            cap = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(cap / 2, cap))
            try:
                await self._open()
            except Unauthorized as exc:
                self._fail(exc)
                return False
            except (OSError, TimeoutError, InvalidHandshake, SegueClientError) as exc:
                log.debug("reconnect attempt %d failed: %s", attempt, exc)
                continue
            self.reconnects += 1
            task = asyncio.get_running_loop().create_task(self._resync())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return True
        return False

    async def _resync(self) -> None:
        with contextlib.suppress(SegueClientError, TimeoutError, ConnectionClosed):
            await self.sync_clock()

    def _fail(self, exc: SegueClientError) -> None:
        self._failure = exc
        self._ready.set()  # wake senders so that they raise
        self._queue.put_nowait(exc)
        for fut in self._pongs.values():
            if not fut.done():
                fut.set_exception(exc)

    def _dispatch(self, raw: str | bytes) -> None:
        received = time.time()
        try:
            msg = parse_server_message(raw)
        except ServerMessageError as exc:
            log.warning("ignored a server message: %s", exc)
            return
        if isinstance(msg, CueMessage):
            self.current_cue = msg
            self._queue.put_nowait(msg)
        elif isinstance(msg, LayersMessage):
            self.layers[msg.mood] = msg
            self._queue.put_nowait(msg)
        elif isinstance(msg, DuckMessage):
            self.duck_state = msg
            self._queue.put_nowait(msg)
        elif isinstance(msg, (StingerMessage, PendingMessage)):
            self._queue.put_nowait(msg)
        elif isinstance(msg, PongMessage):
            fut = self._pongs.pop(str(msg.id), None) if msg.id is not None else None
            if fut is not None and not fut.done():
                fut.set_result((msg, received))
        elif isinstance(msg, PrefetchMessage):
            self.prefetch = msg.tracks
        elif isinstance(msg, ErrorMessage):
            log.debug("server error %s: %s", msg.code, msg.message)
            self._errors.put_nowait(msg)
        elif isinstance(msg, Welcome):
            self.welcome = msg
        elif isinstance(msg, UnknownMessage):
            log.debug("ignored a message of unknown type %r", msg.data.get("type"))

    async def cues(self) -> AsyncIterator[CueLike]:
        """Cues, stingers and pending notices, in order, across reconnects.

        One consumer: two iterators running at once would share the messages out.
        """
        while True:
            item = await self._queue.get()
            if item is _END:
                self._queue.put_nowait(_END)  # other iterators end too
                return
            if isinstance(item, SegueClientError):
                self._queue.put_nowait(item)
                raise item
            yield item

    async def next_cue(self, timeout: float | None = None) -> CueLike:
        """The next cue, stinger or pending notice; TimeoutError after ``timeout`` s."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _END:
            self._queue.put_nowait(_END)
            raise ConnectionLost("the client is closed")
        if isinstance(item, SegueClientError):
            self._queue.put_nowait(item)
            raise item
        return item

    async def next_error(self, timeout: float | None = None) -> ErrorMessage:
        """The next ``error`` message the server sent."""
        return await asyncio.wait_for(self._errors.get(), timeout)

    # --- sending -------------------------------------------------------------------------

    async def _send(self, msg: Mapping[str, Any]) -> None:
        text = dumps(msg)
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                raise ConnectionLost("the client is closed")
            await asyncio.wait_for(self._ready.wait(), self.send_timeout_s)
            if self._failure is not None:
                raise self._failure
            ws = self._ws
            assert ws is not None
            try:
                await ws.send(text)
                return
            except ConnectionClosed:
                if not self.reconnect:
                    code = ws.close_code
                    raise ConnectionLost(f"closed {code}", code) from None
                if self._ws is ws:
                    self._ready.clear()  # the supervisor reconnects; then send again

    async def set_state(
        self,
        set: Mapping[str, Any] | None = None,
        *,
        unset: Iterable[str] = (),
        replace: Mapping[str, Any] | None = None,
        id: Any = None,
    ) -> None:
        """Merge ``set`` into the session's state, drop ``unset`` keys, or ``replace`` it."""
        await self._send(state_message(set, unset, replace, id))

    async def event(self, name: str, data: Mapping[str, Any] | None = None, id: Any = None) -> None:
        """Send a game event (e.g. ``boss_defeated``)."""
        await self._send(event_message(name, data, id))

    async def duck(
        self,
        depth_db: float | None = None,
        hold_s: float | None = None,
        attack_ms: int | None = None,
        release_ms: int | None = None,
        id: Any = None,
    ) -> None:
        """Duck the music (not stingers), e.g. under dialogue; ``hold_s`` None: until
        ``end_duck()``. Omitted values take the defaults of docs/protocol.md."""
        await self._send(duck_message(depth_db, hold_s, attack_ms, release_ms, id=id))

    async def end_duck(self, id: Any = None) -> None:
        """End the duck under way (the music returns over its ``release_ms``)."""
        await self._send(duck_message(end=True, id=id))

    async def send_raw(self, msg: Mapping[str, Any] | str) -> None:
        """Send any message as is (tests, experiments)."""
        if isinstance(msg, str):
            await self._ready.wait()
            assert self._ws is not None
            await self._ws.send(msg)
        else:
            await self._send(msg)

    # --- clock ---------------------------------------------------------------------------

    async def ping(self, timeout: float = 5.0) -> tuple[float, float]:
        """One clock sample: ``(offset, round_trip)`` in seconds."""
        id = f"clk-{next(self._ids)}"
        fut: asyncio.Future[tuple[PongMessage, float]] = asyncio.get_running_loop().create_future()
        self._pongs[id] = fut
        sent = time.time()
        try:
            await self._send(ping_message(sent, id=id))
            pong, received = await asyncio.wait_for(fut, timeout)
        finally:
            self._pongs.pop(id, None)
        rtt = received - sent
        # NTP: the server stamped its time half-way through the round trip.
        offset = pong.server_time - (sent + received) / 2.0
        return offset, rtt

    async def sync_clock(self, samples: int | None = None) -> float:
        """Estimate ``clock_offset`` from the best (shortest round trip) of ``samples``."""
        best: tuple[float, float] | None = None
        for _ in range(samples or self.ping_samples):
            offset, rtt = await self.ping()
            if best is None or rtt < best[1]:
                best = (offset, rtt)
        assert best is not None
        self.clock_offset, self.clock_rtt = best
        return self.clock_offset

    def server_now(self) -> float:
        """The server's clock now (unix seconds), from ours and the offset."""
        return time.time() + self.clock_offset
