"""What the server decides for a session: cues, stingers, and pending notices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segue.core.score import Transition
from segue.core.track import Track


@dataclass(frozen=True)
class Exit:
    """The track left plays its outro: at server time ``at`` it jumps from where it is to
    ``outro_start_s`` and plays on to ``outro_end_s`` (track seconds), then stops.

    A cue carries one when its transition says ``exit: outro`` and the track left has an
    outro (a song carved by ``loop_points``); its ``start_at`` is then when the outro
    ends (earlier by the fade with ``fade: cross`` or ``in``).
    """

    mood: str  # the mood left
    track: str  # the id of its track (the one playing)
    at: float
    outro_start_s: float
    outro_end_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "mood": self.mood,
            "track": self.track,
            "at": self.at,
            "outro_start_s": self.outro_start_s,
            "outro_end_s": self.outro_end_s,
        }


@dataclass(frozen=True)
class Cue:
    """Play ``track`` from ``offset_s`` at server time ``start_at``, leaving ``previous``."""

    seq: int
    session: str
    mood: str
    previous: str | None
    track: Track
    transition: Transition
    start_at: float
    offset_s: float
    exit: Exit | None = None  # the track left plays its outro (exit: outro)

    def to_message(self, server_time: float) -> dict[str, Any]:
        out = {
            "type": "cue",
            "seq": self.seq,
            "session": self.session,
            "mood": self.mood,
            "previous": self.previous,
            "track": self.track.to_dict(),
            "transition": self.transition.to_dict(),
            "start_at": self.start_at,
            "offset_s": self.offset_s,
            "server_time": server_time,
        }
        if self.exit is not None:
            out["exit"] = self.exit.to_dict()
        return out


@dataclass(frozen=True)
class Stinger:
    """A one-shot track played on top of the music at ``start_at``."""

    session: str
    name: str  # the event's name
    mood: str  # the stinger mood
    track: Track
    at: str
    start_at: float

    def to_message(self, server_time: float) -> dict[str, Any]:
        return {
            "type": "stinger",
            "name": self.mood,  # the stinger's name, its mood in the score (docs/protocol.md)
            "event": self.name,  # the game event that played it
            "mood": self.mood,
            "track": self.track.to_dict(),
            "at": self.at,
            "start_at": self.start_at,
            "server_time": server_time,
        }


@dataclass(frozen=True)
class Pending:
    """The desired mood has no stored track yet; its cue follows when one is ready."""

    mood: str
    reason: str = "generating"

    def to_message(self) -> dict[str, Any]:
        return {"type": "pending", "mood": self.mood, "reason": self.reason}


@dataclass(frozen=True)
class Layers:
    """From ``start_at``, ramp each stem of ``mood``'s track to ``gains`` over ``ramp_ms``."""

    session: str
    mood: str
    gains: dict[str, float]  # stem -> linear gain 0-1
    start_at: float
    ramp_ms: int
    intensity: float  # the slewed intensity the ramp reaches

    def to_message(self, server_time: float) -> dict[str, Any]:
        return {
            "type": "layers",
            "mood": self.mood,
            "gains": self.gains,
            "start_at": self.start_at,
            "ramp_ms": self.ramp_ms,
            "intensity": self.intensity,
            "server_time": server_time,
        }


@dataclass(frozen=True)
class Duck:
    """Lower the music bus (never stingers) by ``depth_db`` from ``start_at``.

    The gain reaches the depth ``attack_ms`` after ``start_at``, holds, and from
    ``end_at`` returns to full over ``release_ms``; ``end_at`` None: until a later
    ``duck`` message gives it.
    """

    session: str
    depth_db: float
    attack_ms: int
    release_ms: int
    start_at: float
    end_at: float | None
    event: str | None = None  # the game event that started it, None for a client's duck

    def to_message(self, server_time: float) -> dict[str, Any]:
        return {
            "type": "duck",
            "depth_db": self.depth_db,
            "attack_ms": self.attack_ms,
            "release_ms": self.release_ms,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "event": self.event,
            "server_time": server_time,
        }
