"""The cost ledger's entries: which track, generator and endpoint each cost came from.

A cache's ledger maps an entry name to dollars (``Cache.record_cost`` / ``ledger``).
The pipeline names each entry ``<cache key>|<generator>|<endpoint>|<production|test>``,
so that money spent against an emulator or any other non-production endpoint (a
``segue fal-emulator``, a staging host) is shown apart and never counts toward a budget
for the real endpoint. An entry named by its cache key alone (written before entries
named their endpoint) is production money of an unknown generator.

A stem separator's costs are entries of their own, named the same way after the
separator (``<cache key>|demucs|<host>/fal-ai/demucs|production``).

A generator (or separator) says where its costs go with an optional ``cost_endpoint() -> (endpoint,
production)``; without one, its costs are production costs at an unnamed endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEP = "|"
PRODUCTION, TEST = "production", "test"


@dataclass(frozen=True)
class LedgerEntry:
    key: str  # the cache key of the track the money was spent on
    generator: str | None  # None: an entry from before entries named it
    endpoint: str
    production: bool
    usd: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "generator": self.generator,
            "endpoint": self.endpoint,
            "production": self.production,
            "usd": round(self.usd, 6),
        }


def cost_endpoint(generator: Any) -> tuple[str, bool]:
    """``(endpoint, production)`` of ``generator``'s costs."""
    method = getattr(generator, "cost_endpoint", None)
    if method is None:
        return "", True
    endpoint, production = method()
    return str(endpoint).replace(SEP, "/"), bool(production)


def entry_name(cache_key: str, generator: Any) -> str:
    """The ledger entry for money ``generator`` spent on ``cache_key``."""
    endpoint, production = cost_endpoint(generator)
    kind = PRODUCTION if production else TEST
    return SEP.join((cache_key, generator.name, endpoint, kind))


def entries(ledger: dict[str, float]) -> list[LedgerEntry]:
    """A cache's ledger, entry by entry (sorted by name)."""
    out = []
    for name, usd in sorted(ledger.items()):
        parts = name.split(SEP)
        if len(parts) == 4:
            key, generator, endpoint, kind = parts
            out.append(LedgerEntry(key, generator, endpoint, kind != TEST, usd))
        else:
            out.append(LedgerEntry(name, None, "", True, usd))
    return out


def spent_for(ledger: dict[str, float], *spenders: Any) -> float:
    """What counts toward the budget of ``spenders`` (a generator, and the stem separator
    working on its songs): production money when one of them is a production endpoint;
    for non-production ones, what was spent against those same endpoints."""
    ends = [cost_endpoint(s) for s in spenders]
    production = any(p for _, p in ends)
    tests = {endpoint for endpoint, p in ends if not p}
    return float(
        sum(
            e.usd
            for e in entries(ledger)
            if (e.production and production) or (not e.production and e.endpoint in tests)
        )
    )
