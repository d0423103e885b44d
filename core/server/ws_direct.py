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

This touches aiohttp internals (``_post_start``, the queue and parser classes, the
protocol's ``_payload_parser``), so it runs only on the aiohttp versions it was tested
on (:data:`TESTED_AIOHTTP`; :func:`fast_path_problem`, checked once when a server
starts, says why not), checks for those internals again on each connection, and falls
back to the plain path when anything differs (``DirectResponse.direct`` is then False
and every message goes through ``ws.receive()``); tests/test_server_direct.py tells
which path runs. pyproject.toml bounds aiohttp below its next major.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

log = logging.getLogger("segue.server")

# aiohttp (major, minor) versions the fast path was tested on: [first, last]. To widen
# it, run tests/test_server_direct.py on the new version.
TESTED_AIOHTTP = ((3, 14), (3, 14))

Handler = Callable[[Any, bytes], None]

try:  # pragma: no branch - present in the aiohttp this is written for
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    from aiohttp.helpers import DEFAULT_CHUNK_SIZE
except ImportError:  # pragma: no cover - another aiohttp layout: the plain path
    WebSocketDataQueue = WebSocketReader = None  # type: ignore[assignment,misc]
    DEFAULT_CHUNK_SIZE = 2**16

_TEXT = WSMsgType.TEXT


if WebSocketDataQueue is not None:

    class DirectQueue(WebSocketDataQueue):  # type: ignore[misc,valid-type]
        """aiohttp's message queue, handing text messages to a bound handler."""

        __slots__ = ("conn", "handler", "ws")  # one per connection: no __dict__

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.handler: Handler | None = None
            self.conn: Any = None
            self.ws: Any = None

        def feed_data(self, data: Any, size: int) -> None:
            if data[0] is _TEXT and not self._buffer:
                handler = self.handler
                if handler is not None:
                    conn = self.conn
                    if not conn.closed and not self.ws.closed:
                        try:
                            handler(conn, data[1])
                        except Exception:  # never into the parser: it would end the connection
                            log.exception("failed to handle a message")
                        return
            WebSocketDataQueue.feed_data(self, data, size)

    class DirectReader(WebSocketReader):  # type: ignore[misc,valid-type]
        """aiohttp's frame parser, running ``before()`` and ``after()`` around each chunk
        of bytes read that holds more than one frame (so that what the handler writes
        can be written once per chunk)."""

        __slots__ = ("after", "before")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.before: Callable[[], bool] | None = None
            self.after: Callable[[], None] | None = None

        def feed_data(self, data: Any) -> Any:
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

    def __init__(self, *, direct: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._allow_direct = direct

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        handler = getattr(request, "protocol", None)
        # Bytes that came with the upgrade request are parsed by aiohttp's own parser
        # inside _post_start; that connection keeps the plain path.
        tail = getattr(handler, "_message_tail", None)
        super()._post_start(request, protocol, writer)
        if not self._allow_direct or DirectQueue is None or tail != b"" or handler is None:
            return
        try:
            if getattr(handler, "_payload_parser", None) is not self._parser:
                return
            if self._reader is None or len(self._reader._buffer):
                return
            queue = DirectQueue(handler, DEFAULT_CHUNK_SIZE, loop=self._loop)
            parser = DirectReader(
                queue,
                self._max_msg_size,
                compress=bool(self._compress),
                decode_text=self._decode_text,
            )
        except Exception:  # pragma: no cover - aiohttp internals differ: plain path
            return
        queue.ws = self
        handler._payload_parser = parser
        self._reader = queue
        self._parser = parser
        self.direct = True

    def bind(
        self,
        conn: Any,
        handle: Handler,
        before: Callable[[], bool] | None = None,
        after: Callable[[], None] | None = None,
    ) -> bool:
        """From now on, hand text messages to ``handle(conn, data)``, and call ``before()``
        and ``after()`` around each chunk read that holds several frames (``after`` only
        when ``before`` returned True). False on the plain path (the caller then reads
        from ``receive()``)."""
        if not self.direct:
            return False
        queue = self._reader
        queue.conn = conn
        queue.handler = handle
        parser = self._parser
        if parser is not None and before is not None and after is not None:
            parser.after = after
            parser.before = before
        return True

    def unbind(self) -> None:
        if self.direct and self._reader is not None:
            queue = self._reader
            queue.handler = queue.conn = None
            parser = self._parser
            if parser is not None:
                parser.before = parser.after = None
