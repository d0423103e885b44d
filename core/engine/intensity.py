"""Intensity: the slewed value that drives a mood's layers, and the gain ramps it makes.

Pure code: every call gets ``now`` (server seconds). The score's ``intensity.key`` is read
from the game state (clamped to 0-1; missing or not a number counts as 0). The music
follows it at most ``slew_per_s`` per second: a change starting at ``t0`` from ``v0``
reaches the target ``v1`` at ``t0 + |v1 - v0| / slew_per_s``, linearly.

Each layer's gain is piecewise linear in the intensity (``Layer.gain_at``), so along a
linear intensity path it is piecewise linear in time, bending only where the path
crosses a layer's breakpoint. ``ramps()`` cuts the path at those crossings: each piece
is one ``Layers`` message (``start_at``, ``ramp_ms``, the gains at its end), and a client
that ramps each stem linearly reproduces the gains exactly. Pieces in which no gain
changes are left out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from segue.core.conditions import lookup
from segue.core.cue import Layers
from segue.core.score import Layer

# Gains are sent rounded to this many decimals (-80 dB resolution near 0 is enough).
GAIN_DECIMALS = 4


def read_intensity(state: Mapping[str, Any], key: str) -> float:
    """The state's intensity: ``key``'s value clamped to 0-1, 0 if missing or not a number."""
    # The literal key wins over a nested path (conditions.lookup), so a plain dict holding
    # it needs no walk: the common case, on every state change.
    value = state[key] if type(state) is dict and key in state else lookup(state, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    value = float(value)
    if not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, value))


def gains(layers: tuple[Layer, ...], intensity: float) -> dict[str, float]:
    """Each stem's linear gain at ``intensity``."""
    return {layer.name: round(layer.gain_at(intensity), GAIN_DECIMALS) for layer in layers}


@functools.lru_cache(maxsize=1024)
def breakpoints(layers: tuple[Layer, ...]) -> tuple[float, ...]:
    """Every intensity where some layer's gain bends, sorted (once per mood's layers)."""
    return tuple(sorted({x for layer in layers for x in layer.breakpoints()}))


def _raw(layers: tuple[Layer, ...], intensity: float) -> tuple[float, ...]:
    return tuple(layer.gain_at(intensity) for layer in layers)


class _Table:
    """A mood's layers' gains at their breakpoints, computed once (the ramps' hot path)."""

    __slots__ = ("layers", "memo", "named", "names", "points", "raw")

    def __init__(self, layers: tuple[Layer, ...]) -> None:
        self.layers = layers
        self.names = tuple(layer.name for layer in layers)
        self.points = breakpoints(layers)
        self.raw = {x: _raw(layers, x) for x in self.points}
        self.named = {x: self.rounded(g) for x, g in self.raw.items()}
        self.memo: dict[float, tuple[float, ...]] = {}  # gains at other recent intensities

    def at(self, x: float) -> tuple[float, ...]:
        """The raw gains at intensity ``x`` (a change's start is the previous one's end)."""
        g = self.raw.get(x) or self.memo.get(x)
        if g is None:
            if len(self.memo) >= 64:
                self.memo.clear()
            g = self.memo[x] = _raw(self.layers, x)
        return g

    def rounded(self, raw: tuple[float, ...]) -> dict[str, float]:
        return {n: round(g, GAIN_DECIMALS) for n, g in zip(self.names, raw, strict=True)}


# By the identity of a mood's layers tuple (hashing the Layer dataclasses on every change
# cost more than the ramps): the entry keeps the tuple alive, so an id is never reused
# while its entry stands, and the ``is`` check turns away any other tuple.
_TABLES: dict[int, _Table] = {}


def _table(layers: tuple[Layer, ...]) -> _Table:
    table = _TABLES.get(id(layers))
    if table is None or table.layers is not layers:
        if len(_TABLES) >= 1024:
            _TABLES.clear()
        table = _TABLES[id(layers)] = _Table(layers)
    return table


class IntensityPath:
    """The intensity over time: ``v0`` until ``t0``, then linear to ``v1`` at ``slew``/s."""

    __slots__ = ("slew", "t0", "v0", "v1")

    def __init__(self, value: float, slew: float, t0: float = 0.0) -> None:
        self.slew = slew
        self.t0 = t0
        self.v0 = self.v1 = value

    @property
    def target(self) -> float:
        return self.v1

    @property
    def t1(self) -> float:
        """When the path reaches its target."""
        return self.t0 + abs(self.v1 - self.v0) / self.slew

    def value(self, t: float) -> float:
        """The slewed intensity at server time ``t``."""
        if t <= self.t0:
            return self.v0
        step = self.slew * (t - self.t0)
        if self.v1 >= self.v0:
            return min(self.v1, self.v0 + step)
        return max(self.v1, self.v0 - step)

    def retarget(self, t: float, target: float) -> None:
        """From ``t``, head for ``target`` (from wherever the path is then)."""
        self.v0 = self.value(t)
        self.t0 = t
        self.v1 = target

    def ramps(
        self,
        session: str,
        mood: str,
        layers: tuple[Layer, ...],
        since: float,
        initial: bool = True,
    ) -> list[Layers]:
        """The ``Layers`` messages for ``mood`` from ``since`` on.

        With ``initial`` the first one sets the gains at ``since`` at once (``ramp_ms``
        0): what a new cue or a joining client starts from. A change of an intensity
        already followed (``initial`` False) gives only the pieces of the path.
        """
        start = max(since, self.t0)
        here = self.value(start)
        out = []
        if initial:
            out.append(Layers(session, mood, gains(layers, here), since, 0, round(here, 6)))
        if here == self.v1:
            return out
        table = _table(layers)
        v1 = self.v1
        if v1 > here:
            cuts = [x for x in table.points if here < x < v1]
        else:
            cuts = [x for x in reversed(table.points) if v1 < x < here]
        cuts.append(v1)
        last = table.at(here)
        a = here
        for b in cuts:
            g = table.at(b)
            if g != last:
                # Each message gets a dict of its own (the table's stay untouched).
                named = dict(table.named[b]) if b in table.named else table.rounded(g)
                t_a = self.t0 + abs(a - self.v0) / self.slew
                ramp_ms = round(abs(b - a) / self.slew * 1000)
                out.append(Layers(session, mood, named, t_a, ramp_ms, round(b, 6)))
            last = g
            a = b
        return out
