"""Server → client bytes: the hot messages encoded from remembered parts, and WebSocket
framing.

The protocol's messages are plain dicts (:mod:`segue.core.protocol`); serialising a cue
with ``json.dumps`` for each of a thousand sessions would cost more than everything else
the server does for it. An :class:`Encoder` writes a cue's bytes from parts it has seen
before (the track's JSON, the transition's, the session id's) plus the few numbers that
change, with the same bytes ``dumps(cue.to_message(now))`` gives. The remembered parts
are the encoder's state, so each server owns one (``SegueServer.encoder``) and drops it
with the server. :func:`text_frame` wraps a payload in an unmasked WebSocket text frame,
so a broadcast is framed once for all connections.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

from segue.core.protocol import dumps
from segue.core.track import Track

try:  # a declared dependency; the standard library does the same work more slowly
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover
    _orjson_dumps = None

if TYPE_CHECKING:
    from segue.core.cue import Cue, Stinger

# Each cache is cleared when it reaches its bound: tracks and transitions are a score's
# few long-lived objects, session ids and moods a server's working set.
_OBJECTS_MAX = 4096
_STRINGS_MAX = 65536

_CUE_FORMAT = b'{"type":"cue","seq":%d,"session":%b%b%b,"offset_s":%b,"server_time":%b}'

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


class Encoder:
    """The hot server messages as bytes, from memoised parts (one per server)."""

    __slots__ = ("_bytes", "_cue_middles", "_strings", "_tracks", "_transitions")

    def __init__(self) -> None:
        # By id, checked against the object: tracks are immutable and content-addressed.
        self._tracks: dict[str, tuple[Track, str]] = {}
        # By identity: hashing a frozen dataclass (every field, every time) would cost
        # more than the lookup saves.
        self._transitions: dict[int, tuple[Any, str]] = {}
        self._strings: dict[str, str] = {}  # JSON string literals: moods, event names
        self._bytes: dict[str, bytes] = {}  # the same as bytes: session ids
        # The part of a cue that many cues share, from "mood" to "start_at": by the moods,
        # the track and the transition (objects checked by identity: ids can be reused).
        self._cue_middles: dict[tuple[Any, ...], tuple[Any, Any, bytes]] = {}

    def track_json(self, track: Track) -> str:
        """The track's wire JSON, memoised by id (and checked against the object)."""
        hit = self._tracks.get(track.id)
        if hit is not None and (hit[0] is track or hit[0] == track):
            return hit[1]
        text = dumps(track.to_dict())
        if len(self._tracks) >= _OBJECTS_MAX:
            self._tracks.clear()
        self._tracks[track.id] = (track, text)
        return text

    def _transition(self, transition: Any) -> str:
        hit = self._transitions.get(id(transition))
        if hit is not None and hit[0] is transition:
            return hit[1]
        text = dumps(transition.to_dict())
        if len(self._transitions) >= _OBJECTS_MAX:
            self._transitions.clear()
        self._transitions[id(transition)] = (transition, text)
        return text

    def _jstr(self, value: str | None) -> str:
        """A JSON string literal (or null), memoised: moods and session ids repeat."""
        if value is None:
            return "null"
        text = self._strings.get(value)
        if text is None:
            text = dumps(value)
            if len(self._strings) >= _STRINGS_MAX:
                self._strings.clear()
            self._strings[value] = text
        return text

    def _jbytes(self, value: str) -> bytes:
        """``_jstr(value)`` as bytes (memoised: session ids repeat)."""
        out = self._bytes.get(value)
        if out is None:
            out = self._jstr(value).encode()
            if len(self._bytes) >= _STRINGS_MAX:
                self._bytes.clear()
            self._bytes[value] = out
        return out

    def _cue_middle(self, cue: Cue) -> bytes:
        track, transition = cue.track, cue.transition
        key = (cue.mood, cue.previous, id(track), id(transition))
        hit = self._cue_middles.get(key)
        if hit is not None and hit[0] is track and hit[1] is transition:
            return hit[2]
        jstr = self._jstr
        text = (
            f',"mood":{jstr(cue.mood)},"previous":{jstr(cue.previous)},'
            f'"track":{self.track_json(track)},"transition":{self._transition(transition)},'
            '"start_at":'
        )
        middle = text.encode()
        if len(self._cue_middles) >= _OBJECTS_MAX:
            self._cue_middles.clear()
        self._cue_middles[key] = (track, transition, middle)
        return middle

    def cue_payload(self, cue: Cue, server_time: float) -> bytes:
        """``cue.to_message(server_time)`` as compact JSON (UTF-8), from memoised parts."""
        if cue.exit is not None:  # a rare cue that plays an outro: built whole
            return dumps(cue.to_message(server_time)).encode()
        return _CUE_FORMAT % (
            int(cue.seq),
            self._jbytes(cue.session),
            self._cue_middle(cue),
            _fnum(cue.start_at),
            _fnum(cue.offset_s),
            _fnum(server_time),
        )

    def cue_frame(self, cue: Cue, server_time: float) -> bytes:
        """``text_frame(cue_payload(cue, server_time))``: the cue as a ready-to-write text
        frame, the same bytes for every receiver. Once per cue, so the usual case (parts
        remembered, floats in orjson's range) is inlined here."""
        track, transition = cue.track, cue.transition
        hit = self._cue_middles.get((cue.mood, cue.previous, id(track), id(transition)))
        session = self._bytes.get(cue.session)
        start_at, offset_s = cue.start_at, cue.offset_s
        fast_dumps = _orjson_dumps
        if (
            hit is None
            or cue.exit is not None
            or hit[0] is not track
            or hit[1] is not transition
            or session is None
            or fast_dumps is None
            or type(start_at) is not float
            or not 1e-4 <= start_at < 1e16
            or type(server_time) is not float
            or not 1e-4 <= server_time < 1e16
            or type(offset_s) is not float
            or not (offset_s == 0.0 or 1e-4 <= offset_s < 1e16)
        ):
            return text_frame(self.cue_payload(cue, server_time))
        payload = _CUE_FORMAT % (
            int(cue.seq),
            session,
            hit[2],
            fast_dumps(start_at),
            fast_dumps(offset_s),
            fast_dumps(server_time),
        )
        n = len(payload)
        if 126 <= n < 65536:
            return _LEN2(0x81, 126, n) + payload
        return text_frame(payload)

    def encode_cue(self, cue: Cue, server_time: float) -> str:
        """``cue.to_message(server_time)`` as compact JSON, from memoised parts."""
        return self.cue_payload(cue, server_time).decode()

    def encode_stinger(self, stinger: Stinger, server_time: float) -> str:
        """``stinger.to_message(server_time)`` as compact JSON, from memoised parts."""
        jstr = self._jstr
        return (
            f'{{"type":"stinger","name":{jstr(stinger.mood)},"event":{jstr(stinger.name)},'
            f'"mood":{jstr(stinger.mood)},'
            f'"track":{self.track_json(stinger.track)},"at":{jstr(stinger.at)},'
            f'"start_at":{_jnum(stinger.start_at)},"server_time":{_jnum(server_time)}}}'
        )

    def stinger_frame(self, stinger: Stinger, server_time: float) -> bytes:
        """The stinger as a ready-to-write text frame."""
        return text_frame(self.encode_stinger(stinger, server_time).encode())


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
    text = msg if isinstance(msg, str) else dumps(msg)
    return text_frame(text.encode())
