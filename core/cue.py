"""What the server decides for a session: cues, stingers, and pending notices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segue.core.score import Transition
from segue.core.track import Track


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

    def to_message(self, server_time: float) -> dict[str, Any]:
        return {
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
