"""The pregeneration engine: from planned requests to stored, recorded tracks.

One :class:`Pipeline` serves ``segue pregen`` (``run``), ``segue serve`` (``stored``,
``tracks_for``, and ``ensure`` for on-demand generation) and the tests. For each request:

1. skip it if the cache has its Track and the primary sink has the file;
2. take the key lock (a file lock for the disk cache, a Redis lock for redis), then look
   again: another process may have finished it meanwhile;
3. check the budget; wait for a concurrency slot; call the generator under a deadline,
   retrying transient failures (exponential backoff, full jitter, Retry-After honoured),
   never permanent ones (:mod:`~segue.core.pregen.scheduling`); record the cost in the
   ledger as soon as the call returns;
4. finish it (:mod:`~segue.core.pregen.finishing`): decode the output (any format) once, run the
   ``segue_process_track`` chain on the decoded audio, encode once to the request's format,
   hash it, decode it once to verify (corrupt output is a transient failure, never stored);
5. put it in the primary sink then the replicas (:mod:`~segue.core.pregen.sinks`), record
   the Track, notify ``segue_track_stored``.

Each attempt works in a folder of its own (:mod:`~segue.core.pregen.workdirs`).

A file in storage is only ever the complete, verified output (sinks write a temp file and
rename), and the cache records a Track only after its file is stored, so killing the
process at any moment loses at most the work in flight.

Paid work is never redone. A file that was generated but could not be stored (a full or
read-only disk, a sink that refuses it, a cache that cannot record it) is a
``StorageError``, never retried by calling the generator again: the file and its Track are
kept in ``.segue/unstored/`` and stored by the next attempt or the next run, which look
there before generating. A cost the cache cannot record is kept in
``.segue/unstored/ledger.jsonl`` and recorded by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from segue.core import audio
from segue.core.cache import Cache
from segue.core.errors import (
    BudgetError,
    ConfigError,
    GenerationError,
    PermanentError,
    StorageError,
    TransientError,
    error_line,
)
from segue.core.generator import GeneratedAudio, Generator
from segue.core.ledger import entry_name, spent_for
from segue.core.plugins import Plugins
from segue.core.pregen.finishing import decode_output, finish, in_thread, processing_pool
from segue.core.pregen.headstart import HeadStart
from segue.core.pregen.planning import (
    CACHE_METHODS,
    PlannedRequest,
    build_plan,
    instantiate,
    make_generator,
    make_separator,
)
from segue.core.pregen.progress import NullReporter, Outcome, PregenSummary, Reporter
from segue.core.pregen.scheduling import (
    DEFAULT_BACKOFF_BASE_S,
    DEFAULT_BACKOFF_CAP_S,
    DEFAULT_DEADLINE_S,
    Budget,
    DeadlineExceeded,
    RetryPolicy,
    Scheduler,
    with_deadline,
)
from segue.core.pregen.sinks import (
    backfill_replicas,
    build_sinks,
    close_sinks,
    put_all,
    refresh_sink,
    storage_problem,
    with_public_url,
)
from segue.core.pregen.workdirs import WorkFolders
from segue.core.request import GenerationRequest
from segue.core.score import PluginChoice, Score
from segue.core.separator import SeparatedStems, StemSeparator, fit_to_mix
from segue.core.storage import StorageSink
from segue.core.track import Track

log = logging.getLogger("segue.pipeline")

__all__ = ["Pipeline", "PlannedRequest", "PregenSummary", "build_cache"]


# --- building the score's cache and sinks ------------------------------------------------


def build_cache(score: Score, plugins: Plugins) -> Cache:
    choice = score.cache or PluginChoice("disk")
    return instantiate(score, plugins.caches, choice, CACHE_METHODS, "cache")


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
        # Checked before anything is made: bad options are refused before any I/O.
        self.budget = Budget(
            score.budget_usd if budget_usd is None else budget_usd, self.ledger_total
        )
        retry = RetryPolicy(max_attempts, backoff_base_s, backoff_cap_s, max_retry_after_s)
        self.score = score
        self.plugins = plugins
        self.generator: Generator = make_generator(score, plugins, generator)
        # Splits songs into the moods' layers when the generator renders no stems.
        self.separator: StemSeparator | None = make_separator(score, plugins, self.generator)
        self.cache: Cache = build_cache(score, plugins)
        self.sinks: list[StorageSink] = build_sinks(score, plugins)
        self.primary = self.sinks[0]
        self.reporter: Reporter = reporter or NullReporter()
        self.scheduler = Scheduler(
            int(concurrency or getattr(self.generator, "concurrency", 0) or 1), retry, self.budget
        )
        self.deadline_s = float(
            deadline_s or getattr(self.generator, "deadline_s", None) or DEFAULT_DEADLINE_S
        )
        self.work = WorkFolders(score.state_dir / "work")
        # Paid files that could not be stored, and costs the cache could not record.
        self.unstored_root = score.state_dir / "unstored"
        self._unrecorded: dict[str, float] = {}
        self._plan: list[PlannedRequest] | None = None
        self._by_mood: dict[str, list[PlannedRequest]] | None = None
        self._inflight: dict[str, asyncio.Task[tuple[Track, str]]] = {}
        self._spent_run_usd = 0.0
        self._spent_per_key: dict[str, float] = {}
        self._workers: dict[str, asyncio.Task[Outcome]] = {}
        self._stop_requested = False
        self._pool: ThreadPoolExecutor | None = None
        self._seen: dict[str, tuple[Track, tuple[int, int, int]]] = {}
        # `segue serve`'s first track, made by a worker process (pregen.headstart).
        self.head_start: HeadStart | None = None
        self.notify_stored = True  # False in that worker: the server notifies, once
        # A one-shot command (`segue pregen`): once every request left is being generated,
        # the generator's optional ``idle()`` lets go of what it keeps for later requests.
        self.idle_when_done = False
        self._not_started: set[str] = set()

    @property
    def concurrency(self) -> int:
        return self.scheduler.concurrency

    @property
    def budget_usd(self) -> float | None:
        return self.budget.budget_usd

    # --- lookups (synchronous, cheap: the serving path) ----------------------------------

    def plan(self) -> list[PlannedRequest]:
        """Every request after the prompt transformers, with its estimated cost (cached)."""
        if self._plan is None:
            try:
                self._plan = build_plan(self.score, self.plugins, self.generator, self.separator)
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
        """Money the ledger counts toward this generator's budget (segue.core.ledger):
        spending against an emulator never counts toward the real endpoint's."""
        unrecorded = sum(self._unrecorded.values())  # costs the cache could not take
        spenders = [self.generator] if self.separator is None else [self.generator, self.separator]
        return spent_for(self.cache.ledger(), *spenders) + unrecorded

    # --- generation ------------------------------------------------------------------------

    async def ensure(self, request: GenerationRequest) -> Track:
        """The request's stored Track, generating it if missing (never twice per key)."""
        track = self.stored(request)
        if track is not None:
            return track
        self._preflight()
        planned = self._planned(request)
        track, _state = await asyncio.shield(self._task_for(planned))
        return track

    def _missing(
        self, items: Iterable[PlannedRequest]
    ) -> tuple[dict[str, PlannedRequest], list[PlannedRequest], float]:
        """Each track once (by cache key), those not stored, and what they would cost."""
        unique: dict[str, PlannedRequest] = {}
        for p in items:
            unique.setdefault(p.request.cache_key, p)
        missing = [p for p in unique.values() if self.stored(p.request) is None]
        # A kept file (generated, not yet stored) costs nothing more; a kept song whose
        # separation failed costs its separation only.
        return unique, missing, sum(self._still_to_pay(p) for p in missing)

    def budget_refusal(self) -> str | None:
        """Why ``run`` would refuse the plan for its budget (``segue plan`` says it too),
        or None: the same figures and words as the BudgetError ``run`` raises."""
        _unique, missing, estimate = self._missing(self.plan())
        try:
            self.budget.check_upfront(len(missing), estimate, self.ledger_total())
        except BudgetError as exc:
            return str(exc)
        return None

    def _still_to_pay(self, planned: PlannedRequest) -> float:
        key = planned.request.cache_key
        if self._kept(key) is not None:
            return 0.0
        if (self.unstored_root / f"{key}.generated.json").is_file():
            return planned.separation_usd
        return planned.cost_usd

    def _planned(self, request: GenerationRequest) -> PlannedRequest:
        """``request`` with its estimate (its stem separation's too)."""
        separation = 0.0
        if self.separator is not None and request.layers:
            separation = float(self.separator.estimate_cost(request))
        cost = float(self.generator.estimate_cost(request))
        return PlannedRequest(request, cost + separation, separation)

    def _preflight(self) -> None:
        """The generator's (and separator's) readiness check (credentials…), before any work."""
        for spender in (self.generator, self.separator):
            preflight = getattr(spender, "preflight", None)
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
        self._record_unrecorded()
        items = list(self.plan() if planned is None else planned)
        unique, missing, estimate = self._missing(items)
        ledger = self.ledger_total()
        summary = PregenSummary(
            budget_usd=self.budget_usd, estimate_usd=estimate, ledger_usd=ledger, dry_run=dry_run
        )
        missing_keys = {p.request.cache_key for p in missing}
        if not dry_run:
            self.budget.check_upfront(len(missing), estimate, ledger)
            if missing:
                self._preflight()
        else:
            try:
                self.budget.check_upfront(len(missing), estimate, ledger)
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

        await backfill_replicas(self.sinks, self.cache, unique.keys() - missing_keys)
        self.reporter.started(items, len(missing), estimate)
        spent_before = self._spent_run_usd
        results: dict[str, Outcome] = {}
        if self._stop_requested:  # stopped before any work started
            self._stop_requested = False
            for p in missing:
                r = p.request
                key = r.cache_key
                results[key] = Outcome(key, r.mood, r.variant, "interrupted", reason="not started")
            missing = []
        self._not_started = {p.request.cache_key for p in missing}
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
        stopped = self._stop_requested
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
        summary.interrupted = stopped or bool(summary.unfinished)
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

    async def _outcome(self, planned: PlannedRequest) -> Outcome:
        """Run one request to the end and say what became of it (never raises but Cancelled)."""
        key = planned.request.cache_key
        r = planned.request
        started = time.monotonic()
        outcome = Outcome(key, r.mood, r.variant, "failed", estimate_usd=planned.cost_usd)
        task = self._task_for(planned)
        try:
            _track, state = await asyncio.shield(task)
            outcome.state = state
            if state == "skipped":
                outcome.reason = "stored by another worker"
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            if not task.cancelled() and task.exception() is None:
                outcome.state = task.result()[1]
            elif self.stored(r) is not None:
                # Paid for and past its generator: it was finished and stored regardless
                # (the cancellation is honoured after storing), and is counted once, as
                # what it is.
                outcome.state = "stored"
            else:
                outcome.state, outcome.reason = "interrupted", "stopped before it was stored"
                self.reporter.update(planned, "interrupted", outcome.reason)
        except GenerationError as exc:  # including BudgetStop
            outcome.reason = str(exc)
            self.reporter.update(planned, "failed", outcome.reason)
        except Exception as exc:  # a plugin's bug must not take the whole run down
            log.exception("request %s (%s) failed", key[:12], r.mood)
            outcome.reason = f"{type(exc).__name__}: {exc}"
            self.reporter.update(planned, "failed", outcome.reason)
        self._started(key)
        outcome.attempts = self.scheduler.attempts.pop(key, 0)
        outcome.cost_usd = self._spent_per_key.pop(key, 0.0)
        outcome.seconds = time.monotonic() - started
        return outcome

    async def _produce(self, planned: PlannedRequest) -> tuple[Track, str]:
        """Make sure one key is stored: ``(track, "stored" | "skipped")``; raise on failure."""
        key = planned.request.cache_key
        request = planned.request
        slots = self.scheduler.slots()
        reporter = self.reporter
        reporter.update(planned, "queued")
        if self.head_start is not None:
            track = await self._from_head_start(planned)
            if track is not None:
                return track, "stored"
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
                    kept = self._kept(key)
                    if kept is not None:  # paid for already: store it, never generate again
                        reporter.update(planned, "storing", "a kept file, generated before")
                        track = await self._store_kept(planned, *kept)
                        return track, "stored"
                    generated = self._kept_generated(key)
                    if generated is not None:  # generated, not separated: finish it only
                        holding = False
                        resumed = dataclasses.replace(planned, cost_usd=planned.separation_usd)
                        track = await self.scheduler.run(resumed, generated, self._finish, reporter)
                        return track, "stored"
                    holding = False  # the scheduler owns the held slot from here on
                    track = await self.scheduler.run(
                        planned, self._call_generator, self._finish, reporter
                    )
                    return track, "stored"
                finally:
                    await lock.__aexit__(None, None, None)
            finally:
                if holding:
                    slots.release()

    def remove_work(self) -> None:
        """Remove every work folder this pipeline made that is still there.

        A cancelled generation's folder is removed at once, but a generator working in a
        thread (``asyncio.to_thread`` cannot be stopped) may write into it, re-creating it,
        until the thread ends: call this once those threads are done (after ``asyncio.run``
        returns, which waits for them), so that a command leaves no work behind.
        """
        self.work.remove_all()

    async def _call_generator(self, planned: PlannedRequest) -> tuple[GeneratedAudio, Path]:
        key = planned.request.cache_key
        workdir = self.work.new(key)
        # Until the generator has returned or raised, a thread of its own may still write
        # into workdir: the folder stays listed for remove_work().
        settled = False
        self._started(key)
        try:
            try:
                gen = await with_deadline(
                    self.generator.generate(planned.request, workdir), self.deadline_s
                )
                settled = True
            except DeadlineExceeded:
                raise  # not settled: the generator may still be writing, in a thread
            except GenerationError:
                settled = True
                raise
            except Exception as exc:  # a generator bug: retrying will not fix it
                settled = True
                name = self.generator.name
                registration = self.plugins.generators.entries.get(name)
                plugin = registration.plugin if registration else type(self.generator).__module__
                text = error_line(exc)
                raise PermanentError(
                    f"plugin {plugin}: generator {name}: generate raised {text}"
                ) from exc
            if not isinstance(gen, GeneratedAudio):
                raise PermanentError(
                    f"generator {self.generator.name} returned {type(gen).__name__}, "
                    "not GeneratedAudio"
                )
            # Money is spent now, whatever happens next.
            if gen.cost_usd:
                self._record_cost(entry_name(key, self.generator), float(gen.cost_usd))
                self._spent_run_usd += float(gen.cost_usd)
                self._spent_per_key[key] = self._spent_per_key.get(key, 0.0) + gen.cost_usd
                self.reporter.spent(self._spent_run_usd)
            return gen, workdir
        except BaseException:
            self.work.remove_now(workdir, settled=settled)
            raise

    def _started(self, key: str) -> None:
        """``key`` is being generated (or needs no generation any more). Once no request is
        left that has not started, a one-shot command tells the generator it will get no
        new ones (``idle``): what it keeps for later requests may go once those in
        progress are done (a retry still works, only slower: what went is made again)."""
        if key not in self._not_started:
            return
        self._not_started.discard(key)
        idle = getattr(self.generator, "idle", None)
        if self.idle_when_done and not self._not_started and callable(idle):
            try:
                idle()
            except Exception as exc:  # only memory was at stake: the run goes on
                log.warning(
                    "generator %s: idle() raised %s: %s",
                    self.generator.name,
                    type(exc).__name__,
                    exc,
                )

    async def _finish(self, planned: PlannedRequest, made: tuple[GeneratedAudio, Path]) -> Track:
        """Finish, store and record one generated file; its work folder goes either way."""
        gen, workdir = made
        try:
            gen = await self._separate(planned, gen, workdir)
            self.reporter.update(planned, "processing")
            if self._pool is None:
                self._pool = processing_pool()
            track, out = await in_thread(
                finish, self.plugins, planned, gen, self.generator, workdir, executor=self._pool
            )
            self.reporter.update(planned, "storing")
            try:
                await put_all(self.sinks, track, out)
                for name in track.stems:
                    stem = track.stem_track(name)
                    await put_all(self.sinks, stem, out.parent / stem.filename)
                self.cache.set(track.id, track)
            except Exception as exc:
                # Paid for and made: keep it for the next attempt, never generate it again.
                kept = self._keep(track, out)
                raise StorageError(f"{storage_problem(exc)}; {kept}") from exc
            self._stored_hook(track)
            detail = f"{track.duration_s:.1f}s ${track.cost_usd:.2f}"
            self.reporter.update(planned, "stored", detail)
            return track
        finally:
            # The generator has returned, so nothing writes there any more.
            await self.work.remove(workdir)

    async def _from_head_start(self, planned: PlannedRequest) -> Track | None:
        """The Track the head-start worker stored for this key, recorded here too."""
        assert self.head_start is not None
        track = await self.head_start.track_for(planned.key)
        if track is None:
            return None
        if self.cache.get(planned.key) is None:  # a cache of this process only (memory)
            self.cache.set(planned.key, track)
        found = self.stored(planned.request)
        if found is None:
            return None  # gone meanwhile: generated here as usual
        self.reporter.update(planned, "stored", "by the head-start worker")
        self._stored_hook(found)
        return found

    def _stored_hook(self, track: Track) -> None:
        if not self.notify_stored:
            return
        self.plugins.notify("segue_track_stored", track=track)

    # --- stem separation --------------------------------------------------------------------

    async def _separate(
        self, planned: PlannedRequest, gen: GeneratedAudio, workdir: Path
    ) -> GeneratedAudio:
        """``gen`` with stems from the separator, when the request has layers and none.

        Retried on its own (transient failures, with the pipeline's backoff): the song is
        paid for and is never generated again for a failed separation. When separation
        fails for good, the song is kept (``.segue/unstored/``) and the next attempt or
        run separates it without generating it again.
        """
        separator = self.separator
        request = planned.request
        if separator is None or not request.layers or gen.stems:
            return gen
        key = request.cache_key
        retry = self.scheduler.retry
        deadline = float(getattr(separator, "deadline_s", None) or self.deadline_s)
        folder = workdir / "separated"
        folder.mkdir(parents=True, exist_ok=True)  # as a generator's workdir: there to write in
        attempt = 0
        try:
            while True:
                attempt += 1
                self.reporter.update(
                    planned, "separating", f"{separator.name} {separator.model} attempt {attempt}"
                )
                try:
                    made = await with_deadline(
                        separator.separate(request, Path(gen.path), folder), deadline
                    )
                    break
                except TransientError as exc:
                    self._separation_cost(key, getattr(exc, "cost_usd", None))
                    if attempt >= retry.max_attempts:
                        raise PermanentError(f"gave up after {attempt} attempts: {exc}") from None
                    await asyncio.sleep(retry.delay(attempt, exc))
                except PermanentError as exc:
                    self._separation_cost(key, getattr(exc, "cost_usd", None))
                    raise
                except GenerationError:
                    raise
                except Exception as exc:  # a separator's bug: retrying will not fix it
                    registration = self.plugins.separators.entries.get(separator.name)
                    plugin = registration.plugin if registration else type(separator).__module__
                    raise PermanentError(
                        f"plugin {plugin}: separate raised {type(exc).__name__}: {exc}"
                    ) from exc
            if not isinstance(made, SeparatedStems):
                raise PermanentError(f"returned {type(made).__name__}, not SeparatedStems")
            self._separation_cost(key, made.cost_usd)
            if self._pool is None:
                self._pool = processing_pool()
            stems = await in_thread(_fit_stems, request, gen, made, folder, executor=self._pool)
        except GenerationError as exc:
            kept = self._keep_generated(planned, gen)
            raise PermanentError(
                f"stem separation ({separator.name} {separator.model}): "
                f"{' '.join(str(exc).split())}; {kept}"
            ) from None
        extra = {
            **gen.extra,
            "separation": {
                "separator": separator.name,
                "model": made.model or separator.model,
                "cost_usd": round(float(made.cost_usd or 0.0), 6),
                **made.extra,
            },
        }
        return dataclasses.replace(gen, stems=stems, extra=extra)

    def _separation_cost(self, key: str, usd: float | None) -> None:
        """Record what a separation cost (in the ledger, under the separator's endpoint)."""
        if not usd or self.separator is None:
            return
        self._record_cost(entry_name(key, self.separator), float(usd))
        self._spent_run_usd += float(usd)
        self._spent_per_key[key] = self._spent_per_key.get(key, 0.0) + float(usd)
        self.reporter.spent(self._spent_run_usd)

    def _keep_generated(self, planned: PlannedRequest, gen: GeneratedAudio) -> str:
        """Keep a generated, paid-for song whose separation failed, for the next attempt."""
        key = planned.request.cache_key
        folder = self.unstored_root
        try:
            folder.mkdir(parents=True, exist_ok=True)
            kept = folder / f"{key}.generated{Path(gen.path).suffix}"
            os.replace(gen.path, kept)
            fields = dataclasses.asdict(gen)
            fields["path"] = kept.name
            fields["stems"] = {}
            fields["cost_usd"] = 0.0  # recorded already
            meta = folder / f"{key}.generated.json"
            tmp = meta.with_suffix(".tmp")
            tmp.write_text(json.dumps(fields, default=str))
            os.replace(tmp, meta)
        except (OSError, TypeError, ValueError) as exc:
            log.error("could not keep the generated song for %s: %s", key[:12], exc)
            return "the generated song could not be kept"
        return "the song is kept: the next run separates it without generating it again"

    def _kept_generated(self, key: str) -> Any:
        """A call (for the scheduler) handing back a kept song whose separation failed."""
        meta = self.unstored_root / f"{key}.generated.json"
        try:
            fields = json.loads(meta.read_text())
            path = self.unstored_root / str(fields["path"])
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if not path.is_file():
            return None

        async def call(planned: PlannedRequest) -> tuple[GeneratedAudio, Path]:
            workdir = self.work.new(key)
            moved = workdir / path.name
            os.replace(path, moved)
            meta.unlink(missing_ok=True)
            return GeneratedAudio(**{**fields, "path": moved, "stems": {}}), workdir

        return call

    # --- paid work kept until it is stored ---------------------------------------------------

    def _keep(self, track: Track, out: Path) -> str:
        """Move a generated file that could not be stored to ``.segue/unstored/`` (a rename
        on the same disk: it works on a full disk too); say where, for the error."""
        folder = self.unstored_root
        try:
            folder.mkdir(parents=True, exist_ok=True)
            kept = folder / f"{track.id}.{track.format}"
            os.replace(out, kept)
            for name in track.stems:  # the stems go with it
                stem = track.stem_track(name)
                with contextlib.suppress(FileNotFoundError):
                    os.replace(out.parent / stem.filename, folder / stem.filename)
            meta = folder / f"{track.id}.json"
            tmp = meta.with_suffix(".tmp")
            tmp.write_text(json.dumps(track.to_dict()))
            os.replace(tmp, meta)
        except OSError as exc:
            log.error("could not keep the generated file for %s: %s", track.id[:12], exc)
            return f"the generated file could not be kept either ({exc.strerror or exc})"
        return (
            f"the generated file is kept in {kept} and is stored by the next attempt or run "
            "without generating it again"
        )

    def _kept(self, key: str) -> tuple[Track, Path] | None:
        """A file generated before for ``key`` and not stored yet (with its Track)."""
        meta = self.unstored_root / f"{key}.json"
        try:
            track = Track.from_dict(json.loads(meta.read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        path = self.unstored_root / f"{key}.{track.format}"
        return (track, path) if path.is_file() else None

    async def _store_kept(self, planned: PlannedRequest, track: Track, path: Path) -> Track:
        stems = [track.stem_track(name) for name in track.stems]
        try:
            await put_all(self.sinks, track, path)
            for stem in stems:
                await put_all(self.sinks, stem, path.parent / stem.filename)
            self.cache.set(track.id, track)
        except Exception as exc:
            raise StorageError(
                f"{storage_problem(exc)}; the generated file stays kept in {path}"
            ) from exc
        leftovers = [path, path.with_suffix(".json")]
        leftovers += [path.parent / stem.filename for stem in stems]
        for leftover in leftovers:
            with contextlib.suppress(OSError):
                leftover.unlink()
        log.info("stored %s from a file generated before (not generated again)", track.id[:12])
        self._stored_hook(track)
        self.reporter.update(planned, "stored", "a kept file, not generated again")
        return track

    def _record_cost(self, key: str, usd: float) -> None:
        """Record money spent; if the cache cannot, keep it (memory, then a journal)."""
        try:
            self.cache.record_cost(key, usd)
            return
        except Exception as exc:
            log.error(
                "could not record $%.4f for %s in the ledger (%s); kept for the next run",
                usd,
                key[:12],
                exc,
            )
        self._unrecorded[key] = self._unrecorded.get(key, 0.0) + usd
        try:
            self.unstored_root.mkdir(parents=True, exist_ok=True)
            with open(self.unstored_root / "ledger.jsonl", "a") as f:
                f.write(json.dumps({"key": key, "usd": usd}) + "\n")
        except OSError as exc:
            log.error("could not keep the cost in %s: %s", self.unstored_root, exc)

    def _record_unrecorded(self) -> None:
        """Record the costs kept by an earlier run (or earlier in this one)."""
        journal = self.unstored_root / "ledger.jsonl"
        entries: list[tuple[str, float]] = []
        try:
            for line in journal.read_text().splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    item = json.loads(line)
                    entries.append((str(item["key"]), float(item["usd"])))
        except OSError:
            pass
        if not entries:
            return
        try:
            for key, usd in entries:
                self.cache.record_cost(key, usd)
        except Exception as exc:
            log.warning("costs kept in %s still cannot be recorded: %s", journal, exc)
            return
        self._unrecorded.clear()
        with contextlib.suppress(OSError):
            journal.unlink()

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        if self.head_start is not None:
            await self.head_start.aclose()  # a worker still at work is stopped
        with contextlib.suppress(Exception):
            await self.generator.aclose()
        if self.separator is not None:
            with contextlib.suppress(Exception):
                await self.separator.aclose()
        await close_sinks(self.sinks)
        self.cache.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.remove_work()


def _fit_stems(
    request: GenerationRequest, gen: GeneratedAudio, made: SeparatedStems, folder: Path
) -> dict[str, Path]:
    """The separator's stems fitted to the song (same rate, frames, summing to it), as
    float WAV files in ``folder``: what the generator would have written (in a thread)."""
    missing = [name for name in request.layers if name not in made.stems]
    if missing:
        raise PermanentError(f"no stem for layer(s) {', '.join(missing)}")
    mix, rate = decode_output(Path(gen.path))
    decoded = {}
    for name in request.layers:
        x, sr = decode_output(Path(made.stems[name]))
        decoded[name] = audio.resample(x, sr, rate) if sr != rate else x
    residual = str(made.extra.get("residual_to") or request.layers[0])
    fitted = fit_to_mix(mix, decoded, residual if residual in decoded else request.layers[0])
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, name in enumerate(request.layers):
        path = folder / f"layer-{k}.wav"
        audio.write_float_wav(path, fitted[name], rate)
        out[name] = path
    return out
