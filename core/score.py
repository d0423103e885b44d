"""The score model: the parsed, validated ``adaptive_score.yaml``.

``load_score(path)`` reads and validates a score file and returns a ``Score``; every
problem found is reported together in one ``ScoreError`` whose lines read
``FILE:LINE: path: message``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

SCORE_VERSION = 1
DEFAULT_SCORE = "adaptive_score.yaml"


class Condition(Protocol):
    """A compiled ``when`` condition."""

    def matches(self, state: Mapping[str, Any]) -> bool: ...

    def keys(self) -> set[str]:
        """The (dotted) state keys it reads."""
        ...


@dataclass(frozen=True)
class PluginChoice:
    """A named plugin and its options, e.g. ``generator: {name: fal, concurrency: 2}``."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Style:
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mood:
    name: str
    prompt: str | None
    composition_plan: dict[str, Any] | None
    duration_s: float
    instrumental: bool
    variants: int
    format: str
    bpm: float | None = None
    key: str | None = None
    stinger: bool = False
    line: int = 0


@dataclass(frozen=True)
class Rule:
    mood: str
    when: Condition | None
    priority: int = 0
    line: int = 0


@dataclass(frozen=True)
class EventSpec:
    name: str
    stinger: str | None = None  # the stinger mood to play
    at: str = "next_beat"  # now | next_beat | next_bar
    line: int = 0


@dataclass(frozen=True)
class Transition:
    """How to move between two moods; fields a rule omits take these defaults."""

    at: str = "next_bar"  # now | next_beat | next_bar | end
    entry: str = "start"  # start | same_position
    fade: str = "cross"  # cross | out | in | none
    fade_ms: int = 1000
    min_dwell_s: float = 0.0
    debounce_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "entry": self.entry, "fade": self.fade, "fade_ms": self.fade_ms}


@dataclass(frozen=True)
class TransitionRule:
    from_mood: str  # a mood or "*"
    to_mood: str  # a mood or "*"
    transition: Transition
    line: int = 0


@dataclass(frozen=True)
class ServerOptions:
    tokens: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()  # allowed Origin headers; empty = any
    lead_ms: int = 200
    session_ttl_s: float = 300.0
    max_frame_bytes: int = 65536
    rate_per_s: float = 20.0
    burst: int = 40


@dataclass(frozen=True)
class Score:
    path: Path
    title: str
    generator: PluginChoice
    cache: PluginChoice
    storage: tuple[PluginChoice, ...]
    moods: dict[str, Mood]
    rules: tuple[Rule, ...]
    events: dict[str, EventSpec]
    transitions: tuple[TransitionRule, ...]
    budget_usd: float | None = None
    loudness_lufs: float = -16.0
    style: Style = Style()
    server: ServerOptions = ServerOptions()
    version: int = SCORE_VERSION

    @property
    def state_dir(self) -> Path:
        """``.segue/`` beside the score."""
        return self.path.resolve().parent / ".segue"

    def public(self) -> dict[str, Any]:
        """What ``GET /api/score`` shows: moods, rules, events, transitions; never secrets."""
        raise NotImplementedError  # filled in with the loader


def load_score(path: str | Path) -> Score:
    """Read, validate and build a score; raise ScoreError listing every problem."""
    raise NotImplementedError
