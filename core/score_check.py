"""Score validation: the checks behind ``load_score`` and ``parse_score``.

``check_score(root, path, label)`` walks the YAML tree of a score, collects every problem
(each as ``FILE:LINE: path: message``) and raises them together in one ``ScoreError``, or
builds the ``Score`` model (``segue.core.score``). The key lists and limits below are the
ones ``docs/score.md`` documents key by key.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from segue.core.conditions import (
    ConditionError,
    compile_condition,
    describe,
    format_path,
    plain,
    suggest,
)
from segue.core.errors import ScoreError
from segue.core.prompts import contradicting_keys, contradicting_tempos
from segue.core.score import (
    SCORE_VERSION,
    Duck,
    EventSpec,
    Intensity,
    Layer,
    Mood,
    PluginChoice,
    RoomsOptions,
    Rule,
    Score,
    ServerOptions,
    Style,
    Transition,
    TransitionRule,
)
from segue.core.yamlsource import LineDict, duplicates, line_of

NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# What a browser sends as its Origin: scheme://host[:port], nothing after (or "null").
ORIGIN_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+|null")
PLUGIN_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
FORMATS = ("ogg", "mp3", "opus", "flac", "wav")
MOOD_AT = ("now", "next_beat", "next_bar", "end")
EVENT_AT = ("now", "next_beat", "next_bar")
ENTRIES = ("start", "same_position")
FADES = ("cross", "out", "in", "none")
EXITS = ("fade", "outro")
MODES = (
    "major",
    "minor",
    "ionian",
    "dorian",
    "phrygian",
    "lydian",
    "mixolydian",
    "aeolian",
    "locrian",
    "harmonic minor",
)
# Chord-symbol shorthands: ``Am``, ``C#m``, ``Bb min``, ``F maj`` (docs/generators.md).
MODE_SHORTHANDS = {"m": "minor", "min": "minor", "maj": "major"}
MAX_PROMPT_CHARS = 4100
# Eleven Music composition-plan limits (see docs/score.md).
PLAN_SECTION_MS = (3000, 120000)
PLAN_MAX_SECTIONS = 30
PLAN_MAX_STYLES = 50
PLAN_MAX_LINES = 30
PLAN_MAX_LINE_CHARS = 200
PLAN_SECTION_NAME_CHARS = 100
MAX_DURATION_S = 600.0

TOP_KEYS = (
    "segue",
    "title",
    "generator",
    "cache",
    "storage",
    "separator",
    "budget_usd",
    "loudness_lufs",
    "style",
    "defaults",
    "moods",
    "rules",
    "events",
    "transitions",
    "server",
    "intensity",
)
DEFAULTS_KEYS = ("duration_s", "instrumental", "variants", "format")
# Keys a new user may reach for to set a mood's meter, which the prompt says instead.
_METER_HINT = (
    'a mood\'s meter is said in its prompt ("in 3/4", "a waltz", "6/8", "a jig"; '
    "docs/generators.md#meter), and its tracks tell clients their beats_per_bar"
)
METER_HINTS = dict.fromkeys(
    ("meter", "metre", "time_signature", "signature", "beats_per_bar"), _METER_HINT
)
MOOD_KEYS = (
    "prompt",
    "composition_plan",
    "bpm",
    "key",
    "duration_s",
    "instrumental",
    "variants",
    "format",
    "stinger",
    "layers",
)
INTENSITY_KEYS = ("key", "slew_per_s", "at")
LAYER_KEYS = ("from", "to", "gain")
DUCK_KEYS = ("depth_db", "hold_s", "attack_ms", "release_ms")
MAX_LAYERS = 16
MAX_GAIN_POINTS = 32
STATE_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")
PLAN_KEYS = ("positive_global_styles", "negative_global_styles", "sections")
SECTION_KEYS = (
    "section_name",
    "positive_local_styles",
    "negative_local_styles",
    "duration_ms",
    "lines",
)
RULE_KEYS = ("mood", "when", "priority")
EVENT_KEYS = ("stinger", "at", "duck")
TRANSITION_KEYS = (
    "from",
    "to",
    "at",
    "entry",
    "fade",
    "fade_ms",
    "min_dwell_s",
    "debounce_ms",
    "exit",
)
SERVER_KEYS = (
    "tokens",
    "origins",
    "lead_ms",
    "session_ttl_s",
    "max_frame_bytes",
    "rate_per_s",
    "burst",
    "rooms",
    "max_state_keys",
    "max_state_depth",
    "max_key_parts",
    "max_state_bytes",
    "max_sessions",
    "max_connections",
    "max_connections_per_address",
    "session_rate_per_s",
    "session_burst",
    "api_rate_per_s",
    "api_burst",
    "trusted_proxies",
    "header_timeout_s",
    "body_timeout_s",
    "pong_timeout_s",
    "http_session_ttl_s",
)
# Rooms keep several keys per room in scripts and read many rooms' streams at once: one
# Redis, not a Cluster (docs/deployment.md#redis-for-rooms).
CLUSTER_REFUSED = (
    "Redis Cluster is not supported: rooms need one Redis (a single server, or the "
    "primary of a Sentinel or managed setup), see docs/deployment.md#redis-for-rooms"
)
ROOMS_KEYS = ("backend", "url", "prefix")

# A note, an optional accidental, then a mode after a space, or a shorthand (``m``, ``min``,
# ``maj``) that may also follow at once (``C#m``).
_KEY_RE = re.compile(
    r"([A-Ga-g])([#b\u266f\u266d]?)(?:\s+(\S+(?:\s+(?i:minor))?)|(m|(?i:min|maj)))?"
)
_MISSING: Any = object()

ErrorPath = tuple[Any, ...]


def _fmt(number: float) -> str:
    """``300`` for 300.0, ``0.1`` for 0.1, never exponent notation."""
    if float(number).is_integer():
        return str(int(number))
    return repr(float(number))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_key(text: str) -> str | None:
    """``"f# Minor"`` -> ``"F# minor"``; ``"C"`` -> ``"C"``; None when it is not a key."""
    m = _KEY_RE.fullmatch(text.strip())
    if not m:
        return None
    note, accidental, spaced, attached = m.groups()
    accidental = {"\u266f": "#", "\u266d": "b"}.get(accidental, accidental)
    name = note.upper() + accidental
    mode = spaced or attached
    if mode is None:
        return name
    if mode == "M":  # major in chord symbols, minor to some: too easy to misread
        return None
    mode = " ".join(mode.lower().split())
    mode = MODE_SHORTHANDS.get(mode, mode)
    if mode not in MODES:
        return None
    return f"{name} {mode}"


class ScoreChecker:
    """Walks the raw YAML, collecting every error, and builds the model's parts."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.errors: list[tuple[int | None, ErrorPath, str]] = []
        # What is valid but probably not meant (a prompt contradicting its mood's bpm).
        self.warnings: list[tuple[int | None, ErrorPath, str]] = []

    def error(self, path: ErrorPath, message: str, line: int | None = None) -> None:
        self.errors.append((line, path, message))

    def warn(self, path: ErrorPath, message: str) -> None:
        self.warnings.append((None, path, message))

    # -- generic checks -----------------------------------------------------------------

    def mapping(
        self,
        value: Any,
        path: ErrorPath,
        allowed: Sequence[str] | None,
        what: str = "a mapping",
        hints: Mapping[str, str] | None = None,
    ) -> Mapping[Any, Any] | None:
        """``value`` as a mapping whose keys are strings (and in ``allowed``), or None.

        ``hints`` says what to write instead of some unknown keys (``meter``)."""
        if not isinstance(value, Mapping):
            self.error(path, f"must be {what}")
            return None
        self.odd_keys(value, path)
        for key in value:
            if not isinstance(key, str):
                continue
            if allowed is not None and key not in allowed:
                if hints and key in hints:
                    self.error((*path, key), f"unknown key '{key}': {hints[key]}")
                    continue
                hint = suggest(key, allowed) or f" (expected one of: {', '.join(allowed)})"
                self.error((*path, key), f"unknown key '{key}'{hint}")
        return value

    def odd_keys(self, value: Mapping[Any, Any], path: ErrorPath) -> bool:
        """Report each key of ``value`` that is no string; whether there was one."""
        # Each at its own line (its parent's would point at the wrong one), as written, and
        # why: `on:`, `yes:`, `1:` and `~:` are YAML's booleans, numbers, null (and Python
        # takes `1:` and `yes:` for one key: the loader kept both in odd_keys).
        odd = value.odd_keys if isinstance(value, LineDict) else []
        if not odd:
            odd = [(key, None, repr(key)) for key in value if not isinstance(key, str)]
        for key, line, written in odd:
            read = repr(key)
            shown = read if written in (read, "") else f"{written} (read as {read})"
            self.error(
                path,
                f"key {shown} must be a string (quote it: YAML reads yes/no/on/off, "
                "numbers and ~ as other types)",
                line,
            )
        return bool(odd)

    def number(
        self,
        raw: Mapping[Any, Any],
        key: str,
        path: ErrorPath,
        lo: float,
        hi: float,
        default: Any,
        integer: bool = False,
    ) -> Any:
        value = raw.get(key, _MISSING)
        if value is _MISSING:
            return default
        # Range first: an integer too large for a float must not reach math.isfinite().
        ok = _is_number(value) and lo <= value <= hi and math.isfinite(value)
        if ok and integer and value != int(value):
            ok = False
        if not ok:
            kind = "a whole number" if integer else "a number"
            self.error((*path, key), f"must be {kind} from {_fmt(lo)} to {_fmt(hi)}")
            return default
        return int(value) if integer else value

    def boolean(self, raw: Mapping[Any, Any], key: str, path: ErrorPath, default: bool) -> bool:
        value = raw.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.error((*path, key), "must be true or false")
            return default
        return value

    def choice(
        self,
        raw: Mapping[Any, Any],
        key: str,
        path: ErrorPath,
        choices: Sequence[str],
        default: str,
    ) -> str:
        value = raw.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or value not in choices:
            hint = suggest(value, choices) if isinstance(value, str) else ""
            self.error((*path, key), f"must be one of: {', '.join(choices)}{hint}")
            return default
        return value

    def text(self, value: Any, path: ErrorPath, max_chars: int, min_chars: int = 1) -> str | None:
        if not isinstance(value, str):
            self.error(path, "must be a string")
            return None
        if len(value.strip()) < min_chars:
            self.error(path, "must not be empty")
            return None
        if len(value) > max_chars:
            self.error(path, f"must be at most {max_chars} characters (it has {len(value)})")
            return None
        return value

    def strings(
        self,
        value: Any,
        path: ErrorPath,
        max_items: int,
        max_chars: int = 1000,
        allow_empty_strings: bool = False,
    ) -> list[str] | None:
        if not isinstance(value, list):
            self.error(path, "must be a list of strings")
            return None
        if len(value) > max_items:
            self.error(path, f"must have at most {max_items} items (it has {len(value)})")
            return None
        out = []
        for i, item in enumerate(value):
            text = self.text(item, (*path, i), max_chars, 0 if allow_empty_strings else 1)
            if text is None:
                return None
            out.append(text)
        return out

    def name(self, value: Any, path: ErrorPath, what: str) -> str | None:
        if not isinstance(value, str) or not NAME_RE.fullmatch(value):
            got = ""
            if isinstance(value, str) and 1 <= len(value) <= 64:
                # Say which character is not allowed (a space, an accent, an emoji).
                at = next(i for i, c in enumerate(value) if not NAME_RE.fullmatch(c))
                got = f" (got {value[at]!r} at position {at + 1})"
            elif isinstance(value, str):
                got = f" (got {len(value)} characters)"
            self.error(path, f"{what} must be 1-64 characters of A-Z a-z 0-9 _ . -{got}")
            return None
        return value

    # -- sections -----------------------------------------------------------------------

    def version(self, root: Mapping[Any, Any]) -> int:
        if "segue" not in root:
            self.error(("segue",), "required: the score's schema version (segue: 1)")
            return SCORE_VERSION
        value = root["segue"]
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(("segue",), "must be the schema version, 1")
        elif value != SCORE_VERSION:
            self.error(
                ("segue",), f"unsupported version {value}; this segue reads version {SCORE_VERSION}"
            )
        return SCORE_VERSION

    def plugin(self, value: Any, path: ErrorPath, name_key: str, kind: str) -> PluginChoice | None:
        """A plugin named by a string, or a mapping with ``name_key`` (or ``name``) and options."""
        what = f"a {kind} name or a mapping with `{name_key}` and its options"
        if isinstance(value, str):
            if not PLUGIN_NAME_RE.fullmatch(value):
                self.error(path, f"must be {what}")
                return None
            return PluginChoice(value, line=self._line(path))
        raw = self.mapping(value, path, None, what)
        if raw is None:
            return None
        keys = [k for k in dict.fromkeys((name_key, "name")) if k in raw]
        if len(keys) != 1:
            message = (
                f"needs `{name_key}`" if not keys else f"give `{name_key}` or `name`, not both"
            )
            self.error(path, message)
            return None
        name = raw[keys[0]]
        if not isinstance(name, str) or not PLUGIN_NAME_RE.fullmatch(name):
            self.error((*path, keys[0]), "must be a plugin name")
            return None
        if any(not isinstance(k, str) for k in raw):
            return None
        options = {k: plain(v) for k, v in raw.items() if k != keys[0]}
        return PluginChoice(name, options, line=self._line(path))

    def _line(self, path: ErrorPath) -> int:
        """The line of ``path`` when the score writes it, else 0 (a default)."""
        node: Any = self.root
        for part in path:
            present = (
                part in node
                if isinstance(node, Mapping)
                else isinstance(node, list) and isinstance(part, int) and part < len(node)
            )
            if not present:
                return 0
            node = node[part]
        return line_of(self.root, path) or 0

    def storage(self, value: Any, path: ErrorPath) -> tuple[PluginChoice, ...]:
        if isinstance(value, list):
            if not value:
                self.error(path, "must list at least one sink (the first is the primary)")
                return (PluginChoice("local"),)
            choices = [
                self.plugin(item, (*path, i), "sink", "storage sink")
                for i, item in enumerate(value)
            ]
            return tuple(c for c in choices if c is not None) or (PluginChoice("local"),)
        choice = self.plugin(value, path, "sink", "storage sink")
        return (choice or PluginChoice("local"),)

    def separator(self, value: Any) -> PluginChoice | None:
        """``separator``: the stem separator for generators without stems; ``none``: none."""
        if value is None or value is False or value == "none":
            return None
        return self.plugin(value, ("separator",), "name", "stem separator")

    def style(self, value: Any, path: ErrorPath) -> Style:
        if value is None:
            return Style()
        raw = self.mapping(value, path, ("positive", "negative"))
        if raw is None:
            return Style()
        lists = {}
        for key in ("positive", "negative"):
            if key in raw:
                lists[key] = tuple(self.strings(raw[key], (*path, key), PLAN_MAX_STYLES, 200) or ())
        return Style(**lists)

    def defaults(self, value: Any, path: ErrorPath) -> dict[str, Any]:
        out: dict[str, Any] = {
            "duration_s": 60.0,
            "instrumental": True,
            "variants": 1,
            "format": "ogg",
        }
        if value is None:
            return out
        raw = self.mapping(value, path, DEFAULTS_KEYS)
        if raw is None:
            return out
        out["duration_s"] = float(
            self.number(raw, "duration_s", path, 3, MAX_DURATION_S, out["duration_s"])
        )
        out["instrumental"] = self.boolean(raw, "instrumental", path, True)
        out["variants"] = self.number(raw, "variants", path, 1, 16, 1, integer=True)
        out["format"] = self.choice(raw, "format", path, FORMATS, "ogg")
        return out

    def moods(self, value: Any, defaults: dict[str, Any]) -> dict[str, Mood]:
        path: ErrorPath = ("moods",)
        if value is _MISSING:
            self.error(path, "required: a mapping of mood names to moods")
            return {}
        raw = self.mapping(value, path, None, "a mapping of mood names to moods")
        if raw is None:
            return {}
        if not raw:
            self.error(path, "must define at least one mood")
        moods = {}
        for name, spec in raw.items():
            if not isinstance(name, str):
                continue  # reported by mapping()
            if self.name(name, (*path, name), "a mood name") is None:
                continue
            mood = self.mood(name, spec, (*path, name), defaults)
            if mood is not None:
                moods[name] = mood
        return moods

    def mood(self, name: str, value: Any, path: ErrorPath, defaults: dict[str, Any]) -> Mood | None:
        raw = self.mapping(
            value, path, MOOD_KEYS, "a mapping with a prompt or a composition_plan", METER_HINTS
        )
        if raw is None:
            return None
        before = len(self.errors)
        prompt = None
        if "prompt" in raw:
            prompt = self.text(raw["prompt"], (*path, "prompt"), MAX_PROMPT_CHARS)
            prompt = prompt.strip() if prompt is not None else None
        plan, plan_ms = None, None
        if "composition_plan" in raw:
            plan, plan_ms = self.plan(raw["composition_plan"], (*path, "composition_plan"))
        if "prompt" not in raw and "composition_plan" not in raw:
            self.error(path, "needs a prompt or a composition_plan")
        duration = float(
            self.number(raw, "duration_s", path, 3, MAX_DURATION_S, defaults["duration_s"])
        )
        if plan_ms is not None:
            # The plan's sections fix the length; it wins over duration_s (docs/score.md).
            duration = plan_ms / 1000.0
        bpm = self.number(raw, "bpm", path, 20, 300, None)
        key = None
        if "key" in raw:
            key = self.key(raw["key"], (*path, "key"))
        mood = Mood(
            name=name,
            prompt=prompt,
            composition_plan=plan,
            duration_s=duration,
            instrumental=self.boolean(raw, "instrumental", path, defaults["instrumental"]),
            variants=self.number(raw, "variants", path, 1, 16, defaults["variants"], integer=True),
            format=self.choice(raw, "format", path, FORMATS, defaults["format"]),
            bpm=float(bpm) if bpm is not None else None,
            key=key,
            stinger=self.boolean(raw, "stinger", path, False),
            line=line_of(self.root, path),
            layers=self.layers(raw["layers"], (*path, "layers")) if "layers" in raw else (),
        )
        if mood.stinger and mood.layers:
            # No layers message ever reaches a stinger: its stems (demucs: paid for) would
            # be made for nothing.
            self.error(
                (*path, "layers"),
                "a stinger plays whole over the music: layers are for the looping moods "
                "the intensity drives",
            )
        if len(self.errors) != before:
            return None
        self.prompt_contradictions(mood, path)
        return mood

    def prompt_contradictions(self, mood: Mood, path: ErrorPath) -> None:
        """Warn of a prompt whose tempos or keys all contradict the mood's ``bpm``/``key``:
        the mood's fields win (the tempo_key transformer puts them in the prompt's place)."""
        texts = [((*path, "prompt"), mood.prompt or "")]
        if mood.composition_plan:
            styles = mood.composition_plan.get("positive_global_styles") or []
            where = (*path, "composition_plan", "positive_global_styles")
            texts.append((where, " | ".join(s for s in styles if isinstance(s, str))))
        for where, text in texts:
            tempos = contradicting_tempos(text, mood.bpm)
            if tempos and mood.bpm is not None:
                said = ", ".join(f'"{m[0]}"' for m in tempos)
                self.warn(
                    where,
                    f"says {said} but the mood's bpm is {_fmt(mood.bpm)}: the bpm wins (the "
                    f"generator is asked for {_fmt(mood.bpm)} BPM, the clock counts it)",
                )
            keys = contradicting_keys(text, mood.key)
            if keys:
                said = ", ".join(f'"{m[0]}"' for m in keys)
                self.warn(
                    where,
                    f"says {said} but the mood's key is {mood.key}: the key wins (the "
                    f"generator is asked for {mood.key})",
                )

    def layers(self, value: Any, path: ErrorPath) -> tuple[Layer, ...]:
        raw = self.mapping(value, path, None, "a mapping of stem names to layers")
        if raw is None:
            return ()
        if not raw:
            self.error(path, "must name at least one stem (or leave `layers` out)")
        elif len(raw) > MAX_LAYERS:
            self.error(path, f"must have at most {MAX_LAYERS} layers (it has {len(raw)})")
            return ()
        out = []
        for name, spec in raw.items():
            if not isinstance(name, str):
                continue  # reported by mapping()
            lpath = (*path, name)
            if self.name(name, lpath, "a stem name") is None:
                continue
            body = self.mapping(
                {} if spec is None else spec, lpath, LAYER_KEYS, "a mapping like {from: 0.4}"
            )
            if body is None:
                continue
            before = len(self.errors)
            lo = float(self.number(body, "from", lpath, 0, 1, 0.0))
            hi = float(self.number(body, "to", lpath, 0, 1, 1.0))
            if len(self.errors) == before and lo >= hi:
                self.error(
                    (*lpath, "to" if "to" in body else "from"),
                    f"`from` ({_fmt(lo)}) must be below `to` ({_fmt(hi)})",
                )
            gain = self.gain_curve(body["gain"], (*lpath, "gain")) if "gain" in body else ()
            if len(self.errors) == before:
                out.append(Layer(name, lo, hi, gain, line_of(self.root, lpath)))
        return tuple(out)

    def gain_curve(self, value: Any, path: ErrorPath) -> tuple[tuple[float, float], ...]:
        """``[[intensity, gain], ...]``: 1-32 points, intensities rising, both 0-1."""
        what = "a list of [intensity, gain] points, e.g. [[0.4, 0.2], [1, 1]]"
        if not isinstance(value, list) or not value:
            self.error(path, f"must be {what}")
            return ()
        if len(value) > MAX_GAIN_POINTS:
            self.error(path, f"must have at most {MAX_GAIN_POINTS} points (it has {len(value)})")
            return ()
        points: list[tuple[float, float]] = []
        for i, point in enumerate(value):
            ok = (
                isinstance(point, list)
                and len(point) == 2
                and all(_is_number(v) and 0 <= v <= 1 for v in point)
            )
            if not ok:
                self.error((*path, i), "must be [intensity, gain], each a number from 0 to 1")
                return ()
            if points and point[0] <= points[-1][0]:
                self.error(
                    (*path, i),
                    f"intensities must rise: {_fmt(point[0])} follows {_fmt(points[-1][0])}",
                )
                return ()
            points.append((float(point[0]), float(point[1])))
        return tuple(points)

    def intensity(self, value: Any, moods: dict[str, Mood]) -> Intensity | None:
        path: ErrorPath = ("intensity",)
        layered = [m for m in moods.values() if m.layers]
        if value is _MISSING or value is None:
            if layered:
                self.error(
                    ("moods", layered[0].name, "layers"),
                    "layers need a score-level `intensity` naming the state key that drives "
                    "them (e.g. intensity: {key: threat})",
                )
            return None
        raw = self.mapping(value, path, INTENSITY_KEYS, "a mapping like {key: threat}")
        if raw is None:
            return None
        before = len(self.errors)
        key = raw.get("key", _MISSING)
        if key is _MISSING:
            self.error(path, "needs `key`: the state key (a number 0-1) that drives the layers")
        elif not isinstance(key, str) or not STATE_KEY_RE.fullmatch(key) or len(key) > 200:
            self.error((*path, "key"), "must be a state key like threat or player.danger")
        slew = float(self.number(raw, "slew_per_s", path, 0.01, 1000, 2.0))
        at = self.choice(raw, "at", path, EVENT_AT, "now")
        if len(self.errors) != before:
            return None
        return Intensity(key, slew, at, line_of(self.root, path))

    def duck(self, value: Any, path: ErrorPath) -> Duck | None:
        raw = self.mapping(value, path, DUCK_KEYS, "a mapping like {depth_db: -12, hold_s: 3}")
        if raw is None:
            return None
        d = Duck()
        hold = (
            None if raw.get("hold_s") is None else self.number(raw, "hold_s", path, 0, 3600, None)
        )
        return Duck(
            depth_db=float(self.number(raw, "depth_db", path, -60, 0, d.depth_db)),
            hold_s=float(hold) if hold is not None else None,
            attack_ms=self.number(raw, "attack_ms", path, 0, 10000, d.attack_ms, integer=True),
            release_ms=self.number(raw, "release_ms", path, 0, 60000, d.release_ms, integer=True),
        )

    def key(self, value: Any, path: ErrorPath) -> str | None:
        if isinstance(value, str):
            parsed = parse_key(value)
            if parsed is not None:
                return parsed
            words = value.split()
            if len(words) == 2 and parse_key(words[0]) and words[1].lower() not in MODES:
                self.error(
                    path,
                    f"unknown mode '{words[1]}'{suggest(words[1].lower(), MODES)}; "
                    f"modes: {', '.join(MODES)}",
                )
                return None
        self.error(
            path,
            'must be a key like "D major", "F# minor", "Bb dorian" or "C" '
            "(a note A-G with # or b, then a mode)",
        )
        return None

    def plan(self, value: Any, path: ErrorPath) -> tuple[dict[str, Any] | None, int | None]:
        """A normalised Eleven Music composition plan and its total length in ms."""
        raw = self.mapping(value, path, PLAN_KEYS, "a composition plan (a mapping with sections)")
        if raw is None:
            return None, None
        before = len(self.errors)
        plan: dict[str, Any] = {}
        for key in ("positive_global_styles", "negative_global_styles"):
            styles = self.strings(
                raw.get(key, []), (*path, key), PLAN_MAX_STYLES, allow_empty_strings=True
            )
            plan[key] = styles or []
        sections = raw.get("sections", _MISSING)
        spath = (*path, "sections")
        total = 0
        plan["sections"] = []
        if sections is _MISSING:
            self.error(path, "needs `sections`")
        elif not isinstance(sections, list) or not sections:
            self.error(spath, "must be a non-empty list of sections")
        elif len(sections) > PLAN_MAX_SECTIONS:
            self.error(
                spath, f"must have at most {PLAN_MAX_SECTIONS} sections (it has {len(sections)})"
            )
        else:
            for i, item in enumerate(sections):
                section = self.section(item, (*spath, i))
                if section is not None:
                    plan["sections"].append(section)
                    total += section["duration_ms"]
            if len(self.errors) == before and total > MAX_DURATION_S * 1000:
                self.error(
                    spath,
                    f"sections last {_fmt(total / 1000)} s in all; "
                    f"a track is at most {_fmt(MAX_DURATION_S)} s",
                )
        if len(self.errors) != before:
            return None, None
        return plan, total

    def section(self, value: Any, path: ErrorPath) -> dict[str, Any] | None:
        raw = self.mapping(value, path, SECTION_KEYS, "a section mapping")
        if raw is None:
            return None
        missing = [k for k in SECTION_KEYS if k not in raw]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            self.error(path, f"missing required key{plural}: {', '.join(missing)}")
            return None
        before = len(self.errors)
        name = self.text(raw["section_name"], (*path, "section_name"), PLAN_SECTION_NAME_CHARS)
        styles = {}
        for key in ("positive_local_styles", "negative_local_styles"):
            styles[key] = self.strings(
                raw[key], (*path, key), PLAN_MAX_STYLES, allow_empty_strings=True
            )
        lo, hi = PLAN_SECTION_MS
        duration = self.number(raw, "duration_ms", path, lo, hi, None, integer=True)
        lines = self.strings(
            raw["lines"],
            (*path, "lines"),
            PLAN_MAX_LINES,
            PLAN_MAX_LINE_CHARS,
            allow_empty_strings=True,
        )
        if len(self.errors) != before:
            return None
        return {"section_name": name, **styles, "duration_ms": duration, "lines": lines}

    def mood_ref(
        self,
        value: Any,
        path: ErrorPath,
        moods: dict[str, Mood],
        names: set[str],
        *,
        stinger: bool,
        wildcard: bool = False,
    ) -> str | None:
        """A reference to a mood; ``names`` are every mood name written (valid or not)."""
        if wildcard and value == "*":
            return "*"
        if not isinstance(value, str):
            self.error(path, "must be a mood name" + (' or "*"' if wildcard else ""))
            return None
        if value not in names:
            self.error(path, f"unknown mood '{value}'{suggest(value, sorted(names))}")
            return None
        mood = moods.get(value)
        if mood is None:
            return None  # the mood itself is invalid and already reported
        if stinger and not mood.stinger:
            self.error(path, f"mood '{value}' is not a stinger (give it `stinger: true`)")
            return None
        if not stinger and mood.stinger:
            what = (
                "rules choose looping moods" if not wildcard else "transitions join looping moods"
            )
            self.error(path, f"mood '{value}' is a stinger; {what} (play stingers from events)")
            return None
        return value

    def rules(self, value: Any, moods: dict[str, Mood], names: set[str]) -> tuple[Rule, ...]:
        path: ErrorPath = ("rules",)
        if value is _MISSING or value is None:
            self.error(
                path,
                "required: a list of rules choosing a mood from the game state "
                "(at least a default, e.g. - {mood: explore})",
            )
            return ()
        if not isinstance(value, list) or not value:
            self.error(path, "must be a non-empty list of rules")
            return ()
        rules = []
        for i, item in enumerate(value):
            rpath = (*path, i)
            raw = self.mapping(item, rpath, RULE_KEYS, "a mapping with `mood` (and `when`)")
            if raw is None:
                continue
            before = len(self.errors)
            if "mood" not in raw:
                self.error(rpath, "needs `mood`")
                mood = None
            else:
                mood = self.mood_ref(raw["mood"], (*rpath, "mood"), moods, names, stinger=False)
            when = None
            if "when" in raw:
                try:
                    when = compile_condition(raw["when"], (*rpath, "when"), odd_keys=self.odd_keys)
                except ConditionError as exc:
                    for where, message in exc.errors:
                        self.error(where, message)
            priority = self.number(raw, "priority", rpath, -1_000_000, 1_000_000, 0, integer=True)
            if len(self.errors) == before and mood is not None:
                rules.append(Rule(mood, when, priority, line_of(self.root, rpath)))
        if (
            rules
            and len(rules) == len(value)
            and not any(r.when is None or r.when.matches({}) for r in rules)
        ):
            # Valid, but a brand-new session (its state empty) would hear nothing.
            self.warn(
                path,
                "no rule matches the empty state of a new session, which hears nothing until "
                "one does: add a default rule without `when` (e.g. - {mood: "
                f"{rules[-1].mood}}})",
            )
        return tuple(rules)

    def events(self, value: Any, moods: dict[str, Mood], names: set[str]) -> dict[str, EventSpec]:
        path: ErrorPath = ("events",)
        if value is _MISSING or value is None:
            return {}
        raw = self.mapping(value, path, None, "a mapping of event names to events")
        if raw is None:
            return {}
        events = {}
        for name, spec in raw.items():
            if not isinstance(name, str):
                continue
            epath = (*path, name)
            if self.name(name, epath, "an event name") is None:
                continue
            if spec is None:
                spec = {}
            body = self.mapping(spec, epath, EVENT_KEYS, "a mapping like {stinger: MOOD}")
            if body is None:
                continue
            before = len(self.errors)
            stinger = None
            if "stinger" in body:
                stinger = self.mood_ref(
                    body["stinger"], (*epath, "stinger"), moods, names, stinger=True
                )
            at = self.choice(body, "at", epath, EVENT_AT, "next_beat")
            duck = self.duck(body["duck"], (*epath, "duck")) if "duck" in body else None
            if len(self.errors) == before:
                events[name] = EventSpec(name, stinger, at, line_of(self.root, epath), duck)
        return events

    def transitions(
        self, value: Any, moods: dict[str, Mood], names: set[str]
    ) -> tuple[TransitionRule, ...]:
        path: ErrorPath = ("transitions",)
        if value is _MISSING or value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, "must be a list of transitions")
            return ()
        out = []
        first_line: dict[tuple[str, str], int] = {}
        for i, item in enumerate(value):
            tpath = (*path, i)
            raw = self.mapping(item, tpath, TRANSITION_KEYS, "a mapping like {from: A, to: B}")
            if raw is None:
                continue
            before = len(self.errors)
            ends = []
            for key in ("from", "to"):
                ends.append(
                    self.mood_ref(
                        raw.get(key, "*"), (*tpath, key), moods, names, stinger=False, wildcard=True
                    )
                )
            transition = Transition(
                at=self.choice(raw, "at", tpath, MOOD_AT, Transition.at),
                entry=self.choice(raw, "entry", tpath, ENTRIES, Transition.entry),
                fade=self.choice(raw, "fade", tpath, FADES, Transition.fade),
                fade_ms=self.number(
                    raw, "fade_ms", tpath, 0, 60000, Transition.fade_ms, integer=True
                ),
                min_dwell_s=float(
                    self.number(raw, "min_dwell_s", tpath, 0, 3600, Transition.min_dwell_s)
                ),
                debounce_ms=self.number(
                    raw, "debounce_ms", tpath, 0, 600000, Transition.debounce_ms, integer=True
                ),
                exit=self.choice(raw, "exit", tpath, EXITS, Transition.exit),
            )
            if transition.exit == "outro" and transition.entry == "same_position":
                # The new track starts when the outro ends: there is no shared position.
                self.error(
                    (*tpath, "entry"),
                    "entry: same_position cannot follow exit: outro "
                    "(the new track starts as the outro ends; use entry: start)",
                )
            line = line_of(self.root, tpath)
            from_mood, to_mood = ends
            if from_mood is not None and to_mood is not None:
                pair = (from_mood, to_mood)
                if pair in first_line:
                    self.error(
                        tpath,
                        f"duplicate transition from '{from_mood}' to '{to_mood}' "
                        f"(first on line {first_line[pair]})",
                    )
                else:
                    first_line[pair] = line
            if len(self.errors) == before and from_mood and to_mood:
                out.append(TransitionRule(from_mood, to_mood, transition, line))
        return tuple(out)

    def server(self, value: Any) -> ServerOptions:
        path: ErrorPath = ("server",)
        if value is _MISSING or value is None:
            return ServerOptions()
        raw = self.mapping(value, path, SERVER_KEYS)
        if raw is None:
            return ServerOptions()
        d = ServerOptions()
        tokens, origins = d.tokens, d.origins
        if "tokens" in raw:
            tokens = tuple(self.strings(raw["tokens"], (*path, "tokens"), 1000, 1000) or ())
        if "origins" in raw:
            origins = tuple(self.strings(raw["origins"], (*path, "origins"), 1000, 1000) or ())
            for i, origin in enumerate(origins):
                # Compared whole with the browser's Origin: another shape never matches.
                if not ORIGIN_RE.fullmatch(origin):
                    hint = (
                        "leave `origins` out to let every page in"
                        if origin == "*"
                        else "scheme://host[:port] as a browser sends it, e.g. "
                        "https://game.example.com, no path or trailing slash"
                    )
                    self.error((*path, "origins", i), f"{origin!r} is not an origin: {hint}")
        proxies = d.trusted_proxies
        if "trusted_proxies" in raw:
            proxies = tuple(
                self.strings(raw["trusted_proxies"], (*path, "trusted_proxies"), 100, 100) or ()
            )
            for i, proxy in enumerate(proxies):
                try:
                    ipaddress.ip_address(proxy)
                except ValueError:
                    self.error(
                        (*path, "trusted_proxies", i),
                        f"{proxy!r} is not an IP address: list each proxy's own address "
                        "(e.g. 127.0.0.1; networks like 10.0.0.0/8 are not read)",
                    )

        def whole(key: str, lo: int, hi: int) -> Any:
            return self.number(raw, key, path, lo, hi, getattr(d, key), integer=True)

        def real(key: str, lo: float, hi: float) -> float:
            return float(self.number(raw, key, path, lo, hi, getattr(d, key)))

        return ServerOptions(
            max_state_keys=whole("max_state_keys", 1, 1_000_000),
            max_state_depth=whole("max_state_depth", 1, 100),
            max_key_parts=whole("max_key_parts", 1, 100),
            max_state_bytes=whole("max_state_bytes", 64, 64 * 1024 * 1024),
            max_sessions=whole("max_sessions", 1, 10_000_000),
            max_connections=whole("max_connections", 1, 10_000_000),
            max_connections_per_address=whole("max_connections_per_address", 1, 10_000_000),
            session_rate_per_s=real("session_rate_per_s", 0.001, 100_000),
            session_burst=whole("session_burst", 1, 10_000_000),
            api_rate_per_s=real("api_rate_per_s", 0.001, 100_000),
            api_burst=whole("api_burst", 1, 10_000_000),
            trusted_proxies=proxies,
            header_timeout_s=real("header_timeout_s", 0.1, 3600),
            body_timeout_s=real("body_timeout_s", 0.1, 3600),
            pong_timeout_s=real("pong_timeout_s", 1, 3600),
            http_session_ttl_s=real("http_session_ttl_s", 1, 7 * 86400),
            tokens=tokens,
            origins=origins,
            lead_ms=self.number(raw, "lead_ms", path, 0, 5000, d.lead_ms, integer=True),
            session_ttl_s=float(
                self.number(raw, "session_ttl_s", path, 1, 7 * 86400, d.session_ttl_s)
            ),
            max_frame_bytes=self.number(
                raw, "max_frame_bytes", path, 256, 16 * 1024 * 1024, d.max_frame_bytes, integer=True
            ),
            rate_per_s=float(self.number(raw, "rate_per_s", path, 0.1, 10000, d.rate_per_s)),
            burst=self.number(raw, "burst", path, 1, 100000, d.burst, integer=True),
            rooms=self.rooms(raw.get("rooms"), (*path, "rooms")),
        )

    def rooms(self, value: Any, path: ErrorPath) -> RoomsOptions | None:
        """``server.rooms``: ``{backend: redis, url: redis://HOST:PORT/DB, prefix}``."""
        if value is None:
            return None
        raw = self.mapping(value, path, ROOMS_KEYS)
        if raw is None:
            return None
        d = RoomsOptions()
        backend = raw.get("backend", _MISSING)
        if backend is _MISSING:
            self.error(path, "needs backend: redis (rooms in memory need no rooms section)")
        elif backend != "redis":
            self.error((*path, "backend"), f"must be redis, not {backend!r}")
        url = raw.get("url", d.url)
        if isinstance(url, str) and ("cluster" in url.split("://")[0] or "," in url):
            self.error((*path, "url"), CLUSTER_REFUSED)
            url = d.url
        elif not isinstance(url, str) or not re.match(r"^(redis|rediss|unix)://", url):
            self.error((*path, "url"), f"must be a redis:// URL, not {url!r}")
            url = d.url
        prefix = raw.get("prefix", d.prefix)
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", prefix):
            self.error((*path, "prefix"), "must be 1-64 letters, digits or _.:-")
            prefix = d.prefix
        return RoomsOptions(backend="redis", url=url, prefix=prefix)

    # -- the whole score ----------------------------------------------------------------

    def score(self, path: Path, label: str) -> Score | None:
        root = self.root
        if not isinstance(root, Mapping):
            kind = "empty" if root is None else describe(root)
            self.error((), f"must be a mapping starting with `segue: 1` (the file is {kind})")
            return None
        for where, line, first in duplicates(root):
            what = "mood" if len(where) == 2 and where[0] == "moods" else "key"
            self.error(where, f"duplicate {what} '{where[-1]}' (first on line {first})", line)
        self.mapping(root, (), TOP_KEYS)
        version = self.version(root)
        title = Path(label).stem
        if "title" in root:
            title = self.text(root["title"], ("title",), 200) or title
        generator = self.plugin(root.get("generator", "synth"), ("generator",), "name", "generator")
        cache = self.plugin(root.get("cache", "disk"), ("cache",), "backend", "cache backend")
        storage = self.storage(root.get("storage", "local"), ("storage",))
        separator = self.separator(root.get("separator", "demucs"))
        budget = None
        if root.get("budget_usd") is not None:
            budget = self.number(root, "budget_usd", (), 0, 1e9, None)
        loudness = self.number(root, "loudness_lufs", (), -40, -5, -16.0)
        style = self.style(root.get("style"), ("style",))
        defaults = self.defaults(root.get("defaults"), ("defaults",))
        raw_moods = root.get("moods", _MISSING)
        moods = self.moods(raw_moods, defaults)
        names = (
            {n for n in raw_moods if isinstance(n, str)}
            if isinstance(raw_moods, Mapping)
            else set()
        )
        rules = self.rules(root.get("rules", _MISSING), moods, names)
        events = self.events(root.get("events", _MISSING), moods, names)
        transitions = self.transitions(root.get("transitions", _MISSING), moods, names)
        server = self.server(root.get("server", _MISSING))
        intensity = self.intensity(root.get("intensity", _MISSING), moods)
        if self.errors:
            return None
        return Score(
            path=path,
            title=title,
            generator=generator or PluginChoice("synth"),
            cache=cache or PluginChoice("disk"),
            storage=storage,
            separator=separator,
            warnings=tuple(self.formatted(label, self.warnings, "warning: ")),
            moods=moods,
            rules=rules,
            events=events,
            transitions=transitions,
            budget_usd=float(budget) if budget is not None else None,
            loudness_lufs=float(loudness),
            style=style,
            server=server,
            version=version,
            intensity=intensity,
        )

    def formatted(
        self,
        label: str,
        found: list[tuple[int | None, ErrorPath, str]] | None = None,
        kind: str = "",
    ) -> list[str]:
        """``FILE:LINE: path: message`` for each error (or each of ``found``), by line."""
        lines = []
        for line, path, message in self.errors if found is None else found:
            number = line if line is not None else line_of(self.root, path)
            where = format_path(path) or "score"
            lines.append((number, f"{label}:{number}: {kind}{where}: {message}"))
        # By line, then in the order found (sorted() is stable).
        return [text for _, text in sorted(lines, key=lambda pair: pair[0])]


def check_score(root: Any, path: Path, label: str) -> Score:
    """The ``Score`` that YAML tree ``root`` describes; raise ``ScoreError`` listing every problem.

    ``label`` names the file in error lines, ``path`` is where the score lives.
    """
    checker = ScoreChecker(root)
    try:
        score = checker.score(path, label)
    except RecursionError:
        raise ScoreError([f"{label}:1: score: nested too deeply"]) from None
    if score is None:
        raise ScoreError(checker.formatted(label))
    return score
