"""The pregeneration engine: from planned requests to stored, recorded tracks.

One :class:`Pipeline` serves ``segue pregen`` (``run``), ``segue serve`` (``stored``,
``tracks_for``, and ``ensure`` for on-demand generation) and the tests. For each request:

1. skip it if the cache has its Track and the primary sink has the file;
2. take the key lock (a file lock for the disk cache, a Redis lock for redis), then look
   again: another process may have finished it meanwhile;
3. check the budget; wait for a concurrency slot; call the generator under a deadline,
   retrying transient failures (exponential backoff, full jitter, Retry-After honoured),
   never permanent ones; record the cost in the ledger as soon as the call returns;
4. finish it (``finishing``): decode the output (any format) once, run the
   ``segue_process_track`` chain on the decoded audio, encode once to the request's format,
   hash it, decode it once to verify (corrupt output is a transient failure, never stored);
5. put it in the primary sink then the replicas, record the Track, notify
   ``segue_track_stored``.

A file in storage is only ever the complete, verified output (sinks write a temp file and
rename), and the cache records a Track only after its file is stored, so killing the
process at any moment loses at most the work in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from segue.core.cache import Cache
from segue.core.errors import (
    BudgetError,
    ConfigError,
    GenerationError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from segue.core.files import writer_gone
from segue.core.generator import GeneratedAudio, Generator
from segue.core.plugins import Plugins
from segue.core.pregen.finishing import finish
from segue.core.pregen.planning import (
    CACHE_METHODS,
    SINK_METHODS,
    PlannedRequest,
    build_plan,
    instantiate,
    make_generator,
)
from segue.core.pregen.progress import NullReporter, Outcome, PregenSummary, Reporter
from segue.core.request import GenerationRequest
from segue.core.score import PluginChoice, Score
from segue.core.storage import StorageSink
from segue.core.track import Track

log = logging.getLogger("segue.pipeline")

T = TypeVar("T")

DEFAULT_DEADLINE_S = 600.0  # a request that has not returned by then is hung
DEFAULT_BACKOFF_BASE_S = 1.0
DEFAULT_BACKOFF_CAP_S = 60.0
SINK_PUT_ATTEMPTS = 3
_EPS = 1e-9

__all__ = [
    "Pipeline",
    "PlannedRequest",
    "PregenSummary",
    "build_cache",
    "build_sinks",
    "track_present",
]


# --- building the score's cache and sinks ------------------------------------------------


def build_cache(score: Score, plugins: Plugins) -> Cache:
    choice = score.cache or PluginChoice("disk")
    return instantiate(score, plugins.caches, choice, CACHE_METHODS, "cache")


def build_sinks(score: Score, plugins: Plugins) -> list[StorageSink]:
    """The primary sink first, then the replicas."""
    choices = list(score.storage) or [PluginChoice("local")]
    sinks = []
    for i, choice in enumerate(choices):
        label = "storage" if len(choices) == 1 else f"storage[{i}]"
        sinks.append(instantiate(score, plugins.sinks, choice, SINK_METHODS, label))
    return sinks


def track_present(sink: StorageSink, track: Track) -> bool:
    """Is ``track``'s file in ``sink`` (with the recorded size, when the sink is local)?"""
    path = sink.local_path(track.filename)
    if path is not None:
        try:
            size = os.stat(path).st_size
        except OSError:
            return False
        # A size mismatch means the file is not the one recorded: regenerate.
        return not track.bytes or size == track.bytes
    return sink.exists(track.filename)


async def refresh_sink(sink: StorageSink, filename: str) -> None:
    """Let a remote sink look ``filename`` up (another server may have stored it).

    Sinks whose ``exists`` answers from the storage itself (local folders) have no
    ``refresh``; remote ones answer ``exists`` from what they know, and learn here.
    """
    refresh = getattr(sink, "refresh", None)
    if refresh is not None:
        try:
            await refresh(filename)
        except GenerationError as exc:  # the put that follows fails, or works, and says so
            log.warning("storage %s: cannot look up %s: %s", sink.name, filename, exc)


def with_public_url(sink: StorageSink, track: Track) -> Track:
    """``track`` with the URL clients fetch it from, when the sink serves it elsewhere."""
    public_url = getattr(sink, "public_url", None)
    url = public_url(track.filename) if public_url is not None else None
    if url and url != track.public_url:
        return track.replace(public_url=url)
    return track


class _BudgetStop(GenerationError):
    """No new request may start: it could take spending past the budget."""


async def _in_thread(fn: Callable[..., T], *args: Any, executor: Executor | None = None) -> T:
    """Run blocking work in a thread; on cancellation, let it finish before unwinding.

    The work writes into a folder that the caller removes when it unwinds, so it must not
    outlive the caller.
    """
    future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


async def _remove_tree(path: Path) -> None:
    """Remove a work folder off the event loop (unlinks can take milliseconds each)."""
    try:
        await asyncio.to_thread(shutil.rmtree, path, True)
    except asyncio.CancelledError:
        shutil.rmtree(path, ignore_errors=True)
        raise


class Pipeline:
    """Generate what is missing; look up what is stored. See the module docstring."""

    def __init__(
        self,
        score: Score,
        plugins: Plugins,
        *,
        generator: str | None = None,
        concurrency: int | None = None,
        budget_usd: float | None = None,
        reporter: Reporter | None = None,
        deadline_s: float | None = None,
        max_attempts: int = 5,
        backoff_base_s: float = DEFAULT_BACKOFF_BASE_S,
        backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
        max_retry_after_s: float = 3600.0,
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
        if budget_usd is not None and budget_usd < 0:
            raise ConfigError(f"budget must not be negative, not {budget_usd}")
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {max_attempts}")
        self.score = score
        self.plugins = plugins
        self.generator: Generator = make_generator(score, plugins, generator)
        self.cache: Cache = build_cache(score, plugins)
        self.sinks: list[StorageSink] = build_sinks(score, plugins)
        self.primary = self.sinks[0]
        self.concurrency = int(concurrency or getattr(self.generator, "concurrency", 0) or 1)
        self.budget_usd = score.budget_usd if budget_usd is None else budget_usd
        self.reporter: Reporter = reporter or NullReporter()
        self.deadline_s = float(
            deadline_s or getattr(self.generator, "deadline_s", None) or DEFAULT_DEADLINE_S
        )
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_retry_after_s = max_retry_after_s
        self.work_root = score.state_dir / "work"
        self.work_root.mkdir(parents=True, exist_ok=True)
        self._clean_stale_work()
        self._plan: list[PlannedRequest] | None = None
        self._by_mood: dict[str, list[PlannedRequest]] | None = None
        self._inflight: dict[str, asyncio.Task[tuple[Track, str]]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._reserved_usd = 0.0  # estimates of generator calls in flight in this process
        self._spent_run_usd = 0.0
        self._paused_until = 0.0  # monotonic; set by a rate limit, respected by every worker
        self._attempts: dict[str, int] = {}
        self._spent_per_key: dict[str, float] = {}
        self._workers: dict[str, asyncio.Task[Outcome]] = {}
        self._stop_requested = False
        self._pool: ThreadPoolExecutor | None = None
        self._seen: dict[str, tuple[Track, tuple[int, int, int]]] = {}
        # Work folders made by this pipeline and not yet removed (see remove_work()).
        self._workdirs: set[Path] = set()

    # --- lookups (synchronous, cheap: the serving path) ----------------------------------

    def plan(self) -> list[PlannedRequest]:
        """Every request after the prompt transformers, with its estimated cost (cached)."""
        if self._plan is None:
            try:
                self._plan = build_plan(self.score, self.plugins, self.generator)
            except PermanentError as exc:
                raise ConfigError(f"generator {self.generator.name}: {exc}") from None
            by_mood: dict[str, list[PlannedRequest]] = {}
            for p in self._plan:
                by_mood.setdefault(p.request.mood, []).append(p)
            self._by_mood = by_mood
        return self._plan

    def stored(self, request: GenerationRequest) -> Track | None:
        """The request's Track if it is recorded AND its file is in the primary sink.

        On the serving path, so cheap: with a local primary, one ``stat`` and, while the file
        is the one seen before (same inode, mtime and size; sinks replace files by rename),
        the Track found then. A file replaced or removed sends it back to the cache.
        """
        key = request.cache_key
        path = self.primary.local_path(f"{key}.{request.output_format}")
        if path is None:  # not there, or a remote sink: ask the sink itself
            self._seen.pop(key, None)
            track = self.cache.get(key)
            if track is None or not self.primary.exists(track.filename):
                return None
            return with_public_url(self.primary, track)
        try:
            st = os.stat(path)
        except OSError:
            self._seen.pop(key, None)
            return None
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        seen = self._seen.get(key)
        if seen is not None and seen[1] == signature:
            return seen[0]
        track = self.cache.get(key)
        # A size other than the recorded one means the file is not the one recorded.
        if track is None or (track.bytes and track.bytes != st.st_size):
            self._seen.pop(key, None)
            return None
        self._seen[key] = (track, signature)
        return track

    def tracks_for(self, mood: str) -> list[Track]:
        """Stored tracks of ``mood``'s planned requests, in variant order."""
        self.plan()
        assert self._by_mood is not None
        out = []
        for p in self._by_mood.get(mood, ()):
            track = self.stored(p.request)
            if track is None:
                continue
            if track.mood != mood or track.variant != p.request.variant:
                # Same audio planned under another mood (keys ignore the mood's name).
                track = track.replace(mood=mood, variant=p.request.variant)
            out.append(track)
        return out

    def ledger_total(self) -> float:
        return float(sum(self.cache.ledger().values()))

    # --- generation ------------------------------------------------------------------------

    async def ensure(self, request: GenerationRequest) -> Track:
        """The request's stored Track, generating it if missing (never twice per key)."""
        track = self.stored(request)
        if track is not None:
            return track
        self._preflight()
        planned = PlannedRequest(request, self.generator.estimate_cost(request))
        track, _state = await asyncio.shield(self._task_for(planned))
        return track

    def _preflight(self) -> None:
        """The generator's own readiness check (credentials…), before any work is started."""
        preflight = getattr(self.generator, "preflight", None)
        if preflight is not None:
            preflight()

    def _task_for(self, planned: PlannedRequest) -> asyncio.Task[tuple[Track, str]]:
        key = planned.request.cache_key
        task = self._inflight.get(key)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._produce(planned))
            self._inflight[key] = task
            task.add_done_callback(lambda t, key=key: self._forget(key, t))
        return task

    def _forget(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here; callers get it from their own await

    async def run(
        self, planned: Iterable[PlannedRequest] | None = None, *, dry_run: bool = False
    ) -> PregenSummary:
        """Generate every planned request that is missing; return what became of each.

        Raises BudgetError (before doing anything) when the estimate for what is missing plus
        what the ledger shows as spent could exceed the budget.
        """
        started = time.monotonic()
        items = list(self.plan() if planned is None else planned)
        unique: dict[str, PlannedRequest] = {}
        for p in items:
            unique.setdefault(p.request.cache_key, p)
        missing = [p for p in unique.values() if self.stored(p.request) is None]
        estimate = sum(p.cost_usd for p in missing)
        ledger = self.ledger_total()
        summary = PregenSummary(
            budget_usd=self.budget_usd, estimate_usd=estimate, ledger_usd=ledger, dry_run=dry_run
        )
        missing_keys = {p.request.cache_key for p in missing}
        if not dry_run:
            self._check_budget_upfront(len(missing), estimate, ledger)
            if missing:
                self._preflight()
        else:
            try:
                self._check_budget_upfront(len(missing), estimate, ledger)
            except BudgetError as exc:
                summary.refused = str(exc)
            for p in items:
                state = "would_generate" if p.request.cache_key in missing_keys else "skipped"
                summary.outcomes.append(
                    Outcome(
                        p.request.cache_key,
                        p.request.mood,
                        p.request.variant,
                        state,
                        estimate_usd=p.cost_usd if state == "would_generate" else 0.0,
                    )
                )
            summary.elapsed_s = time.monotonic() - started
            return summary

        await self._backfill_replicas(
            [p for p in unique.values() if p.request.cache_key not in missing_keys]
        )
        self.reporter.started(items, len(missing), estimate)
        spent_before = self._spent_run_usd
        results: dict[str, Outcome] = {}
        if self._stop_requested:  # stopped before any work started
            self._stop_requested = False
            for p in missing:
                r = p.request
                key = r.cache_key
                results[key] = Outcome(key, r.mood, r.variant, "failed", reason="interrupted")
            missing = []
        workers = {
            p.request.cache_key: asyncio.get_running_loop().create_task(self._outcome(p))
            for p in missing
        }
        self._workers = workers
        try:
            done = await asyncio.gather(*workers.values())
        except asyncio.CancelledError:
            for w in workers.values():
                w.cancel()
            await asyncio.gather(*workers.values(), return_exceptions=True)
            summary.interrupted = True
            summary.spent_usd = self._spent_run_usd - spent_before
            summary.elapsed_s = time.monotonic() - started
            with contextlib.suppress(Exception):  # stop a live display before unwinding
                self.reporter.finished(summary)
            raise
        finally:
            self._workers = {}
        self._stop_requested = False
        for outcome in done:
            results[outcome.key] = outcome
        for p in items:
            if p.request.cache_key in results:
                o = results[p.request.cache_key]
                summary.outcomes.append(
                    dataclasses.replace(o, mood=p.request.mood, variant=p.request.variant)
                )
            else:
                summary.outcomes.append(
                    Outcome(
                        p.request.cache_key,
                        p.request.mood,
                        p.request.variant,
                        "skipped",
                        reason="already stored",
                    )
                )
        summary.interrupted = any(o.reason == "interrupted" for o in summary.failed)
        summary.spent_usd = self._spent_run_usd - spent_before
        summary.ledger_usd = self.ledger_total()
        summary.elapsed_s = time.monotonic() - started
        self.reporter.finished(summary)
        return summary

    def stop(self) -> None:
        """Stop a ``run`` cleanly: cancel what is in flight (it is reported as interrupted).

        Called before a run has started its work, that run starts none.
        """
        self._stop_requested = True
        for worker in list(self._workers.values()):
            worker.cancel()

    def _check_budget_upfront(self, missing: int, estimate: float, ledger: float) -> None:
        if self.budget_usd is None or not missing:
            return
        if ledger + estimate > self.budget_usd + _EPS:
            raise BudgetError(
                f"plan refused: {missing} missing track(s) estimated at ${estimate:.2f} "
                f"+ ${ledger:.2f} already spent (ledger) = ${ledger + estimate:.2f}, "
                f"over the budget of ${self.budget_usd:.2f}"
            )

    async def _outcome(self, planned: PlannedRequest) -> Outcome:
        """Run one request to the end and say what became of it (never raises but Cancelled)."""
        key = planned.request.cache_key
        r = planned.request
        started = time.monotonic()
        outcome = Outcome(key, r.mood, r.variant, "failed", estimate_usd=planned.cost_usd)
        try:
            _track, state = await asyncio.shield(self._task_for(planned))
            outcome.state = state
            if state == "skipped":
                outcome.reason = "stored by another worker"
        except asyncio.CancelledError:
            task = self._inflight.get(key)
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            outcome.reason = "interrupted"
            self.reporter.update(planned, "failed", "interrupted")
        except GenerationError as exc:  # including _BudgetStop
            outcome.reason = str(exc)
            self.reporter.update(planned, "failed", outcome.reason)
        except Exception as exc:  # a plugin's bug must not take the whole run down
            log.exception("request %s (%s) failed", key[:12], r.mood)
            outcome.reason = f"{type(exc).__name__}: {exc}"
            self.reporter.update(planned, "failed", outcome.reason)
        outcome.attempts = self._attempts.pop(key, 0)
        outcome.cost_usd = self._spent_per_key.pop(key, 0.0)
        outcome.seconds = time.monotonic() - started
        return outcome

    def _slots_for_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots = asyncio.Semaphore(self.concurrency)
            self._slots_loop = loop
        return self._slots

    async def _produce(self, planned: PlannedRequest) -> tuple[Track, str]:
        """Make sure one key is stored: ``(track, "stored" | "skipped")``; raise on failure."""
        key = planned.request.cache_key
        request = planned.request
        slots = self._slots_for_loop()
        reporter = self.reporter
        reporter.update(planned, "queued")
        while True:
            await refresh_sink(self.primary, f"{key}.{request.output_format}")
            track = self.stored(request)
            if track is not None:
                reporter.update(planned, "skipped")
                return track, "skipped"
            await slots.acquire()
            holding = True
            try:
                lock = self.cache.lock(key, timeout_s=0)
                try:
                    await lock.__aenter__()
                except TimeoutError:
                    # Another process (or the server) is on it: wait without a slot, then
                    # look again; if it failed, this worker tries.
                    slots.release()
                    holding = False
                    reporter.update(planned, "waiting", "locked by another worker")
                    async with self.cache.lock(key):
                        pass
                    continue
                try:
                    await refresh_sink(self.primary, f"{key}.{request.output_format}")
                    track = self.stored(request)
                    if track is not None:
                        reporter.update(planned, "skipped", "stored by another worker")
                        return track, "skipped"
                    holding = False  # _generate owns the held slot from here on
                    track = await self._generate(planned, slots)
                    return track, "stored"
                finally:
                    await lock.__aexit__(None, None, None)
            finally:
                if holding:
                    slots.release()

    async def _generate(self, planned: PlannedRequest, slots: asyncio.Semaphore) -> Track:
        """Attempts with retries; enters holding one slot, which it releases."""
        key = planned.request.cache_key
        holding = True
        attempt = 0
        try:
            while True:
                attempt += 1
                self._attempts[key] = attempt
                if not holding:
                    await slots.acquire()
                    holding = True
                await self._respect_pause()
                try:
                    self._reserve_budget(planned)
                    try:
                        self.reporter.update(planned, "generating", f"attempt {attempt}")
                        gen, workdir = await self._call_generator(planned)
                    finally:
                        self._reserved_usd -= planned.cost_usd
                    # The provider's work is done: the slot goes to the next request while
                    # this one is post-processed and stored.
                    slots.release()
                    holding = False
                    # The generation is paid for: once it has returned, finishing (processing,
                    # storing, recording) goes on even if this task is cancelled (Ctrl-C), so
                    # the money is not wasted; the cancellation is honoured afterwards.
                    finish = asyncio.ensure_future(self._finish(planned, gen, workdir))
                    try:
                        return await asyncio.shield(finish)
                    except asyncio.CancelledError:
                        with contextlib.suppress(BaseException):
                            await finish
                        raise
                except PermanentError:
                    raise
                except TransientError as exc:
                    if attempt >= self.max_attempts:
                        raise TransientError(f"gave up after {attempt} attempts: {exc}") from exc
                    delay = self._backoff(attempt, exc)
                    if holding:
                        slots.release()
                        holding = False
                    self.reporter.update(
                        planned, "retrying", f"in {delay:.1f}s after attempt {attempt}: {exc}"
                    )
                    await asyncio.sleep(delay)
        finally:
            if holding:
                slots.release()

    def _backoff(self, attempt: int, exc: TransientError) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]; at least Retry-After."""
        delay = random.uniform(
            0.0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        )
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            retry_after = min(max(0.0, float(exc.retry_after)), self.max_retry_after_s)
            delay = max(delay, retry_after)
            # Every worker holds off: the provider limits the account, not the request.
            self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
        return delay

    async def _respect_pause(self) -> None:
        wait = self._paused_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _reserve_budget(self, planned: PlannedRequest) -> None:
        if self.budget_usd is None:
            self._reserved_usd += planned.cost_usd
            return
        spent = self.ledger_total()
        if spent + self._reserved_usd + planned.cost_usd > self.budget_usd + _EPS:
            raise _BudgetStop(
                f"budget: not started, ${spent:.2f} spent + ${self._reserved_usd:.2f} in flight "
                f"+ ${planned.cost_usd:.2f} could pass the budget of ${self.budget_usd:.2f}"
            )
        self._reserved_usd += planned.cost_usd

    def _new_workdir(self, key: str) -> Path:
        path = self.work_root / f"{os.getpid()}-{key[:16]}-{secrets.token_hex(4)}"
        path.mkdir(parents=True)
        self._workdirs.add(path)
        return path

    def remove_work(self) -> None:
        """Remove every work folder this pipeline made that is still there.

        A cancelled generation's folder is removed at once, but a generator working in a
        thread (``asyncio.to_thread`` cannot be stopped) may write into it, re-creating it,
        until the thread ends: call this once those threads are done (after ``asyncio.run``
        returns, which waits for them), so that a command leaves no work behind.
        """
        for path in list(self._workdirs):
            shutil.rmtree(path, ignore_errors=True)

    def _clean_stale_work(self) -> None:
        """Remove work folders left by processes that are gone (killed mid-run)."""
        for entry in self.work_root.iterdir():
            pid_text = entry.name.split("-", 1)[0]
            if pid_text.isdigit() and writer_gone(Path(entry), int(pid_text)):
                shutil.rmtree(entry, ignore_errors=True)

    async def _call_generator(self, planned: PlannedRequest) -> tuple[GeneratedAudio, Path]:
        key = planned.request.cache_key
        workdir = self._new_workdir(key)
        # Until the generator has returned or raised, a thread of its own may still write
        # into workdir: the folder stays listed for remove_work().
        settled = False
        try:
            try:
                async with asyncio.timeout(self.deadline_s):
                    gen = await self.generator.generate(planned.request, workdir)
                settled = True
            except TimeoutError:
                raise TransientError(
                    f"no result within the {self.deadline_s:g}s deadline"
                ) from None
            except GenerationError:
                settled = True
                raise
            except Exception as exc:  # a generator bug: retrying will not fix it
                settled = True
                raise PermanentError(
                    f"generator {self.generator.name} raised {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(gen, GeneratedAudio):
                raise PermanentError(
                    f"generator {self.generator.name} returned {type(gen).__name__}, "
                    "not GeneratedAudio"
                )
            # Money is spent now, whatever happens next.
            if gen.cost_usd:
                self.cache.record_cost(key, float(gen.cost_usd))
                self._spent_run_usd += float(gen.cost_usd)
                self._spent_per_key[key] = self._spent_per_key.get(key, 0.0) + gen.cost_usd
                self.reporter.spent(self._spent_run_usd)
            return gen, workdir
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            if settled:
                self._workdirs.discard(workdir)
            raise

    async def _finish(self, planned: PlannedRequest, gen: GeneratedAudio, workdir: Path) -> Track:
        """Process, store and record one generated file; the work folder goes either way."""
        try:
            return await self._finish_in(planned, gen, workdir)
        finally:
            await _remove_tree(workdir)
            # The generator has returned, so nothing writes here any more.
            self._workdirs.discard(workdir)

    async def _finish_in(
        self, planned: PlannedRequest, gen: GeneratedAudio, workdir: Path
    ) -> Track:
        self.reporter.update(planned, "processing")
        track, out = await _in_thread(
            finish,
            self.plugins,
            planned,
            gen,
            self.generator,
            workdir,
            executor=self._processing_pool(),
        )
        self.reporter.update(planned, "storing")
        await self._put_all(track, out)
        self.cache.set(track.id, track)
        try:
            self.plugins.pm.hook.segue_track_stored(track=track)
        except Exception:
            log.exception("a segue_track_stored hook failed for %s", track.id[:12])
        self.reporter.update(planned, "stored", f"{track.duration_s:.1f}s ${track.cost_usd:.2f}")
        return track

    def _processing_pool(self) -> ThreadPoolExecutor:
        # Decoding, post-processing and encoding are CPU work: one thread per core. More
        # threads would not go faster, and would starve the event loop of the GIL, delaying
        # the next generator calls (and, in the server, every client's messages).
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="segue-process"
            )
        return self._pool

    async def _put_all(self, track: Track, path: Path) -> None:
        """Primary first (its failure fails the request), then replicas (logged, recorded)."""
        await self._put(self.primary, track, path)
        problems = []
        for sink in self.sinks[1:]:
            try:
                await self._put(sink, track, path)
            except Exception as exc:
                log.warning("replica %s failed for %s: %s", sink.name, track.filename, exc)
                problems.append(f"{sink.name}: {exc}")
        if problems:
            track.extra["replica_errors"] = problems

    async def _put(self, sink: StorageSink, track: Track, path: Path) -> None:
        for attempt in range(1, SINK_PUT_ATTEMPTS + 1):
            try:
                await sink.put(track.filename, path, track.sha256)
                return
            except PermanentError:
                raise  # access denied, no such bucket: asking again will not help
            except (OSError, GenerationError) as exc:
                if attempt == SINK_PUT_ATTEMPTS:
                    raise TransientError(f"storage {sink.name}: {exc}") from exc
                await asyncio.sleep(0.05 * 2**attempt)

    async def _backfill_replicas(self, stored: list[PlannedRequest]) -> None:
        """Copy stored tracks to replicas that lack them (a replica added to the score)."""
        if len(self.sinks) < 2:
            return
        for p in stored:
            track = self.cache.get(p.request.cache_key)
            if track is None:
                continue
            src = self.primary.local_path(track.filename)
            if src is None:
                continue
            for sink in self.sinks[1:]:
                await refresh_sink(sink, track.filename)
                if not sink.exists(track.filename):
                    try:
                        await sink.put(track.filename, src, track.sha256)
                    except Exception as exc:
                        log.warning(
                            "replica %s backfill of %s failed: %s", sink.name, track.filename, exc
                        )

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.generator.aclose()
        for sink in self.sinks:
            closer = getattr(sink, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        self.cache.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.remove_work()
