"""The WebSocket protocol, version 1 (docs/protocol.md): its vocabulary, without any I/O.

This module turns a client's bytes into typed messages and builds the server's messages
as wire dicts, and nothing else: no sockets, no event loop, no clock, no caches. The
server (:mod:`segue.core.server`) and the Python SDK both build on it, and it is tested
without a socket (the design of python-websockets' sans-I/O core).

- Client → server: :func:`decode_client_frame` reads a frame's JSON once (WebSocket
  frames and HTTP bodies alike), :func:`parse_client_object` validates the value into a
  :class:`StateMessage`, :class:`EventMessage` or :class:`PingMessage`, or raises
  :class:`ProtocolError` with the error code to send back (``bad_json``,
  ``bad_message``, ``unknown_type``) and a one-line message naming the offending field;
  :func:`parse_client_message` is the two in one.
- Server → client: the ``*_message`` builders return the wire dicts and :func:`dumps`
  serialises them compactly. The byte encoders that remember parts of hot messages,
  and WebSocket framing, are the server's (:mod:`segue.core.server.wire`).
- The SDK's side (server messages read into dataclasses, client messages built) is
  :mod:`segue.core.messages`; its names are importable from here too.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# The SDK's side, importable from here too (docs/protocol.md names this module).
from segue.core.messages import (  # noqa: F401 - re-exported
    CueExit,
    CueMessage,
    DuckMessage,
    ErrorMessage,
    LayersMessage,
    PendingMessage,
    PongMessage,
    PrefetchMessage,
    ServerMessage,
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
from segue.core.score import Duck
from segue.core.track import Track

try:  # a declared dependency; the standard library does the same work more slowly
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover
    _orjson_loads = None

PROTOCOL_VERSION = 1

SESSION_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SESSION_ID_RULE = "must be 1-64 characters of A-Z a-z 0-9 _ . -"

MAX_ID_CHARS = 128  # a client's message ``id`` (echoed in replies)
MAX_EVENT_NAME_CHARS = 128


class ErrorCode(StrEnum):
    BAD_JSON = "bad_json"
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_EVENT = "unknown_event"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    ROOM_UNAVAILABLE = "room_unavailable"


ERROR_CODES: tuple[str, ...] = tuple(c.value for c in ErrorCode)


class CloseCode:
    """WebSocket close codes the server uses."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    POLICY = 1008  # flood (sustained over the rate limit)
    TOO_BIG = 1009  # a frame over the size limit
    TRY_AGAIN = 1013  # the client reads too slowly: its send queue filled up
    UNAUTHORIZED = 4401  # missing or wrong token


# ----------------------------------------------------------------------------- errors


class ProtocolError(Exception):
    """A client message the server refuses; ``code`` and ``message`` go back in an error."""

    def __init__(self, code: str, message: str, id: Any = None) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.id = id

    def to_message(self) -> dict[str, Any]:
        return error_message(self.code, self.message, self.id)


def _bad(field_path: str, problem: str, id: Any = None) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_MESSAGE, f"{field_path}: {problem}", id)


# ----------------------------------------------------------------------------- client → server


@dataclass(slots=True)
class StateMessage:
    """Merge ``set`` into the session's state, drop ``unset``; ``replace`` replaces it whole."""

    set: dict[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    replace: dict[str, Any] | None = None
    id: Any = None
    type: str = "state"


@dataclass(slots=True)
class EventMessage:
    """A one-shot game event, e.g. ``boss_defeated``."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    id: Any = None
    type: str = "event"


@dataclass(slots=True)
class PingMessage:
    """Clock sync: ``t`` is the client's clock, echoed in the ``pong``."""

    t: float | None = None
    id: Any = None
    type: str = "ping"


@dataclass(slots=True)
class DuckRequest:
    """Start a duck of the music bus (``spec``), or end the one under way (``spec`` None)."""

    spec: Duck | None = None
    id: Any = None
    type: str = "duck"


ClientMessage = StateMessage | EventMessage | PingMessage | DuckRequest

_FIELDS: dict[str, tuple[str, ...]] = {
    "state": ("type", "id", "set", "unset", "replace"),
    "event": ("type", "id", "name", "data"),
    "ping": ("type", "id", "t"),
    "duck": ("type", "id", "depth_db", "hold_s", "attack_ms", "release_ms", "end"),
}
# Each duck field's range (docs/protocol.md, the same as the score's ``duck``).
_DUCK_RANGES = {
    "depth_db": (-60.0, 0.0),
    "hold_s": (0.0, 3600.0),
    "attack_ms": (0.0, 10000.0),
    "release_ms": (0.0, 60000.0),
}
CLIENT_TYPES: tuple[str, ...] = tuple(_FIELDS)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


def _check_id(obj: Mapping[str, Any]) -> Any:
    if "id" not in obj:
        return None
    value = obj["id"]
    if value is None or _is_number(value):
        return value
    if isinstance(value, str):
        if len(value) > MAX_ID_CHARS:
            raise _bad("id", f"must be at most {MAX_ID_CHARS} characters")
        return value
    raise _bad("id", "must be a string or a number")


def _check_fields(kind: str, obj: Mapping[str, Any], allowed: Sequence[str], id: Any) -> None:
    for key in obj:
        if key not in allowed:
            expected = ", ".join(k for k in allowed if k not in ("type", "id"))
            raise _bad(
                f"{kind}.{key}",
                f"unknown field (expected {expected})" + _did_you_mean(key, allowed),
                id,
            )


def _not_a_json_number(name: str) -> Any:
    # The standard library reads NaN, Infinity and -Infinity, which JSON has not: a state
    # holding one could not be sent on as JSON (room messages, shared-room snapshots).
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: valid JSON, but no double holds it
        raise ValueError(f"number {text[:24]} is out of range")
    return value


# The standard library's reading, for the frames orjson cannot read (it refuses these too).
_STD_DECODER = json.JSONDecoder(parse_constant=_not_a_json_number, parse_float=_finite_float)
_raw_decode = _STD_DECODER.raw_decode
_STATE_SET_ONLY = frozenset(("type", "set"))
# orjson reads an integer literal beyond 64 bits as a float where the standard library
# keeps an exact int; a float this large may be such a literal.
_HUGE = 2.0**63
_DEEP = 64


def _decode_std(raw: str | bytes | bytearray) -> Any:
    """The standard library's reading of a frame (the reference; says why it is not JSON)."""
    try:
        # Text frames are UTF-8 (RFC 6455); json.loads would also guess UTF-16 from bytes.
        text = raw if isinstance(raw, str) else raw.decode()
        try:
            # raw_decode skips json.loads' two whitespace regex matches (most of its
            # cost for a small message); anything unusual takes the full path below.
            obj, end = _raw_decode(text)
            if end != len(text):
                obj = _STD_DECODER.decode(text)
        except ValueError:
            obj = _STD_DECODER.decode(text)
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, "not valid JSON: nested too deeply") from None
    except UnicodeDecodeError:
        raise ProtocolError(ErrorCode.BAD_JSON, "not valid JSON: not UTF-8 text") from None
    except ValueError as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        where = f" at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ProtocolError(ErrorCode.BAD_JSON, f"not valid JSON: {msg}{where}") from None
    return obj


def decode_client_frame(raw: str | bytes | bytearray) -> Any:
    """A client frame's (or HTTP body's) JSON value, exactly as the standard library reads
    it; ProtocolError ``bad_json`` when it is not JSON. The one decode of every message:
    the validation (:func:`parse_client_object`) works on the value.

    orjson reads it when it can, several times faster. It reads a subset of what the
    standard library accepts (no NaN, Infinity, lone surrogates, numbers beyond a
    double), with the same values, except integers beyond 64 bits (it makes them
    floats): a frame it refuses, or whose value holds a float that large or is nested
    deeply, is read by the standard library instead, which also words any error. So
    the common frame is decoded once, and only such rare ones twice.
    """
    if _orjson_loads is not None:
        try:
            obj = _orjson_loads(raw)
        except ValueError:
            return _decode_std(raw)
        return obj if _exact(obj) else _decode_std(raw)
    return _decode_std(raw)


def _exact(obj: Any) -> bool:
    """Whether orjson's value is the standard library's (no float of ``_HUGE`` or more)."""
    if type(obj) is dict:
        # The common message, {"type": "state", "set": {<scalars>}}, checked flat.
        for value in obj.values():
            kind = type(value)
            if kind is dict:
                for inner in value.values():
                    kind = type(inner)
                    if kind is float:
                        if not -_HUGE < inner < _HUGE:
                            return False
                    elif (kind is dict or kind is list) and not _no_huge_float(inner):
                        return False
            elif kind is float:
                if not -_HUGE < value < _HUGE:
                    return False
            elif kind is list and not _no_huge_float(value):
                return False
        return True
    return _no_huge_float(obj)


def _no_huge_float(obj: Any, depth: int = 0) -> bool:
    """No float of ``_HUGE`` or more anywhere in ``obj`` (see ``decode_client_frame``);
    False also for nesting deeper than ``_DEEP`` (left to the standard library, whose
    limit is the interpreter's recursion limit)."""
    kind = type(obj)
    if kind is float:
        return -_HUGE < obj < _HUGE
    if kind is dict:
        obj = obj.values()
    elif kind is not list:
        return True
    if depth >= _DEEP:
        return False
    depth += 1
    for value in obj:  # noqa: SIM110 - a loop, not all(genexpr): no generator
        if not _no_huge_float(value, depth):
            return False
    return True


def state_set_only(obj: Any) -> dict[str, Any] | None:
    """The ``set`` of the commonest message, ``{"type": "state", "set": {...}}`` (nothing
    else, keys non-empty), or None for any other message. Valid as it is: the server
    hands it to the session without building a StateMessage."""
    if type(obj) is dict and len(obj) == 2 and obj.keys() == _STATE_SET_ONLY:
        set_ = obj["set"]
        if type(set_) is dict and obj["type"] == "state" and "" not in set_:
            return set_
    return None


def parse_client_message(raw: str | bytes | bytearray) -> ClientMessage:
    """Parse one client frame; raise ProtocolError (bad_json, bad_message, unknown_type)."""
    return parse_client_object(decode_client_frame(raw))


def parse_client_object(obj: Any) -> ClientMessage:
    """Validate a decoded client message (a JSON object with a ``type``)."""
    set_ = state_set_only(obj)
    if set_ is not None:
        return StateMessage(set_, (), None, None)
    if not isinstance(obj, dict):
        raise _bad("message", f"must be a JSON object, not {_json_kind(obj)}")
    # The id is read first, so that every later error can echo it.
    id = _check_id(obj)
    if "type" not in obj:
        raise _bad("type", "missing (expected one of state, event, ping, duck)", id)
    kind = obj["type"]
    if not isinstance(kind, str):
        raise _bad("type", f"must be a string, not {_json_kind(kind)}", id)
    if kind not in _FIELDS:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"unknown message type {kind!r} (expected state, event, ping, duck)"
            + _did_you_mean(kind, _FIELDS),
            id,
        )
    _check_fields(kind, obj, _FIELDS[kind], id)
    if kind == "state":
        return _parse_state(obj, id, "state")
    if kind == "event":
        return _parse_event(obj, id, "event")
    if kind == "duck":
        return _parse_duck(obj, id)
    t = obj.get("t")
    if t is not None and not _is_number(t):
        raise _bad("ping.t", f"must be a number, not {_json_kind(t)}", id)
    return PingMessage(t=t, id=id)


def _parse_state(obj: Mapping[str, Any], id: Any, prefix: str) -> StateMessage:
    set_ = obj.get("set", {})
    if set_ is None:
        set_ = {}
    if not isinstance(set_, dict):
        raise _bad(f"{prefix}.set", f"must be an object, not {_json_kind(set_)}", id)
    for key in set_:
        if not key:
            raise _bad(f"{prefix}.set", "keys must be non-empty", id)
    unset = obj.get("unset", [])
    if unset is None:
        unset = []
    if not isinstance(unset, list):
        raise _bad(f"{prefix}.unset", f"must be a list of keys, not {_json_kind(unset)}", id)
    for i, key in enumerate(unset):
        if not isinstance(key, str) or not key:
            raise _bad(f"{prefix}.unset[{i}]", "must be a non-empty string", id)
    replace = obj.get("replace")
    if replace is not None and not isinstance(replace, dict):
        raise _bad(f"{prefix}.replace", f"must be an object, not {_json_kind(replace)}", id)
    if replace is not None:
        for key in replace:
            if not key:
                raise _bad(f"{prefix}.replace", "keys must be non-empty", id)
    return StateMessage(set=set_, unset=tuple(unset), replace=replace, id=id)


def _parse_event(obj: Mapping[str, Any], id: Any, prefix: str) -> EventMessage:
    if "name" not in obj:
        raise _bad(f"{prefix}.name", "missing (the event's name, e.g. 'boss_defeated')", id)
    name = obj["name"]
    if not isinstance(name, str) or not name:
        raise _bad(f"{prefix}.name", "must be a non-empty string", id)
    if len(name) > MAX_EVENT_NAME_CHARS:
        raise _bad(f"{prefix}.name", f"must be at most {MAX_EVENT_NAME_CHARS} characters", id)
    data = obj.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _bad(f"{prefix}.data", f"must be an object, not {_json_kind(data)}", id)
    return EventMessage(name=name, data=data, id=id)


def _parse_duck(obj: Mapping[str, Any], id: Any) -> DuckRequest:
    end = obj.get("end", False)
    if not isinstance(end, bool):
        raise _bad("duck.end", f"must be true or false, not {_json_kind(end)}", id)
    values: dict[str, Any] = {}
    for key, (lo, hi) in _DUCK_RANGES.items():
        value = obj.get(key)
        if value is None:
            continue
        if not _is_number(value) or not lo <= value <= hi:
            raise _bad(f"duck.{key}", f"must be a number from {lo:g} to {hi:g}", id)
        values[key] = value
    if end:
        if values:
            raise _bad("duck", f"end: true takes no {', '.join(values)}", id)
        return DuckRequest(None, id)
    d = Duck()
    spec = Duck(
        depth_db=float(values.get("depth_db", d.depth_db)),
        hold_s=float(values["hold_s"]) if "hold_s" in values else None,
        attack_ms=round(values.get("attack_ms", d.attack_ms)),
        release_ms=round(values.get("release_ms", d.release_ms)),
    )
    return DuckRequest(spec, id)


def parse_state_body(obj: Any) -> StateMessage:
    """The body of ``POST /api/sessions/{id}/state``: the ``state`` message minus ``type``."""
    if not isinstance(obj, dict):
        raise _bad("body", f"must be a JSON object, not {_json_kind(obj)}")
    _check_fields("body", obj, ("set", "unset", "replace"), None)
    return _parse_state(obj, None, "body")


def parse_event_body(obj: Any) -> EventMessage:
    """The body of ``POST /api/sessions/{id}/events``: ``{"name": ..., "data": {...}}``."""
    if not isinstance(obj, dict):
        raise _bad("body", f"must be a JSON object, not {_json_kind(obj)}")
    _check_fields("body", obj, ("name", "data"), None)
    return _parse_event(obj, None, "body")


def parse_json_body(raw: bytes) -> Any:
    """Decode an HTTP body (the frames' one decode); ProtocolError(bad_json) naming the body."""
    if raw.startswith(b"\xef\xbb\xbf"):
        # A UTF-8 byte order mark (some clients' encoders write one): JSON may ignore it.
        raw = raw[3:]
    if not raw.strip():
        raise ProtocolError(ErrorCode.BAD_JSON, "body: empty; expected a JSON object")
    try:
        return decode_client_frame(raw)
    except ProtocolError as exc:
        raise ProtocolError(exc.code, f"body: {exc.message}") from None


def session_id_problem(value: str | None) -> str | None:
    """Why ``value`` is not a valid session id, or None when it is."""
    if value is None or SESSION_ID_RE.fullmatch(value):
        return None
    if 1 <= len(value) <= 64:
        # The length is right: say which character is not (never echo the whole value).
        at = next(i for i, c in enumerate(value) if not SESSION_ID_RE.fullmatch(c))
        return f"session: {SESSION_ID_RULE} (got {value[at]!r} at position {at + 1})"
    return f"session: {SESSION_ID_RULE} (got {len(value)} characters)"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# ----------------------------------------------------------------------------- server → client

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def dumps(obj: Any) -> str:
    """Compact JSON, as sent on the wire."""
    return _dumps(obj)


def welcome_message(session: str, server_time: float, moods: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "session": session,
        "server_time": server_time,
        "moods": list(moods),
    }


def prefetch_message(tracks: Iterable[Track]) -> dict[str, Any]:
    return {"type": "prefetch", "tracks": [track_dict(t) for t in tracks]}


def pong_message(t: Any, server_time: float, id: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "pong", "t": t, "server_time": server_time}
    if id is not None:
        msg["id"] = id
    return msg


def error_message(code: str, message: str, id: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "error", "code": str(code), "message": message}
    if id is not None:
        msg["id"] = id
    return msg


def pending_message(mood: str, reason: str = "generating") -> dict[str, Any]:
    return {"type": "pending", "mood": mood, "reason": reason}


def track_dict(track: Track) -> dict[str, Any]:
    return track.to_dict()
