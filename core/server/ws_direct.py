"""Text frames handled as aiohttp parses them, without a task switch per message.

aiohttp's ``WebSocketResponse`` parses frames in the connection's ``data_received``
(a Cython parser), puts each message on a queue and wakes the task waiting in
``ws.receive()``; that task then handles it. Waking a task costs more than the rest of
a small message's trip through aiohttp (a future, a loop iteration, a coroutine resume:
2-3 us of CPU in CPython). The server's handling of a text message is synchronous, so
:class:`DirectResponse` lets the parser hand text messages straight to it:

- its queue (a subclass of aiohttp's) calls the bound handler for a TEXT message when
  nothing is queued before it and the connection is open; everything else (a message
  that arrived before the handler was bound, pings, pongs, close frames, errors, and
  text after a close began) is queued as usual and read by the connection's task from
  ``ws.receive()``, which still owns the closing handshake, autoping and errors;
- so order is kept (a text message never overtakes one queued before it), limits are
  the server's own as before (it still sees every frame, in order), and a frame over
  ``max_msg_size`` still fails in the parser and closes with 1009.

Binary, ping and pong frames go to a second bound handler the same way (they pay the
rate limit and are answered in the same corked write as the text around them).

**The slow lane.** A connection that was recently refused a frame (bad JSON, over its
rate, binary...: the server sets ``conn.suspect_until``) is not parsed when its bytes
arrive: the chunk is held, the connection's reading paused, and :class:`SlowLane` parses
held chunks after everything else that was ready, about a millisecond's worth per turn of
the event loop, then resumes reading. Attackers whose frames arrive in synchronised
bursts (thousands of refused frames at once) so wait for the loop's spare time instead
of stalling it: well-behaved connections' messages wait for at most one turn's budget,
and a suspect's unread bytes stay in the kernel's socket buffer (TCP pushes back on the
sender) instead of in the server's memory.

This touches aiohttp internals (``_post_start``, the queue and parser classes, the
protocol's ``_payload_parser``), so it runs only on the aiohttp versions it was tested
on (:data:`TESTED_AIOHTTP`; :func:`fast_path_problem`, checked once when a server
starts, says why not), checks for those internals again on each connection, and falls
back to the plain path when anything differs (``DirectResponse.direct`` is then False
and every message goes through ``ws.receive()``); tests/test_server_direct.py tells
which path runs. pyproject.toml bounds aiohttp below its next major.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

log = logging.getLogger("segue.server")

# aiohttp (major, minor) versions the fast path was tested on: [first, last]. To widen
# it, run tests/test_server_direct.py on the new version.
TESTED_AIOHTTP = ((3, 14), (3, 14))

Handler = Callable[[Any, bytes], None]
FrameHandler = Callable[[Any, WSMsgType, bytes], None]
SLOW_LANE_BUDGET_S = 0.001  # held chunks parsed per turn of the event loop (at least one)
SLOW_LANE_SLICE = 16384  # bytes of a held chunk parsed at a time

try:  # pragma: no branch - present in the aiohttp this is written for
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    from aiohttp.helpers import DEFAULT_CHUNK_SIZE
except ImportError:  # pragma: no cover - another aiohttp layout: the plain path
    WebSocketDataQueue = WebSocketReader = None  # type: ignore[assignment,misc]
    DEFAULT_CHUNK_SIZE = 2**16

_TEXT = WSMsgType.TEXT
_OTHER = frozenset((WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG))
_NOTHING = (False, b"")  # what the reader's feed_data returns: (eof, tail)
_monotonic = time.monotonic
_perf = time.perf_counter


class SlowLane:
    """Held chunks of suspect connections, parsed after the rest of each loop turn.

    One per server (one event loop). :meth:`hold` takes a chunk and pauses the
    connection's reading; a callback parses held chunks in arrival order, 16 KiB at a
    time, for up to ``budget_s`` (at least one slice), resumes their connections'
    reading and, if chunks are left, runs again at the next turn of the loop, after the
    I/O that turn found ready.
    """

    __slots__ = ("budget_s", "chunks", "held", "scheduled")

    def __init__(self, budget_s: float = SLOW_LANE_BUDGET_S) -> None:
        self.budget_s = budget_s
        self.held: deque[Any] = deque()
        self.scheduled = False
        self.chunks = 0  # chunks held, ever (a metric)

    def hold(self, reader: Any, data: bytes) -> tuple[bool, bytes]:
        """Hold ``data``, read from ``reader``'s connection, for the lane's next turn."""
        if reader.held is None:
            reader.held = data
            self.add(reader)
        else:  # read again before the pause took (aiohttp resumed it): keep the order
            reader.held += data
            self.chunks += 1
        return _NOTHING

    def add(self, reader: Any) -> None:
        """Queue ``reader``, holding a chunk, and pause its connection's reading."""
        self.chunks += 1
        self.held.append(reader)
        protocol = reader.protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.pause_reading()
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        held = self.held
        deadline = _perf() + self.budget_s
        while held:
            reader = held.popleft()
            try:
                if reader.release():
                    held.append(reader)  # the rest of its chunk, after the others'
            except Exception:  # one connection's failure is not the others'
                log.exception("failed to parse a held chunk")
            if _perf() >= deadline:
                break
        if held:
            asyncio.get_running_loop().call_soon(self._run)
        else:
            self.scheduled = False


if WebSocketDataQueue is not None:

    class DirectQueue(WebSocketDataQueue):  # type: ignore[misc,valid-type]
        """aiohttp's message queue, handing text messages to a bound handler."""

        __slots__ = ("conn", "frames", "handler", "ws")  # one per connection: no __dict__

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.handler: Handler | None = None
            self.frames: FrameHandler | None = None
            self.conn: Any = None
            self.ws: Any = None

        def feed_data(self, data: Any, size: int) -> None:
            kind = data[0]
            if not self._buffer:
                if kind is _TEXT:
                    handler = self.handler
                    if handler is not None:
                        conn = self.conn
                        if not conn.closed and not self.ws.closed:
                            try:
                                handler(conn, data[1])
                            except Exception:  # never into the parser: it would end it
                                log.exception("failed to handle a message")
                            return
                elif kind in _OTHER:
                    frames = self.frames
                    if frames is not None:
                        conn = self.conn
                        if not conn.closed and not self.ws.closed:
                            try:
                                frames(conn, kind, data[1])
                            except Exception:
                                log.exception("failed to handle a frame")
                            return
            WebSocketDataQueue.feed_data(self, data, size)

    class DirectReader(WebSocketReader):  # type: ignore[misc,valid-type]
        """aiohttp's frame parser, running ``before()`` and ``after()`` around each chunk
        of bytes read that holds more than one frame (so that what the handler writes
        can be written once per chunk)."""

        __slots__ = ("after", "before", "conn", "held", "lane", "protocol")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.before: Callable[[], bool] | None = None
            self.after: Callable[[], None] | None = None
            self.lane: SlowLane | None = None
            self.conn: Any = None  # the server's connection (its queue's, set by bind)
            self.held: bytes | None = None  # a chunk waiting in the slow lane
            self.protocol: Any = None  # aiohttp's RequestHandler (the transport's protocol)

        def feed_data(self, data: Any) -> Any:
            lane = self.lane
            if lane is not None:
                if self.held is not None or self.conn.suspect_until > _monotonic():
                    return lane.hold(self, data if type(data) is bytes else bytes(data))
            elif self.held is not None:  # after early frames, before bind(): kept in order
                self.held += data
                return _NOTHING
            return self.parse(data)

        def release(self) -> bool:
            """Parse the held chunk, at most ``SLOW_LANE_SLICE`` bytes of it (the slow
            lane's turn); True when some is left for the next turn, else read again."""
            data, self.held = self.held, None
            protocol = self.protocol
            if data is None or protocol is None or protocol.transport is None:
                return False
            if protocol._force_close or protocol._close:  # as its data_received checks
                return False
            if len(data) > SLOW_LANE_SLICE:  # a frame may span slices: the parser keeps it
                data, self.held = data[:SLOW_LANE_SLICE], data[SLOW_LANE_SLICE:]
            eof, _tail = self.parse(data)
            if eof:
                self.held = None
                protocol.close()
                return False
            if self.held is not None:
                return True
            # Unless aiohttp holds the connection itself (its own flow control).
            if not (protocol._reading_paused or protocol._buffer_paused):
                protocol.transport.resume_reading()
            return False

        def parse(self, data: Any) -> Any:
            before = self.before
            if before is None or _one_frame(data) or not before():
                return WebSocketReader.feed_data(self, data)
            try:
                return WebSocketReader.feed_data(self, data)
            finally:
                self.after()  # type: ignore[misc]

    def _one_frame(data: Any) -> bool:
        """Whether ``data`` is exactly one masked client frame (nothing to batch), going by
        its header alone (after a partial frame it may be wrong: then a chunk is simply
        handled without batching, which is always correct)."""
        n = len(data)
        if n < 6:
            return False
        size = data[1] & 0x7F
        if size < 126:
            return n == 6 + size
        if size == 126 and n >= 8:
            return n == 8 + ((data[2] << 8) | data[3])
        return False

else:  # pragma: no cover
    DirectQueue = DirectReader = None  # type: ignore[assignment,misc]


def fast_path_problem(version: str | None = None) -> str | None:
    """Why the fast path cannot run on this aiohttp (``version``: the installed one), or
    None when it can."""
    version = aiohttp.__version__ if version is None else version
    first, last = TESTED_AIOHTTP
    tested = f"{first[0]}.{first[1]}" + ("" if first == last else f" to {last[0]}.{last[1]}")
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return f"aiohttp {version!r} is not a version it was tested on ({tested})"
    if not first <= major_minor <= last:
        return f"aiohttp {version} is not a version it was tested on ({tested})"
    if DirectQueue is None:
        return f"aiohttp {version} lacks the internals it uses (aiohttp._websocket.reader)"
    if not hasattr(web.WebSocketResponse(), "_parser"):  # set from 3.14.x (not 3.14.0)
        return f"aiohttp {version} lacks the internals it uses (WebSocketResponse._parser)"
    return None


class DirectResponse(web.WebSocketResponse):
    """A WebSocketResponse whose text messages can go straight to a handler (``bind``);
    with ``direct=False`` (the server found :func:`fast_path_problem`) a plain one."""

    direct = False  # True once prepared with the direct queue
    early = False  # frames came with the upgrade request (held until bind)

    def __init__(self, *, direct: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._allow_direct = direct

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        handler = getattr(request, "protocol", None)
        # Bytes that came with the upgrade request (a client that sends frames without
        # waiting for the 101, which RFC 6455 forbids) are parsed inside aiohttp's
        # _post_start by its own parser: they are taken from it and held for the direct
        # one (``early``), parsed at bind(), so that such a connection takes the direct
        # path too.
        tail = getattr(handler, "_message_tail", None)
        direct = (
            self._allow_direct
            and DirectQueue is not None
            and handler is not None
            and type(tail) is bytes
        )
        if direct and tail:
            handler._message_tail = b""
        super()._post_start(request, protocol, writer)
        if not direct:
            return
        parser = None
        try:
            if (
                getattr(handler, "_payload_parser", None) is self._parser
                and self._reader is not None
                and not len(self._reader._buffer)
            ):
                queue = DirectQueue(handler, DEFAULT_CHUNK_SIZE, loop=self._loop)
                parser = DirectReader(
                    queue,
                    self._max_msg_size,
                    compress=bool(self._compress),
                    decode_text=self._decode_text,
                )
        except Exception:  # pragma: no cover - aiohttp internals differ: plain path
            parser = None
        if parser is None:  # pragma: no cover - the plain path, as aiohttp would have it
            if tail and self._parser is not None:
                self._parser.feed_data(tail)
            return
        queue.ws = self
        parser.protocol = handler
        handler._payload_parser = parser
        self._reader = queue
        self._parser = parser
        self.direct = True
        if tail:
            parser.held = tail
            self.early = True

    def bind(
        self,
        conn: Any,
        handle: Handler,
        before: Callable[[], bool] | None = None,
        after: Callable[[], None] | None = None,
        frames: FrameHandler | None = None,
        lane: SlowLane | None = None,
    ) -> bool:
        """From now on, hand text messages to ``handle(conn, data)`` and binary, ping and
        pong frames to ``frames(conn, kind, data)``, and call ``before()`` and ``after()``
        around each chunk read that holds several frames (``after`` only when ``before``
        returned True); with ``lane``, chunks from the connection while
        ``conn.suspect_until`` is ahead of ``time.monotonic()`` wait in it. Frames that
        came with the upgrade request (``early``) are parsed now, or in ``lane``. False on
        the plain path (the caller then reads from ``receive()``)."""
        if not self.direct:
            return False
        queue = self._reader
        queue.conn = conn
        queue.handler = handle
        queue.frames = frames
        parser = self._parser
        if parser is not None:
            if before is not None and after is not None:
                parser.after = after
                parser.before = before
            parser.lane = lane
            parser.conn = conn
            if parser.held is not None:  # early frames
                if lane is not None:
                    lane.add(parser)
                else:
                    parser.release()
        return True

    def unbind(self) -> None:
        if self.direct and self._reader is not None:
            queue = self._reader
            queue.handler = queue.frames = queue.conn = None
            parser = self._parser
            if parser is not None:
                parser.before = parser.after = parser.lane = parser.conn = None
                parser.held = None
