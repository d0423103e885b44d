"""Fault injection for the fal emulator: a small spec language, parsed once.

    SPEC  := RULE (";" RULE)*
    RULE  := KIND [":" OPT ("," OPT)*]
    OPT   := NAME "=" VALUE

KIND is an HTTP status (``429``, ``500``, ``503``, any 400-599) or one of
``slow_queue``, ``run_error``, ``expired_url``, ``truncated``, ``wrong_type``.
Which events a rule counts, and what it does when it fires:

=============  ==========================================  ==============================
kind           counts                                      does
=============  ==========================================  ==============================
``NNN``        requests to ``route`` (default ``submit``;  answers status NNN (``429``
               also ``status``, ``result``, ``cancel``)    with ``Retry-After``)
``slow_queue`` accepted submissions                        keeps the job IN_QUEUE
                                                           ``seconds`` longer (default 5)
``run_error``  accepted submissions                        the run COMPLETES, but fetching
                                                           its result fails: ``status``
                                                           (500), ``error_type``
``expired_url`` audio downloads                            403, as an expired signed URL
``truncated``  audio downloads                             full Content-Length, half body
``wrong_type`` audio downloads                             200 ``text/html`` error page
=============  ==========================================  ==============================

When a rule fires (each counts its own events, from 1): ``first=N`` the first N;
``nth=N`` only the Nth (``nth=2|5`` several); ``every=N`` every Nth; ``p=F`` with
probability F (seeded: the emulator's ``--seed``); no selector: always.
Options: ``retry_after=S`` (429, default 1), ``seconds=S`` (slow_queue),
``route=R`` (status kinds), ``status=NNN`` and ``error_type=T`` (run_error),
``detail=TEXT``.

Example: ``429:first=2,retry_after=1;500:p=0.1;503:nth=3;run_error:nth=1``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

NAMED_KINDS = ("slow_queue", "run_error", "expired_url", "truncated", "wrong_type")
ROUTES = ("submit", "status", "result", "cancel")
SELECTORS = ("first", "nth", "every", "p")
OPTIONS = {
    "http": ("route", "retry_after", "detail", "error_type"),
    "slow_queue": ("seconds",),
    "run_error": ("status", "error_type", "detail"),
    "expired_url": (),
    "truncated": (),
    "wrong_type": (),
}


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed; the message names the bad part."""


@dataclass
class FaultRule:
    kind: str  # "429" … or a named kind
    first: int | None = None
    nth: frozenset[int] | None = None
    every: int | None = None
    p: float | None = None
    options: dict[str, str] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() else None

    @property
    def route(self) -> str:
        return self.options.get("route", "submit")

    def fires(self, rng: random.Random) -> bool:
        """Count one event; True when this rule applies to it."""
        self.seen += 1
        n = self.seen
        if self.first is not None:
            hit = n <= self.first
        elif self.nth is not None:
            hit = n in self.nth
        elif self.every is not None:
            hit = n % self.every == 0
        elif self.p is not None:
            hit = rng.random() < self.p
        else:
            hit = True
        if hit:
            self.fired += 1
        return hit

    def describe(self) -> str:
        sel = (
            f"first={self.first}"
            if self.first is not None
            else f"nth={'|'.join(map(str, sorted(self.nth)))}"
            if self.nth is not None
            else f"every={self.every}"
            if self.every is not None
            else f"p={self.p:g}"
            if self.p is not None
            else "always"
        )
        opts = "".join(f",{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.kind}:{sel}{opts}"


def _positive_int(rule: str, name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise FaultSpecError(f"fault {rule!r}: {name} must be a whole number >= 1, not {value!r}")
    return n


def parse_faults(spec: str | None) -> list[FaultRule]:
    """Parse a fault spec (see the module docstring); an empty spec is no faults."""
    rules: list[FaultRule] = []
    for raw in (spec or "").split(";"):
        part = raw.strip()
        if not part:
            continue
        kind, _, opts = part.partition(":")
        kind = kind.strip()
        if kind.isdigit():
            if not 400 <= int(kind) <= 599:
                raise FaultSpecError(f"fault {part!r}: status must be 400-599")
            allowed = OPTIONS["http"]
        elif kind in NAMED_KINDS:
            allowed = OPTIONS[kind]
        else:
            raise FaultSpecError(
                f"fault {part!r}: unknown kind {kind!r} (an HTTP status 400-599, or one of "
                f"{', '.join(NAMED_KINDS)})"
            )
        rule = FaultRule(kind)
        selectors = 0
        for opt in opts.split(","):
            opt = opt.strip()
            if not opt:
                continue
            name, eq, value = opt.partition("=")
            name, value = name.strip(), value.strip()
            if name == "always" and not eq:
                selectors += 1
                continue
            if not eq or not value:
                raise FaultSpecError(f"fault {part!r}: option {opt!r} is not NAME=VALUE")
            if name == "first":
                rule.first = _positive_int(part, name, value)
            elif name == "nth":
                rule.nth = frozenset(_positive_int(part, name, v) for v in value.split("|"))
            elif name == "every":
                rule.every = _positive_int(part, name, value)
            elif name == "p":
                try:
                    rule.p = float(value)
                except ValueError:
                    rule.p = -1.0
                if not 0.0 <= rule.p <= 1.0:
                    raise FaultSpecError(f"fault {part!r}: p must be from 0 to 1")
            elif name in allowed:
                if name == "route" and value not in ROUTES:
                    raise FaultSpecError(
                        f"fault {part!r}: route must be one of {', '.join(ROUTES)}"
                    )
                if name in ("retry_after", "seconds"):
                    try:
                        if float(value) < 0:
                            raise ValueError
                    except ValueError:
                        raise FaultSpecError(
                            f"fault {part!r}: {name} must be a number >= 0"
                        ) from None
                if name == "status" and not (value.isdigit() and 400 <= int(value) <= 599):
                    raise FaultSpecError(f"fault {part!r}: status must be 400-599")
                rule.options[name] = value
            else:
                known = ", ".join((*SELECTORS, *allowed))
                raise FaultSpecError(
                    f"fault {part!r}: unknown option {name!r} for {kind} (known: {known})"
                )
            if name in SELECTORS:
                selectors += 1
        if selectors > 1:
            raise FaultSpecError(f"fault {part!r}: use one of first/nth/every/p, not several")
        rules.append(rule)
    return rules
