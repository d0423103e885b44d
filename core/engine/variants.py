"""Variant rotation: a seeded shuffle bag per mood, never the same take twice in a row."""

from __future__ import annotations

import random
from collections.abc import Sequence


class VariantPicker:
    """Picks which take (variant) of a mood to play next.

    Each mood has its own bag holding every available variant once, in a seeded random
    order; picks empty it, then it is refilled and reshuffled. A refill never starts with
    the variant just played, so there is no immediate repeat while a mood has two or more
    variants, and every variant is heard once per round (no long droughts). Each mood's
    generator is seeded from ``(seed, mood)``, so one mood's picks do not depend on how
    often another was picked. ``seed=None`` means unpredictable.
    """

    # One per session: no __dict__, and the rounds' state only once a mood has takes
    # to rotate (most moods have one).
    __slots__ = ("_bags", "_pools", "_rngs", "_seed", "last")

    def __init__(self, seed: int | str | None = None) -> None:
        self._seed = seed if seed is not None else random.SystemRandom().getrandbits(64)
        self._rngs: dict[str, random.Random] | None = None
        self._bags: dict[str, list[int]] | None = None
        self._pools: dict[str, tuple[int, ...]] | None = None
        self.last: dict[str, int] = {}  # the variant last picked, per mood

    def pick(self, mood: str, available: Sequence[int]) -> int:
        if type(available) in (list, tuple) and len(available) == 1:
            # One take (the usual case): nothing to rotate.
            choice = available[0]
            self.last[mood] = choice
            return choice
        pool = tuple(sorted(set(available)))
        if not pool:
            raise ValueError(f"mood {mood!r}: no variants to pick from")
        if len(pool) == 1:
            self.last[mood] = pool[0]
            return pool[0]
        if self._pools is None or self._bags is None or self._rngs is None:
            self._pools, self._bags, self._rngs = {}, {}, {}
        if self._pools.get(mood) != pool:
            # New or lost variants: start a fresh round over what is there now.
            self._pools[mood] = pool
            self._bags[mood] = []
        bag = self._bags[mood]
        last = self.last.get(mood)
        if bag and bag[-1] == last:
            # Left over from before the pool changed, or the last pick came from a
            # one-variant pool: never play the same take twice in a row.
            if len(bag) > 1:
                bag[-1], bag[0] = bag[0], bag[-1]
            else:
                bag.clear()
        if not bag:
            rng = self._rngs.get(mood)
            if rng is None:
                # A str seed hashes with SHA-512 inside Random: stable across runs.
                rng = self._rngs[mood] = random.Random(f"{self._seed}\x00{mood}")
            bag.extend(pool)
            rng.shuffle(bag)
            if bag[-1] == last:  # picks pop from the end
                bag[0], bag[-1] = bag[-1], bag[0]
        choice = bag.pop()
        self.last[mood] = choice
        return choice
