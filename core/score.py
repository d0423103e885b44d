"""The score model: the parsed, validated ``adaptive_score.yaml``.

``load_score(path)`` reads and validates a score file and returns a ``Score``; every
problem found is reported together in one ``ScoreError`` whose lines read
``FILE:LINE: path: message``. ``parse_score(text, label)`` does the same for text in
memory. The checks live in ``segue.core.score_check``; they and their limits are
documented key by key in ``docs/score.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from segue.core.errors import ScoreError
from segue.core.yamlsource import YamlSourceError, load_yaml

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
    # Where the score names it (0: not written in the score), so that a plugin refusing its
    # options can be reported as ``FILE:LINE: ...``; not part of equality.
    line: int = field(default=0, compare=False)


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
    layers: tuple[Layer, ...] = ()


# The window edge of a layer (intensity units): a layer with ``from: a`` fades in between
# ``a - LAYER_EDGE`` and ``a`` (and out between ``to`` and ``to + LAYER_EDGE``), so that
# crossing a threshold is a short ramp (25 ms at slew 2/s), never a click.
LAYER_EDGE = 0.05


@dataclass(frozen=True)
class Layer:
    """A named stem of a mood, heard between intensities ``from_`` and ``to``.

    ``gain`` is an optional curve of ``(intensity, gain)`` points (linear between them,
    flat beyond the ends) that shapes the stem's gain inside its window.
    """

    name: str
    from_: float = 0.0
    to: float = 1.0
    gain: tuple[tuple[float, float], ...] = ()
    line: int = 0

    def gain_at(self, intensity: float) -> float:
        """The stem's linear gain (0-1) at ``intensity``."""
        if intensity < self.from_:
            window = max(0.0, (intensity - (self.from_ - LAYER_EDGE)) / LAYER_EDGE)
        elif intensity > self.to:
            window = max(0.0, ((self.to + LAYER_EDGE) - intensity) / LAYER_EDGE)
        else:
            window = 1.0
        if window <= 0.0 or not self.gain:
            return window
        return window * _curve(self.gain, intensity)

    def breakpoints(self) -> tuple[float, ...]:
        """The intensities where ``gain_at`` bends (linear between them)."""
        points = {self.from_ - LAYER_EDGE, self.from_, self.to, self.to + LAYER_EDGE}
        points.update(x for x, _ in self.gain)
        return tuple(sorted(points))


def _curve(points: tuple[tuple[float, float], ...], x: float) -> float:
    if x <= points[0][0]:
        return points[0][1]
    for (x0, g0), (x1, g1) in itertools.pairwise(points):
        if x <= x1:
            return g0 + (g1 - g0) * (x - x0) / (x1 - x0)
    return points[-1][1]


@dataclass(frozen=True)
class Intensity:
    """The score's ``intensity``: the state key (0-1) that drives layers, and its slew."""

    key: str
    slew_per_s: float = 2.0
    at: str = "now"  # now | next_beat | next_bar: where a change starts
    line: int = 0


@dataclass(frozen=True)
class Duck:
    """An event's ``duck``: lower the music bus by ``depth_db`` (never the stingers)."""

    depth_db: float = -12.0
    hold_s: float | None = None  # None: until a client ends it
    attack_ms: int = 50
    release_ms: int = 500

    def to_dict(self) -> dict[str, Any]:
        return {
            "depth_db": self.depth_db,
            "hold_s": self.hold_s,
            "attack_ms": self.attack_ms,
            "release_ms": self.release_ms,
        }


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
    duck: Duck | None = None


@dataclass(frozen=True)
class Transition:
    """How to move between two moods; fields a rule omits take these defaults."""

    at: str = "next_bar"  # now | next_beat | next_bar | end
    entry: str = "start"  # start | same_position
    fade: str = "cross"  # cross | out | in | none
    fade_ms: int = 1000
    min_dwell_s: float = 0.0
    debounce_ms: int = 0
    # fade | outro: the track left plays its outro (the song's ending) instead of fading
    exit: str = "fade"

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "entry": self.entry,
            "fade": self.fade,
            "fade_ms": self.fade_ms,
            "exit": self.exit,
        }


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
    rooms: RoomsOptions | None = None  # None: rooms in this process's memory
    # Bounded state (segue.core.engine.state.StateLimits).
    max_state_keys: int = 1000
    max_state_depth: int = 16
    max_key_parts: int = 8
    max_state_bytes: int = 65536
    # Admission (segue.core.server.admission); max_connections None: below the fd limit.
    max_sessions: int = 100_000
    max_connections: int | None = None
    max_connections_per_address: int = 256
    session_rate_per_s: float = 2.0
    session_burst: int = 60
    api_rate_per_s: float = 20.0
    api_burst: int = 40
    trusted_proxies: tuple[str, ...] = ()
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    pong_timeout_s: float = 30.0
    http_session_ttl_s: float = 60.0


@dataclass(frozen=True)
class RoomsOptions:
    """``server.rooms``: where rooms live when several servers share them."""

    backend: str = "redis"
    url: str = "redis://localhost:6379/0"
    prefix: str = "segue"


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
    intensity: Intensity | None = None
    # Splits generated songs into the moods' layers when the generator renders no stems
    # (docs/pregeneration.md, "Stems"); None: `separator: none`.
    separator: PluginChoice | None = PluginChoice("demucs")
    # ``FILE:LINE: warning: path: message`` lines: valid, but probably not meant (a prompt
    # saying another tempo than its mood's bpm); `segue validate` and `segue plan` show them.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def state_dir(self) -> Path:
        """``.segue/`` beside the score."""
        return self.path.resolve().parent / ".segue"

    def public(self) -> dict[str, Any]:
        """What ``GET /api/score`` shows: moods, rules, events, transitions; never secrets."""
        out: dict[str, Any] = {
            "title": self.title,
            "version": self.version,
            "moods": [
                {
                    "name": mood.name,
                    "prompt": mood.prompt,
                    "bpm": mood.bpm,
                    "key": mood.key,
                    "duration_s": mood.duration_s,
                    "variants": mood.variants,
                    "stinger": mood.stinger,
                    "format": mood.format,
                    "instrumental": mood.instrumental,
                    "has_plan": mood.composition_plan is not None,
                }
                for mood in self.moods.values()
            ],
            "rules": [
                {
                    "mood": rule.mood,
                    "priority": rule.priority,
                    "when": getattr(rule.when, "source", None) if rule.when else None,
                    "keys": sorted(rule.when.keys()) if rule.when else [],
                }
                for rule in self.rules
            ],
            "events": [
                {"name": event.name, "stinger": event.stinger, "at": event.at}
                for event in self.events.values()
            ],
            "transitions": [
                {"from": t.from_mood, "to": t.to_mood, **_transition_fields(t.transition)}
                for t in self.transitions
            ],
            "default_transition": _transition_fields(Transition()),
            "state_keys": self.state_keys(),
        }
        # Only what a score writes: scores without layers keep their public view.
        if self.intensity is not None:
            i = self.intensity
            out["intensity"] = {"key": i.key, "slew_per_s": i.slew_per_s, "at": i.at}
        for mood, entry in zip(self.moods.values(), out["moods"], strict=True):
            if mood.layers:
                entry["layers"] = [
                    {"name": la.name, "from": la.from_, "to": la.to, "gain": la.gain}
                    for la in mood.layers
                ]
        for event, entry in zip(self.events.values(), out["events"], strict=True):
            if event.duck is not None:
                entry["duck"] = event.duck.to_dict()
        return out

    def state_keys(self) -> list[dict[str, Any]]:
        """``state_keys(rules)`` plus the intensity key (a number 0-1)."""
        keys = state_keys(self.rules)
        if self.intensity is not None and all(k["key"] != self.intensity.key for k in keys):
            keys.append({"key": self.intensity.key, "type": "number", "min": 0, "max": 1})
            keys.sort(key=lambda k: k["key"])
        return keys


def _transition_fields(t: Transition) -> dict[str, Any]:
    return {**t.to_dict(), "min_dwell_s": t.min_dwell_s, "debounce_ms": t.debounce_ms}


def state_keys(rules: tuple[Rule, ...]) -> list[dict[str, Any]]:
    """Every state key the rules read, with a guess of its type for UI controls.

    ``type`` is ``bool``, ``number`` or ``string`` when every value the key is compared
    with has that type, else ``any``; string keys list the values seen (``values``).
    """
    seen: dict[str, tuple[set[str], list[Any]]] = {}
    for rule in rules:
        if rule.when is None:
            continue
        terms = getattr(rule.when, "terms", None)
        if terms is None:
            for key in sorted(rule.when.keys()):
                seen.setdefault(key, (set(), []))
            continue
        for term in terms():
            kinds, values = seen.setdefault(term.key, (set(), []))
            if term.op == "exists":
                continue
            operands = term.value if term.op in ("in", "not_in") else (term.value,)
            for value in operands:
                if value is None:
                    continue
                if isinstance(value, bool):
                    kinds.add("bool")
                elif isinstance(value, int | float):
                    kinds.add("number")
                else:
                    kinds.add("string")
                    if value not in values:
                        values.append(value)
    out = []
    for key in sorted(seen):
        kinds, values = seen[key]
        entry: dict[str, Any] = {"key": key, "type": kinds.pop() if len(kinds) == 1 else "any"}
        if entry["type"] == "string":
            entry["values"] = values
        out.append(entry)
    return out


# --- loading ---------------------------------------------------------------------------

MAX_SCORE_BYTES = 4 * 1024 * 1024


def parse_score(text: str, label: str = DEFAULT_SCORE, path: str | Path | None = None) -> Score:
    """Validate score ``text``; ``label`` names it in errors, ``path`` is where it lives."""
    try:
        root = load_yaml(text)
    except YamlSourceError as exc:
        raise ScoreError([f"{label}:{exc.line}: {exc.message}"]) from None
    # Imported here: the checker builds this module's classes, so it imports this module.
    from segue.core.score_check import check_score

    return check_score(root, Path(path if path is not None else label).resolve(), label)


def load_score(path: str | Path) -> Score:
    """Read, validate and build a score; raise ScoreError listing every problem."""
    label = str(path)
    file = Path(path)
    try:
        if file.is_dir():
            raise IsADirectoryError(21, "is a directory")
        with file.open("rb") as handle:
            data = handle.read(MAX_SCORE_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = (getattr(exc, "strerror", None) or str(exc)).lower()
        raise ScoreError([f"{label}: cannot read score: {reason}"]) from None
    if len(data) > MAX_SCORE_BYTES:
        raise ScoreError([f"{label}: cannot read score: larger than {MAX_SCORE_BYTES} bytes"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScoreError(
            [f"{label}:{line}: cannot read score: not UTF-8 text (byte 0x{data[exc.start]:02x})"]
        ) from None
    return parse_score(text, label, file)
