"""The WebSocket protocol, version 1 (DESIGN section 6), without any I/O.

This module turns bytes into typed messages and typed messages into bytes, and nothing
else: no sockets, no event loop, no clock. The server and the Python SDK both build on
it, and it is tested without a socket (the design of python-websockets' sans-I/O core).

- Client → server: :func:`parse_client_message` returns a :class:`StateMessage`,
  :class:`EventMessage` or :class:`PingMessage`, or raises :class:`ProtocolError` with
  the error code to send back (``bad_json``, ``bad_message``, ``unknown_type``) and a
  one-line message naming the offending field.
- Server → client: the ``*_message`` builders return the wire dicts; :func:`dumps`
  serialises compactly; :func:`encode_cue` and :func:`encode_stinger` serialise the hot
  messages with each track's JSON computed once; :func:`text_frame` wraps a payload in
  an unmasked WebSocket text frame, so a broadcast is framed once for all connections.
- :func:`parse_server_message` is the SDK's side: wire dicts into typed dataclasses.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from segue.core.track import Track

try:  # a declared dependency; the standard library does the same work more slowly
    from orjson import dumps as _orjson_dumps
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover
    _orjson_dumps = _orjson_loads = None

if TYPE_CHECKING:
    from segue.core.cue import Cue, Stinger

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


ClientMessage = StateMessage | EventMessage | PingMessage

_FIELDS: dict[str, tuple[str, ...]] = {
    "state": ("type", "id", "set", "unset", "replace"),
    "event": ("type", "id", "name", "data"),
    "ping": ("type", "id", "t"),
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


_raw_decode = json.JSONDecoder().raw_decode
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
                obj = json.loads(text)
        except ValueError:
            obj = json.loads(text)
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, "not valid JSON: nested too deeply") from None
    except UnicodeDecodeError:
        raise ProtocolError(ErrorCode.BAD_JSON, "not valid JSON: not UTF-8 text") from None
    except ValueError as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        where = f" at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ProtocolError(ErrorCode.BAD_JSON, f"not valid JSON: {msg}{where}") from None
    return obj


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


def decode_client_frame(raw: str | bytes | bytearray) -> Any:
    """A client frame's JSON value, exactly as the standard library reads it (ProtocolError
    ``bad_json`` when it is not JSON).

    orjson reads it when it can, several times faster. It reads a subset of what the
    standard library accepts (no NaN, Infinity, lone surrogates, numbers beyond a
    double), with the same values, except integers beyond 64 bits (it makes them
    floats): a frame it refuses, or whose value holds a float that large or is nested
    deeply, is read again by the standard library, which also words any error.
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
    kind = type(obj)
    if kind is dict:
        # The common message, {"type": "state", "set": {<scalars>}}, checked flat.
        for value in obj.values():
            if type(value) is dict:
                for inner in value.values():
                    kind = type(inner)
                    if kind is float:
                        if not -_HUGE < inner < _HUGE:
                            return False
                    elif (kind is dict or kind is list) and not _no_huge_float(inner):
                        return False
            elif not _no_huge_float(value):
                return False
        return True
    return _no_huge_float(obj)


def state_set_only(obj: Any) -> dict[str, Any] | None:
    """The ``set`` of the commonest message, ``{"type": "state", "set": {...}}`` (nothing
    else, keys non-empty), or None for any other message."""
    if type(obj) is dict and len(obj) == 2 and obj.keys() == _STATE_SET_ONLY:
        set_ = obj["set"]
        if type(set_) is dict and obj["type"] == "state" and "" not in set_:
            return set_
    return None


def fast_state_set(raw: str | bytes | bytearray) -> dict[str, Any] | None:
    """``parse_client_message(raw).set`` for the commonest message, a ``state`` with only a
    ``set`` of JSON scalars, in one step; None for anything else (or without orjson),
    which the caller then parses the general way."""
    if _orjson_loads is None:
        return None
    try:
        obj = _orjson_loads(raw)
    except ValueError:
        return None
    if type(obj) is not dict or len(obj) != 2 or obj.keys() != _STATE_SET_ONLY:
        return None
    set_ = obj["set"]
    if type(set_) is not dict or obj["type"] != "state" or "" in set_:
        return None
    for value in set_.values():  # what _exact checks, for scalars
        kind = type(value)
        if kind is float:
            if not -_HUGE < value < _HUGE:
                return None
        elif kind is dict or kind is list:
            return None
    return set_


def parse_client_message(raw: str | bytes | bytearray) -> ClientMessage:
    """Parse one client frame; raise ProtocolError (bad_json, bad_message, unknown_type)."""
    obj = decode_client_frame(raw)
    set_ = state_set_only(obj)
    if set_ is not None:
        return StateMessage(set_, (), None, None)
    return parse_client_object(obj)


def parse_client_object(obj: Any) -> ClientMessage:
    """Validate a decoded client message (a JSON object with a ``type``)."""
    if not isinstance(obj, dict):
        raise _bad("message", f"must be a JSON object, not {_json_kind(obj)}")
    # The id is read first, so that every later error can echo it.
    id = _check_id(obj)
    if "type" not in obj:
        raise _bad("type", "missing (expected one of state, event, ping)", id)
    kind = obj["type"]
    if not isinstance(kind, str):
        raise _bad("type", f"must be a string, not {_json_kind(kind)}", id)
    if kind not in _FIELDS:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"unknown message type {kind!r} (expected state, event, ping)"
            + _did_you_mean(kind, _FIELDS),
            id,
        )
    _check_fields(kind, obj, _FIELDS[kind], id)
    if kind == "state":
        return _parse_state(obj, id, "state")
    if kind == "event":
        return _parse_event(obj, id, "event")
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
    """Decode an HTTP body; raise ProtocolError(bad_json) with a one-line reason."""
    if not raw.strip():
        raise ProtocolError(ErrorCode.BAD_JSON, "body: empty; expected a JSON object")
    try:
        return json.loads(raw.decode())
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, "body: nested too deeply") from None
    except UnicodeDecodeError:
        raise ProtocolError(ErrorCode.BAD_JSON, "body: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            ErrorCode.BAD_JSON, f"body: not valid JSON: {exc.msg} at char {exc.pos}"
        ) from None


def session_id_problem(value: str | None) -> str | None:
    """Why ``value`` is not a valid session id, or None when it is."""
    if value is None or SESSION_ID_RE.fullmatch(value):
        return None
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


# Each track's JSON, computed once: tracks are immutable and content-addressed, and a
# cue to a thousand sessions should not run dataclasses.asdict a thousand times.
_track_json: dict[str, tuple[Track, str]] = {}
_TRACK_JSON_MAX = 4096


def track_dict(track: Track) -> dict[str, Any]:
    return track.to_dict()


def track_json(track: Track) -> str:
    """The track's wire JSON, memoised by id (and checked against the object)."""
    hit = _track_json.get(track.id)
    if hit is not None and (hit[0] is track or hit[0] == track):
        return hit[1]
    text = _dumps(track.to_dict())
    if len(_track_json) >= _TRACK_JSON_MAX:
        _track_json.clear()
    _track_json[track.id] = (track, text)
    return text


_str_json: dict[str, str] = {}


def _jstr(value: str | None) -> str:
    """A JSON string literal (or null), memoised: moods and session ids repeat."""
    if value is None:
        return "null"
    text = _str_json.get(value)
    if text is None:
        text = _dumps(value)
        if len(_str_json) >= 65536:
            _str_json.clear()
        _str_json[value] = text
    return text


_float_repr = float.__repr__
_isfinite = math.isfinite


def _jnum(value: float) -> str:
    """A JSON number, as json.dumps writes it (float repr); NaN and infinities refused."""
    if type(value) is float:
        if _isfinite(value):
            return _float_repr(value)
        raise ValueError(f"not a finite number: {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return _jnum(float(value)) if isinstance(value, float) else str(int(value))


# By identity: transitions are a score's few long-lived objects, and hashing a frozen
# dataclass (every field, every time) would cost more than the lookup saves.
_transition_json: dict[int, tuple[Any, str]] = {}


def _transition(transition: Any) -> str:
    hit = _transition_json.get(id(transition))
    if hit is not None and hit[0] is transition:
        return hit[1]
    text = _dumps(transition.to_dict())
    if len(_transition_json) >= 4096:
        _transition_json.clear()
    _transition_json[id(transition)] = (transition, text)
    return text


def _fnum(value: float) -> bytes:
    """``_jnum(value)`` as bytes; floats in orjson's plain range are written by orjson
    (the same shortest round-trip digits as ``float.__repr__``, several times faster;
    outside that range the two spell exponents differently)."""
    if (
        _orjson_dumps is not None
        and type(value) is float
        and (1e-4 <= value < 1e16 or value == 0.0 or -1e16 < value <= -1e-4)
    ):
        return _orjson_dumps(value)
    return _jnum(value).encode()


_bytes_json: dict[str, bytes] = {}


def _jbytes(value: str) -> bytes:
    """``_jstr(value)`` as bytes (memoised: session ids repeat)."""
    out = _bytes_json.get(value)
    if out is None:
        out = _jstr(value).encode()
        if len(_bytes_json) >= 65536:
            _bytes_json.clear()
        _bytes_json[value] = out
    return out


# The part of a cue that many cues share, from "mood" to "start_at": by the moods, the
# track and the transition (objects checked by identity: ids can be reused).
_cue_middles: dict[tuple[Any, ...], tuple[Any, Any, bytes]] = {}
_CUE_FORMAT = b'{"type":"cue","seq":%d,"session":%b%b%b,"offset_s":%b,"server_time":%b}'


def _cue_middle(cue: Cue) -> bytes:
    track, transition = cue.track, cue.transition
    key = (cue.mood, cue.previous, id(track), id(transition))
    hit = _cue_middles.get(key)
    if hit is not None and hit[0] is track and hit[1] is transition:
        return hit[2]
    text = (
        f',"mood":{_jstr(cue.mood)},"previous":{_jstr(cue.previous)},'
        f'"track":{track_json(track)},"transition":{_transition(transition)},"start_at":'
    )
    middle = text.encode()
    if len(_cue_middles) >= 4096:
        _cue_middles.clear()
    _cue_middles[key] = (track, transition, middle)
    return middle


def cue_payload(cue: Cue, server_time: float) -> bytes:
    """``cue.to_message(server_time)`` as compact JSON (UTF-8), from memoised parts."""
    return _CUE_FORMAT % (
        int(cue.seq),
        _jbytes(cue.session),
        _cue_middle(cue),
        _fnum(cue.start_at),
        _fnum(cue.offset_s),
        _fnum(server_time),
    )


def cue_frame(cue: Cue, server_time: float) -> bytes:
    """``text_frame(cue_payload(cue, server_time))``: the cue as a ready-to-write text
    frame, the same bytes for every receiver. Once per cue, so the usual case (parts
    remembered, floats in orjson's range) is inlined here."""
    track, transition = cue.track, cue.transition
    hit = _cue_middles.get((cue.mood, cue.previous, id(track), id(transition)))
    session = _bytes_json.get(cue.session)
    start_at, offset_s = cue.start_at, cue.offset_s
    dumps = _orjson_dumps
    if (
        hit is None
        or hit[0] is not track
        or hit[1] is not transition
        or session is None
        or dumps is None
        or type(start_at) is not float
        or not 1e-4 <= start_at < 1e16
        or type(server_time) is not float
        or not 1e-4 <= server_time < 1e16
        or type(offset_s) is not float
        or not (offset_s == 0.0 or 1e-4 <= offset_s < 1e16)
    ):
        return text_frame(cue_payload(cue, server_time))
    payload = _CUE_FORMAT % (
        int(cue.seq),
        session,
        hit[2],
        dumps(start_at),
        dumps(offset_s),
        dumps(server_time),
    )
    n = len(payload)
    if 126 <= n < 65536:
        return _LEN2(0x81, 126, n) + payload
    return text_frame(payload)


def encode_cue(cue: Cue, server_time: float) -> str:
    """``cue.to_message(server_time)`` as compact JSON, from memoised parts."""
    return cue_payload(cue, server_time).decode()


def encode_stinger(stinger: Stinger, server_time: float) -> str:
    """``stinger.to_message(server_time)`` as compact JSON, from memoised parts."""
    return (
        f'{{"type":"stinger","name":{_jstr(stinger.mood)},"event":{_jstr(stinger.name)},'
        f'"mood":{_jstr(stinger.mood)},'
        f'"track":{track_json(stinger.track)},"at":{_jstr(stinger.at)},'
        f'"start_at":{_jnum(stinger.start_at)},"server_time":{_jnum(server_time)}}}'
    )


# ----------------------------------------------------------------------------- framing

_LEN1 = struct.Struct("!BB").pack
_LEN2 = struct.Struct("!BBH").pack
_LEN3 = struct.Struct("!BBQ").pack


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked (server → client) WebSocket text frame carrying ``payload``.

    Unmasked frames are byte-identical for every receiver, so a broadcast builds its
    frame once and writes the same bytes to each connection.
    """
    n = len(payload)
    if n < 126:
        return _LEN1(0x81, n) + payload
    if n < 65536:
        return _LEN2(0x81, 126, n) + payload
    return _LEN3(0x81, 127, n) + payload


def frame_message(msg: dict[str, Any] | str) -> bytes:
    """A message (dict or its JSON text) as a ready-to-write text frame."""
    text = msg if isinstance(msg, str) else _dumps(msg)
    return text_frame(text.encode())


# ----------------------------------------------------------------------------- SDK side


@dataclass(frozen=True, slots=True)
class Welcome:
    protocol: int
    session: str
    server_time: float
    moods: tuple[str, ...]
    type: str = "welcome"


@dataclass(frozen=True, slots=True)
class CueMessage:
    seq: int
    session: str
    mood: str
    previous: str | None
    track: Track
    transition: dict[str, Any]
    start_at: float
    offset_s: float
    server_time: float
    type: str = "cue"


@dataclass(frozen=True, slots=True)
class StingerMessage:
    name: str
    track: Track
    at: str
    start_at: float
    server_time: float
    mood: str | None = None
    event: str | None = None  # the game event that played it
    type: str = "stinger"


@dataclass(frozen=True, slots=True)
class PendingMessage:
    mood: str
    reason: str
    type: str = "pending"


@dataclass(frozen=True, slots=True)
class PrefetchMessage:
    tracks: tuple[Track, ...]
    type: str = "prefetch"


@dataclass(frozen=True, slots=True)
class PongMessage:
    t: float | None
    server_time: float
    id: Any = None
    type: str = "pong"


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    code: str
    message: str
    id: Any = None
    type: str = "error"


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message type this SDK does not know (a newer server): kept, not dropped."""

    data: dict[str, Any]
    type: str = "unknown"


ServerMessage = (
    Welcome
    | CueMessage
    | StingerMessage
    | PendingMessage
    | PrefetchMessage
    | PongMessage
    | ErrorMessage
    | UnknownMessage
)


class ServerMessageError(ValueError):
    """A server message this SDK cannot read (names the field)."""


def _req(obj: Mapping[str, Any], key: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise ServerMessageError(f"{obj.get('type')}.{key}: missing") from None


def parse_server_message(raw: str | bytes | Mapping[str, Any]) -> ServerMessage:
    """Server JSON into a typed message (the SDK's side of the protocol)."""
    if isinstance(raw, Mapping):
        obj = raw
    else:
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise ServerMessageError(f"server sent invalid JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise ServerMessageError("server message: not a JSON object")
    kind = obj.get("type")
    if kind == "cue":
        return CueMessage(
            seq=int(_req(obj, "seq")),
            session=_req(obj, "session"),
            mood=_req(obj, "mood"),
            previous=obj.get("previous"),
            track=Track.from_dict(_req(obj, "track")),
            transition=dict(_req(obj, "transition")),
            start_at=float(_req(obj, "start_at")),
            offset_s=float(_req(obj, "offset_s")),
            server_time=float(_req(obj, "server_time")),
        )
    if kind == "stinger":
        return StingerMessage(
            name=_req(obj, "name"),
            track=Track.from_dict(_req(obj, "track")),
            at=_req(obj, "at"),
            start_at=float(_req(obj, "start_at")),
            server_time=float(_req(obj, "server_time")),
            mood=obj.get("mood"),
            event=obj.get("event"),
        )
    if kind == "pending":
        return PendingMessage(mood=_req(obj, "mood"), reason=obj.get("reason", "generating"))
    if kind == "prefetch":
        return PrefetchMessage(tuple(Track.from_dict(t) for t in _req(obj, "tracks")))
    if kind == "pong":
        return PongMessage(
            t=obj.get("t"), server_time=float(_req(obj, "server_time")), id=obj.get("id")
        )
    if kind == "error":
        return ErrorMessage(code=_req(obj, "code"), message=_req(obj, "message"), id=obj.get("id"))
    if kind == "welcome":
        return Welcome(
            protocol=int(_req(obj, "protocol")),
            session=_req(obj, "session"),
            server_time=float(_req(obj, "server_time")),
            moods=tuple(_req(obj, "moods")),
        )
    return UnknownMessage(dict(obj))


def state_message(
    set: Mapping[str, Any] | None = None,
    unset: Iterable[str] = (),
    replace: Mapping[str, Any] | None = None,
    id: Any = None,
) -> dict[str, Any]:
    """A client ``state`` message (the SDK's builder)."""
    msg: dict[str, Any] = {"type": "state"}
    if set:
        msg["set"] = dict(set)
    unset = list(unset)
    if unset:
        msg["unset"] = unset
    if replace is not None:
        msg["replace"] = dict(replace)
    if id is not None:
        msg["id"] = id
    return msg


def event_message(name: str, data: Mapping[str, Any] | None = None, id: Any = None) -> dict:
    msg: dict[str, Any] = {"type": "event", "name": name, "data": dict(data or {})}
    if id is not None:
        msg["id"] = id
    return msg


def ping_message(t: float, id: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "ping", "t": t}
    if id is not None:
        msg["id"] = id
    return msg
