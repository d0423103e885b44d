"""Scheduling generator calls: concurrency slots, retries with backoff, deadlines, the budget.

A :class:`Scheduler` runs one request's attempts: each waits for a concurrency slot and
for any rate-limit pause, reserves its estimated cost against the budget, and calls the
generator under a deadline. A transient failure is retried with exponential backoff and
full jitter (at least the provider's Retry-After, which pauses every worker: the provider
limits the account, not the request); a permanent one never is. Once a generation has
returned, its slot goes to the next request, and finishing it is shielded from
cancellation: the track is paid for.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from segue.core.errors import (
    BudgetError,
    ConfigError,
    GenerationError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from segue.core.pregen.planning import PlannedRequest
from segue.core.pregen.progress import Reporter

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_DEADLINE_S = 600.0  # a request that has not returned by then is hung
DEFAULT_BACKOFF_BASE_S = 1.0
DEFAULT_BACKOFF_CAP_S = 60.0
_EPS = 1e-9

__all__ = [
    "DEFAULT_BACKOFF_BASE_S",
    "DEFAULT_BACKOFF_CAP_S",
    "DEFAULT_DEADLINE_S",
    "Budget",
    "BudgetStop",
    "DeadlineExceeded",
    "RetryPolicy",
    "Scheduler",
    "with_deadline",
]


class DeadlineExceeded(TransientError):
    """The call had not returned by its deadline (it may still be running in a thread)."""


class BudgetStop(GenerationError):
    """No new request may start: it could take spending past the budget."""


class Budget:
    """The budget check before a run, and the reservation of each call's estimate.

    ``ledger`` reads what is recorded as spent (every process sharing the cache); the
    estimates of calls in flight are known to this process only.
    """

    def __init__(self, budget_usd: float | None, ledger: Callable[[], float]) -> None:
        if budget_usd is not None and budget_usd < 0:
            raise ConfigError(f"budget must not be negative, not {budget_usd}")
        self.budget_usd = budget_usd
        self.ledger = ledger
        self.reserved_usd = 0.0  # estimates of generator calls in flight in this process

    def check_upfront(self, missing: int, estimate: float, ledger: float) -> None:
        """Refuse a plan whose estimate, with what is spent, could pass the budget."""
        if self.budget_usd is None or not missing:
            return
        if ledger + estimate > self.budget_usd + _EPS:
            raise BudgetError(
                f"plan refused: {missing} missing track(s) estimated at ${estimate:.2f} "
                f"+ ${ledger:.2f} already spent (ledger) = ${ledger + estimate:.2f}, "
                f"over the budget of ${self.budget_usd:.2f}"
            )

    def reserve(self, cost_usd: float) -> None:
        """Hold ``cost_usd`` for a call about to start; BudgetStop if it could pass the budget."""
        if self.budget_usd is not None:
            spent = self.ledger()
            if spent + self.reserved_usd + cost_usd > self.budget_usd + _EPS:
                raise BudgetStop(
                    f"budget: not started, ${spent:.2f} spent + ${self.reserved_usd:.2f} in "
                    f"flight + ${cost_usd:.2f} could pass the budget of ${self.budget_usd:.2f}"
                )
        self.reserved_usd += cost_usd

    def release(self, cost_usd: float) -> None:
        """The call has returned (its real cost is in the ledger now) or failed."""
        self.reserved_usd -= cost_usd


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = DEFAULT_BACKOFF_BASE_S
    cap_s: float = DEFAULT_BACKOFF_CAP_S
    max_retry_after_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {self.max_attempts}")

    def retry_after(self, exc: TransientError) -> float | None:
        """The provider's Retry-After, within bounds; None when it gave none."""
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(max(0.0, float(exc.retry_after)), self.max_retry_after_s)
        return None

    def delay(self, attempt: int, exc: TransientError) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]; at least Retry-After."""
        delay = random.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))
        retry_after = self.retry_after(exc)
        return delay if retry_after is None else max(delay, retry_after)


async def with_deadline(call: Awaitable[T], deadline_s: float) -> T:
    """``await call``; DeadlineExceeded (transient) when it has not returned in ``deadline_s``."""
    try:
        async with asyncio.timeout(deadline_s):
            return await call
    except TimeoutError:
        raise DeadlineExceeded(f"no result within the {deadline_s:g}s deadline") from None


class Scheduler:
    """Concurrency slots, the rate-limit pause, retries and the budget, for one pipeline."""

    def __init__(self, concurrency: int, retry: RetryPolicy, budget: Budget) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
        self.concurrency = concurrency
        self.retry = retry
        self.budget = budget
        self.attempts: dict[str, int] = {}  # per key, the attempt under way (or last made)
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._paused_until = 0.0  # monotonic; set by a rate limit, respected by every worker

    def slots(self) -> asyncio.Semaphore:
        """The concurrency slots of the running event loop (a new loop gets its own)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots = asyncio.Semaphore(self.concurrency)
            self._slots_loop = loop
        return self._slots

    async def run(
        self,
        planned: PlannedRequest,
        call: Callable[[PlannedRequest], Awaitable[R]],
        finish: Callable[[PlannedRequest, R], Awaitable[T]],
        reporter: Reporter,
    ) -> T:
        """Attempts of ``call`` with retries, then ``finish`` of what it returned.

        Enters holding one slot of :meth:`slots`, which it releases. ``call`` runs inside
        the slot and the budget reservation; ``finish`` outside the slot, and to its end
        even if this task is cancelled (the cancellation is honoured afterwards).
        """
        key = planned.request.cache_key
        slots = self.slots()
        holding = True
        attempt = 0
        try:
            while True:
                attempt += 1
                self.attempts[key] = attempt
                if not holding:
                    await slots.acquire()
                    holding = True
                await self._respect_pause()
                try:
                    self.budget.reserve(planned.cost_usd)
                    try:
                        reporter.update(planned, "generating", f"attempt {attempt}")
                        result = await call(planned)
                    finally:
                        self.budget.release(planned.cost_usd)
                    # The provider's work is done: the slot goes to the next request while
                    # this one is finished.
                    slots.release()
                    holding = False
                    # The generation is paid for: finishing goes on even if this task is
                    # cancelled (Ctrl-C), so the money is not wasted.
                    finishing = asyncio.ensure_future(finish(planned, result))
                    try:
                        return await asyncio.shield(finishing)
                    except asyncio.CancelledError:
                        with contextlib.suppress(BaseException):
                            await finishing
                        raise
                except PermanentError:
                    raise
                except TransientError as exc:
                    if attempt >= self.retry.max_attempts:
                        raise TransientError(f"gave up after {attempt} attempts: {exc}") from exc
                    delay = self._backoff(attempt, exc)
                    if holding:
                        slots.release()
                        holding = False
                    reporter.update(
                        planned, "retrying", f"in {delay:.1f}s after attempt {attempt}: {exc}"
                    )
                    await asyncio.sleep(delay)
        finally:
            if holding:
                slots.release()

    def _backoff(self, attempt: int, exc: TransientError) -> float:
        retry_after = self.retry.retry_after(exc)
        if retry_after is not None:
            # Every worker holds off: the provider limits the account, not the request.
            self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
        return self.retry.delay(attempt, exc)

    async def _respect_pause(self) -> None:
        wait = self._paused_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
