"""Token buckets for per-connection message limits (pure: the caller passes the clock)."""

from __future__ import annotations

from enum import Enum


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; starts full."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are that many; False (and nothing taken) otherwise."""
        elapsed = now - self.updated
        if elapsed > 0:
            tokens = self.tokens + elapsed * self.rate
            self.tokens = tokens if tokens < self.burst else self.burst
            self.updated = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False


class Verdict(Enum):
    OK = "ok"
    LIMITED = "limited"  # refuse this message with ``rate_limited``; keep the connection
    FLOOD = "flood"  # sustained abuse: close the connection (1008)


class MessageLimiter:
    """A message bucket, and a penalty bucket that sustained refusals drain.

    Every message takes a token from the message bucket (``rate_per_s``, ``burst``). A
    message refused for want of a token takes one from the penalty bucket (``burst``
    deep, refilling at a quarter of the rate): a short burst over the limit only earns
    ``rate_limited`` errors; a client that keeps sending well over its rate empties the
    penalty bucket and is cut off.
    """

    __slots__ = ("messages", "penalty")

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self.messages = TokenBucket(rate_per_s, burst, now)
        self.penalty = TokenBucket(rate_per_s / 4.0, burst, now)

    def check(self, now: float) -> Verdict:
        if self.messages.take(now):
            return Verdict.OK
        if self.penalty.take(now):
            return Verdict.LIMITED
        return Verdict.FLOOD
