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

    Every message takes a token from the message bucket (``rate_per_s``, ``burst``), and
    one more per 2 KiB it holds (``cost``: decoding a big message costs the server more). A
    message refused for want of a token takes one from the penalty bucket (``burst``
    deep, refilling at a quarter of the rate): a short burst over the limit only earns
    ``rate_limited`` errors; a client that keeps sending well over its rate empties the
    penalty bucket and is cut off.

    One per connection, so both buckets are kept inline (two TokenBucket objects would
    cost a few hundred bytes more per connection).
    """

    __slots__ = ("burst", "penalty", "penalty_at", "rate", "tokens", "updated")

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a message limiter needs rate > 0 and burst >= 1")
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self.tokens = self.penalty = self.burst
        self.updated = self.penalty_at = now

    def check(self, now: float, cost: float = 1.0) -> Verdict:
        """Take ``cost`` tokens (a message costs more the bigger it is: the server's work
        grows with its size). A cost above the burst is taken as the burst."""
        elapsed = now - self.updated
        tokens = self.tokens
        if elapsed > 0:
            tokens += elapsed * self.rate
            if tokens > self.burst:
                tokens = self.burst
            self.updated = now
        if cost > self.burst:
            cost = self.burst
        if tokens >= cost:
            self.tokens = tokens - cost
            return Verdict.OK
        self.tokens = tokens
        penalty = self.penalty
        elapsed = now - self.penalty_at
        if elapsed > 0:
            penalty += elapsed * self.rate / 4.0
            if penalty > self.burst:
                penalty = self.burst
            self.penalty_at = now
        if penalty >= 1.0:
            self.penalty = penalty - 1.0
            return Verdict.LIMITED
        self.penalty = penalty
        return Verdict.FLOOD
