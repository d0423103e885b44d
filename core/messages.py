"""The protocol as a client speaks it: server messages read into typed dataclasses, and
the client messages built as wire dicts (the Python SDK's side of docs/protocol.md).

Like :mod:`segue.core.protocol` (the server's side, which re-exports these names), this
module does no I/O: :class:`segue.core.client.SegueClient` does the talking.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from segue.core.track import Track


@dataclass(frozen=True, slots=True)
class Welcome:
    protocol: int
    session: str
    server_time: float
    moods: tuple[str, ...]
    type: str = "welcome"


@dataclass(frozen=True, slots=True)
class CueExit:
    """A cue's ``exit``: at server time ``at`` the track of ``mood`` (id ``track``) jumps
    to ``outro_start_s`` and plays its outro to ``outro_end_s``, then stops."""

    mood: str
    track: str
    at: float
    outro_start_s: float
    outro_end_s: float


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
    # The track left plays its outro (transition ``exit: outro``); None: it fades.
    exit: CueExit | None = None


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
class LayersMessage:
    """From ``start_at``, ramp each stem of ``mood``'s track linearly to ``gains``."""

    mood: str
    gains: dict[str, float]
    start_at: float
    ramp_ms: int
    server_time: float
    intensity: float | None = None
    type: str = "layers"


@dataclass(frozen=True, slots=True)
class DuckMessage:
    """Duck the music bus by ``depth_db`` from ``start_at``; release from ``end_at``."""

    depth_db: float
    attack_ms: int
    release_ms: int
    start_at: float
    end_at: float | None
    server_time: float
    event: str | None = None
    type: str = "duck"


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
    | LayersMessage
    | DuckMessage
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


def _exit(obj: Any) -> CueExit | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise ServerMessageError("cue.exit: must be an object")
    try:
        return CueExit(
            mood=str(obj["mood"]),
            track=str(obj["track"]),
            at=float(obj["at"]),
            outro_start_s=float(obj["outro_start_s"]),
            outro_end_s=float(obj["outro_end_s"]),
        )
    except KeyError as exc:
        raise ServerMessageError(f"cue.exit.{exc.args[0]}: missing") from None
    except (TypeError, ValueError):
        raise ServerMessageError("cue.exit: times must be numbers") from None


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
            exit=_exit(obj.get("exit")),
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
    if kind == "layers":
        return LayersMessage(
            mood=_req(obj, "mood"),
            gains={str(k): float(v) for k, v in _req(obj, "gains").items()},
            start_at=float(_req(obj, "start_at")),
            ramp_ms=int(_req(obj, "ramp_ms")),
            server_time=float(_req(obj, "server_time")),
            intensity=obj.get("intensity"),
        )
    if kind == "duck":
        end_at = obj.get("end_at")
        return DuckMessage(
            depth_db=float(_req(obj, "depth_db")),
            attack_ms=int(_req(obj, "attack_ms")),
            release_ms=int(_req(obj, "release_ms")),
            start_at=float(_req(obj, "start_at")),
            end_at=float(end_at) if end_at is not None else None,
            server_time=float(_req(obj, "server_time")),
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


def duck_message(
    depth_db: float | None = None,
    hold_s: float | None = None,
    attack_ms: int | None = None,
    release_ms: int | None = None,
    *,
    end: bool = False,
    id: Any = None,
) -> dict[str, Any]:
    """A client ``duck`` message: start a duck (omitted fields take defaults) or end it."""
    msg: dict[str, Any] = {"type": "duck"}
    if end:
        msg["end"] = True
    fields = {
        "depth_db": depth_db,
        "hold_s": hold_s,
        "attack_ms": attack_ms,
        "release_ms": release_ms,
    }
    msg.update({k: v for k, v in fields.items() if v is not None})
    if id is not None:
        msg["id"] = id
    return msg


def ping_message(t: float, id: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "ping", "t": t}
    if id is not None:
        msg["id"] = id
    return msg
