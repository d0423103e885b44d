"""The server's HTTP routes (docs/protocol.md), apart from the WebSocket endpoint.

- ``GET /tracks/{id}.{ext}``: stored tracks only. The name is matched against
  ``<64 hex>.<known format>`` and the id looked up in the cache; the file name served is
  the Track's own, so no user input is ever joined into a path. ``Range`` → 206 (416
  when unsatisfiable), strong ``ETag`` = the file's SHA-256, ``If-None-Match`` → 304,
  immutable caching.
- ``GET /api/score``, ``GET /api/tracks``, ``POST /api/sessions/{id}/state`` and
  ``/events``, ``GET /healthz``, ``GET /metrics``, ``GET /``.

Errors are JSON in the WebSocket error shape: ``{"type":"error","code":…,"message":…}``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from segue.core.cue import Cue, Pending, Stinger
from segue.core.protocol import (
    ErrorCode,
    ProtocolError,
    dumps,
    error_message,
    parse_event_body,
    parse_json_body,
    parse_state_body,
    session_id_problem,
)
from segue.core.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from segue.core.track import CONTENT_TYPES, Track

if TYPE_CHECKING:
    from segue.core.server.app import SegueServer

STATIC = Path(__file__).resolve().parent / "static"  # the web client's files
TRACK_NAME_RE = re.compile(r"([0-9a-f]{64})\.([a-z0-9]{1,8})")
# A stem's file: ``{id}-{stem}.{ext}`` (its name in the track's ``stems``).
STEM_NAME_RE = re.compile(r"([0-9a-f]{64})-[A-Za-z0-9_-]{1,80}\.([a-z0-9]{1,8})")
CACHE_CONTROL = "public, max-age=31536000, immutable"
# Tracks are public and immutable: a page of any origin may fetch and decode them (segue.js
# fetch()es the audio for Web Audio), and read the headers a ranged read needs.
TRACK_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, ETag",
}
# The answer to a browser's preflight of an /api/* call from an allowed origin.
CORS_PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}
CHUNK = 256 * 1024
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII | re.IGNORECASE)


def _not_a_track() -> web.Response:
    """404 in the API's error shape (docs/protocol.md), readable by a page of any origin."""
    return error_response(404, "not_found", "not a stored track of this server", headers=TRACK_CORS)


def json_response(data: Any, status: int = 200, **kwargs: Any) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json", **kwargs)


def error_response(status: int, code: str, message: str, **kwargs: Any) -> web.Response:
    return json_response(error_message(code, message), status=status, **kwargs)


# ----------------------------------------------------------------------------- ranges


class Unsatisfiable(Exception):
    """A Range no byte of the file satisfies (→ 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a single byte range, or None to send the whole file.

    RFC 9110 section 14: a Range the server does not understand (another unit, several
    ranges, bad syntax) is ignored; a valid one that no byte satisfies is a 416.
    """
    if header is None:
        return None
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    # Positions past any file's size mean "to the end" (and spare int() 4,300 digits).
    first = first.lstrip("0")[:19] or ("0" if first else "")
    last = last.lstrip("0")[:19] or ("0" if last else "")
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0:
            raise Unsatisfiable
        return (max(0, size - n), size) if size else _unsatisfiable()
    start = int(first)
    if last:
        end = int(last)
        if end < start:
            return None  # invalid: ignored
        end = min(end + 1, size)
    else:
        end = size
    if start >= size:
        raise Unsatisfiable
    return start, end


def _unsatisfiable() -> tuple[int, int]:
    raise Unsatisfiable


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches all."""
    for part in header.split(","):
        tag = part.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


# ----------------------------------------------------------------------------- routes


class _Refused(Exception):
    """A new session refused by admission control; ``response`` is the reply."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class HttpApi:
    """The HTTP handlers, bound to one SegueServer."""

    def __init__(self, server: SegueServer) -> None:
        self.server = server

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{path:.*}", self.static)
        app.router.add_get("/tracks/{name}", self.track)
        app.router.add_get("/api/score", self.score)
        app.router.add_get("/api/tracks", self.tracks)
        app.router.add_post("/api/sessions/{id}/state", self.post_state)
        app.router.add_post("/api/sessions/{id}/events", self.post_event)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)

    # --- pages and metadata --------------------------------------------------------------

    async def static(self, request: web.Request) -> web.StreamResponse:
        """A file of the web client (segue.js, the demo page's script and styles); anything
        else (a folder, a path that leads out of the folder, even by a symlink) is a 404 in
        the error shape."""
        try:
            path = (STATIC / request.match_info["path"]).resolve()
            found = path.is_relative_to(STATIC) and path.is_file()
        except (OSError, ValueError):  # a name too long, a NUL byte
            found = False
        if not found:
            return error_response(
                404, "not_found", f"{request.method} {request.path}: no such file"
            )
        return web.FileResponse(path)

    async def index(self, request: web.Request) -> web.StreamResponse:
        page = resources.files("segue.core.server").joinpath("static", "index.html")
        try:
            body = page.read_bytes()
        except FileNotFoundError:
            body = b"<!doctype html><title>segue</title><p>segue is running."
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def score(self, request: web.Request) -> web.Response:
        return json_response(self.server.score.public())

    async def tracks(self, request: web.Request) -> web.Response:
        return json_response({"tracks": [t.to_dict() for t in self.server.stored_tracks()]})

    async def healthz(self, request: web.Request) -> web.Response:
        server = self.server
        body = {
            "status": "shutting_down" if server.shutting_down else "ok",
            "sessions": len(server.manager.sessions),
            "connections": server.manager.connections,
            "tracks": len(server.stored_tracks()),
            "generating": len(server.on_demand.tasks),
            "uptime_s": round(time.monotonic() - server.started, 3),
        }
        return json_response(body, status=503 if server.shutting_down else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.server.metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )

    # --- audio ---------------------------------------------------------------------------

    async def track(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        m = TRACK_NAME_RE.fullmatch(name)
        track = None
        if m is not None and m.group(2) in CONTENT_TYPES:
            track = self.server.lookup_track(m.group(1))
        if track is not None and track.format == m.group(2):  # type: ignore[union-attr]
            return await self._send_track(request, track)
        s = STEM_NAME_RE.fullmatch(name)
        if s is not None:
            track = self.server.lookup_track(s.group(1))
            for stem in track.stems if track is not None else ():
                if track.stems[stem].get("file") == name:  # type: ignore[union-attr]
                    return await self._send_track(request, track.stem_track(stem))  # type: ignore[union-attr]
        return _not_a_track()

    async def _send_track(self, request: web.Request, track: Track) -> web.StreamResponse:
        sink = self.server.sink
        etag = f'"{track.sha256 or track.id}"'
        headers = {
            "ETag": etag,
            "Cache-Control": CACHE_CONTROL,
            "Accept-Ranges": "bytes",
            "Content-Type": track.content_type,
            **TRACK_CORS,
        }
        inm = request.headers.get("If-None-Match")
        if inm is not None and etag_matches(inm, etag):
            return web.Response(status=304, headers=headers)
        size = track.bytes or self.server.track_size(track)
        if size is None:
            return _not_a_track()
        range_header = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if if_range is not None and if_range.strip() != etag:
            range_header = None  # the client's copy changed: send it whole
        try:
            span = parse_range(range_header, size)
        except Unsatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            del headers["Content-Type"]
            return error_response(
                416,
                "bad_range",
                f"range not satisfiable: {range_header!r} (size {size})",
                headers=headers,
            )
        if span is None:
            start, end, status = 0, size, 200
        else:
            start, end = span
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = end - start
        chunk = b""
        if request.method != "HEAD" and start < end:
            # Read before the status is sent: a sink that cannot give the file at all is a
            # 500 in the error shape (the request middleware), not a cut connection.
            chunk = await sink.open(track.filename, start, min(end, start + CHUNK))
        await response.prepare(request)
        if request.method != "HEAD":
            pos = start
            while chunk:
                await response.write(chunk)
                pos += len(chunk)
                if pos >= end:
                    break
                try:
                    chunk = await sink.open(track.filename, pos, min(end, pos + CHUNK))
                except Exception as exc:
                    # The status is sent: no error can follow it. One line naming the
                    # sink's plugin, and the connection closed so the client sees it cut.
                    self.server.log_request_failure(request, exc, " (connection closed)")
                    if request.transport is not None:
                        request.transport.close()
                    return response
            self.server.metrics.track_bytes += pos - start
        await response.write_eof()
        return response

    # --- sessions over HTTP --------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        try:
            async with asyncio.timeout(self.server.config.body_timeout_s):
                raw = await request.read()
        except TimeoutError:
            raise ProtocolError(
                "timeout",
                f"body: not received within {self.server.config.body_timeout_s:g} s",
            ) from None
        except web.HTTPRequestEntityTooLarge:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"body: larger than {self.server.config.max_frame_bytes} bytes",
            ) from None
        return parse_json_body(raw)

    def _session_id(self, request: web.Request) -> str:
        sid = request.match_info["id"]
        problem = session_id_problem(sid)
        if problem:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, problem)
        refusal = self.server.session_refusal(request, sid)
        if refusal is not None:
            raise _Refused(refusal)
        return sid

    @staticmethod
    def _protocol_error(exc: ProtocolError) -> web.Response:
        status = {
            ErrorCode.TOO_LARGE: 413,
            ErrorCode.UNKNOWN_EVENT: 404,
            ErrorCode.RATE_LIMITED: 429,
            ErrorCode.UNAUTHORIZED: 401,
            ErrorCode.ROOM_UNAVAILABLE: 503,
            "timeout": 408,
        }.get(exc.code, 400)  # type: ignore[call-overload]
        return error_response(status, exc.code, exc.message)

    async def _apply(
        self,
        request: web.Request,
        parse: Callable[[Any], Any],
        apply: Callable[[Any, float, Any], Any],
    ) -> tuple[Any, Any, float, Any] | web.Response:
        """Parse a session's body and apply it: (session, message, now, outputs), or an error."""
        server = self.server
        try:
            sid = self._session_id(request)
            msg = parse(await self._body(request))
            now = time.time()
            session, _created = server.manager.get_or_create(sid, now)
            outputs = apply(session, now, msg)
        except ProtocolError as exc:
            server.metrics.errors[exc.code] += 1
            return self._protocol_error(exc)
        except _Refused as exc:
            return exc.response
        server.manager.touch(session)
        return session, msg, now, outputs

    async def post_state(self, request: web.Request) -> web.Response:
        server = self.server
        applied = await self._apply(request, parse_state_body, server.apply_state)
        if isinstance(applied, web.Response):
            return applied
        session, _msg, now, outputs = applied
        cue = server.last_cue(outputs)
        reply: dict[str, Any] = {
            "mood": session.mood,
            "desired": session.desired,
            "cue": None if cue is None else cue.to_message(now),
        }
        # Why (the director's reason), and when a wait ends: debounce and dwell have an end.
        director = session.director
        reason = getattr(director, "reason", None)
        if reason is not None:
            reply["reason"] = reason
            until = getattr(director, "until", None)
            if until is not None:
                reply["until"] = round(until, 6)
        return json_response(reply)

    async def post_event(self, request: web.Request) -> web.Response:
        applied = await self._apply(request, parse_event_body, self.server.apply_event)
        if isinstance(applied, web.Response):
            return applied
        _session, msg, now, outputs = applied

        stingers = [o for o in outputs if isinstance(o, Stinger)]
        cues = [o for o in outputs if isinstance(o, Cue)]
        pending = [o for o in outputs if isinstance(o, Pending)]
        return json_response(
            {
                "event": msg.name,
                "stinger": stingers[-1].to_message(now) if stingers else None,
                "cue": cues[-1].to_message(now) if cues else None,
                "pending": pending[-1].mood if pending else None,
            }
        )
