"""The pipeline's rules, in process, with the fault-injecting generator writing real WAVs."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pregen_faulty
import pregen_support as ps
import pytest
import soundfile as sf

from segue.core import hookimpl
from segue.core.errors import BudgetError
from segue.core.plugins import Plugins
from segue.core.pregen.pipeline import Pipeline
from segue.core.track import Track


def make(tmp_path: Path, moods: dict, plugins: Plugins | None = None, **kw) -> Pipeline:
    spec_kw = {k: kw.pop(k) for k in ("generator", "cache", "storage", "budget_usd") if k in kw}
    score = ps.build_score(tmp_path, ps.spec(moods, **spec_kw))
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("backoff_cap_s", 0.05)
    return Pipeline(score, plugins or ps.plugins(), **kw)


def events(tmp_path: Path, key: str) -> list[tuple[int, str]]:
    return [(r["attempt"], r["event"]) for r in ps.records(tmp_path) if r["key"] == key]


def assert_stored_ok(pipeline: Pipeline, track: Track) -> None:
    path = pipeline.primary.local_path(track.filename)
    assert path is not None
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == track.sha256
    assert len(data) == track.bytes
    samples, sr = sf.read(str(path))
    assert len(samples) / sr == pytest.approx(track.duration_s, abs=1e-3)
    assert abs(samples).max() > 0.1  # real audio, not silence


async def test_generates_stores_and_records(tmp_path):
    p = make(tmp_path, {"explore": {"variants": 2, "bpm": 90}, "victory": {"stinger": True}})
    summary = await p.run()
    assert summary.ok and len(summary.generated) == 3
    tracks = p.tracks_for("explore")
    assert [t.variant for t in tracks] == [0, 1]
    for t in tracks:
        assert_stored_ok(p, t)
        assert t.loop is True and t.bpm == 90.0
        assert t.extra["requested_bpm"] == 90.0
        assert t.extra["loudness_target"] == -16.0
        assert t.generator == "faulty" and t.model == "faulty-1"
        assert t.created_at.endswith("Z")
    (stinger,) = p.tracks_for("victory")
    assert stinger.loop is False
    # Work folders are gone, the tracks folder holds only tracks.
    assert list((tmp_path / ".segue" / "work").iterdir()) == []
    assert sorted(x.name for x in (tmp_path / ".segue" / "tracks").iterdir()) == sorted(
        t.filename for t in [*tracks, stinger]
    )
    # A second run generates nothing.
    again = await p.run()
    assert len(again.skipped) == 3 and not again.generated
    assert len([r for r in ps.records(tmp_path) if r["event"] == "start"]) == 3
    await p.aclose()


async def test_transient_failures_are_retried_then_succeed(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [transient=2]"}})
    summary = await p.run()
    (key,) = [o.key for o in summary.outcomes]
    assert summary.ok and summary.outcomes[0].attempts == 3
    assert events(tmp_path, key) == [
        (1, "start"),
        (1, "transient"),
        (2, "start"),
        (2, "transient"),
        (3, "start"),
        (3, "done"),
    ]
    await p.aclose()


async def test_a_one_shot_run_says_so_once_its_last_request_has_started(tmp_path):
    # `segue pregen` (idle_when_done): once no request is left to start, the generator's
    # optional idle() lets it drop what it keeps for later requests (docs/plugins.md);
    # a retry after that still works. A server's pipeline never says so.
    moods = {"m": {"variants": 3, "prompt": "x [sleep=0.1]"}, "r": {"prompt": "y [transient=1]"}}
    gen = {"name": "faulty", "concurrency": 2}
    p = make(tmp_path, moods, generator=gen)
    p.idle_when_done = True
    summary = await p.run()
    assert summary.ok and len(summary.generated) == 4
    recs = ps.records(tmp_path)
    (idle,) = [i for i, r in enumerate(recs) if r["event"] == "idle"]
    first_start: dict[str, int] = {}
    for i, r in enumerate(recs):
        if r["event"] == "start":
            first_start.setdefault(r["key"], i)
    assert len(first_start) == 4 and sorted(i > idle for i in first_start.values()).count(True) == 1
    await p.aclose()
    server = make(tmp_path / "server", moods, generator=gen)
    assert (await server.run()).ok
    assert [r for r in ps.records(tmp_path / "server") if r["event"] == "idle"] == []
    await server.aclose()


async def test_transient_failures_give_up_after_max_attempts(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [transient=9]"}}, max_attempts=3)
    summary = await p.run()
    (o,) = summary.failed
    assert "gave up after 3 attempts" in o.reason
    assert [e for e in events(tmp_path, o.key) if e[1] == "start"] == [
        (1, "start"),
        (2, "start"),
        (3, "start"),
    ]
    assert summary.exit_code() == 1
    await p.aclose()


async def test_rate_limit_waits_at_least_retry_after(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [ratelimit=2:0.3]"}})
    summary = await p.run()
    assert summary.ok
    recs = [r for r in ps.records(tmp_path) if r["event"] in ("ratelimit", "start")]
    limited = [r for r in recs if r["event"] == "ratelimit"]
    starts = {r["attempt"]: r["t"] for r in recs if r["event"] == "start"}
    assert len(limited) == 2 and len(starts) == 3
    for r in limited:
        # The next attempt started no sooner than the provider asked.
        assert starts[r["attempt"] + 1] - r["t"] >= 0.3
    await p.aclose()


async def test_permanent_failure_is_never_retried(tmp_path):
    p = make(tmp_path, {"bad": {"prompt": "x [permanent]"}, "good": {}})
    summary = await p.run()
    (failed,) = summary.failed
    assert failed.mood == "bad" and "refuses" in failed.reason and failed.attempts == 1
    assert events(tmp_path, failed.key) == [(1, "start"), (1, "permanent")]
    assert len(summary.generated) == 1
    assert p.tracks_for("bad") == []
    await p.aclose()


async def test_generator_bug_is_a_permanent_failure(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [crash]"}})
    summary = await p.run()
    (o,) = summary.failed
    assert "ValueError" in o.reason and o.attempts == 1
    await p.aclose()


async def test_hung_request_hits_its_deadline_and_is_retried(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [hang=1]"}}, deadline_s=0.3)
    summary = await p.run()
    assert summary.ok
    (o,) = summary.outcomes
    assert events(tmp_path, o.key) == [(1, "start"), (1, "hang"), (2, "start"), (2, "done")]
    await p.aclose()


async def test_corrupt_output_is_retried_and_never_stored(tmp_path):
    p = make(
        tmp_path,
        {"once": {"prompt": "x [corrupt=1]"}, "always": {"prompt": "y [corrupt=9]"}},
        max_attempts=2,
    )
    summary = await p.run()
    (failed,) = summary.failed
    assert failed.mood == "always" and "corrupt" in failed.reason
    assert p.cache.get(failed.key) is None
    (ok,) = p.tracks_for("once")
    assert_stored_ok(p, ok)
    assert events(tmp_path, ok.id)[-1] == (2, "done")
    # Nothing of the corrupt outputs reached storage.
    assert (tmp_path / ".segue" / "tracks").iterdir().__next__().name == ok.filename
    assert len(list((tmp_path / ".segue" / "tracks").iterdir())) == 1
    await p.aclose()


async def test_any_output_format_is_decoded_and_encoded_to_the_request_format(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [fmt=flac]", "format": "ogg"}})
    summary = await p.run()
    assert summary.ok
    (t,) = p.tracks_for("m")
    assert t.format == "ogg" and t.filename.endswith(".ogg")
    info = sf.info(str(p.primary.local_path(t.filename)))
    assert info.format == "OGG"
    assert_stored_ok(p, t)
    await p.aclose()


async def test_budget_refuses_a_plan_up_front_with_figures(tmp_path):
    gen = {"name": "faulty", "cost_usd": 0.8}
    p = make(tmp_path, {"m": {"variants": 3}}, generator=gen, budget_usd=2.0)
    with pytest.raises(BudgetError) as info:
        await p.run()
    message = str(info.value)
    assert "$2.40" in message and "$2.00" in message and "3 missing" in message
    assert ps.records(tmp_path) == []  # nothing started
    await p.aclose()
    # Money already in the ledger counts: 1 track bought, 2 more would pass $2.00.
    p = make(tmp_path, {"m": {"variants": 1}}, generator=gen, budget_usd=2.0)
    assert (await p.run()).ok
    await p.aclose()
    p = make(tmp_path, {"m": {"variants": 3}}, generator=gen, budget_usd=2.0)
    with pytest.raises(BudgetError, match=r"\$1\.60 \+ \$0\.80 already spent"):
        await p.run()
    await p.aclose()


async def test_budget_stops_new_work_mid_run(tmp_path):
    # Up front 2 x $0.50 fits $1.20; a corrupt (but billed) output makes a retry too dear.
    gen = {"name": "faulty", "cost_usd": 0.5, "concurrency": 1}
    p = make(
        tmp_path,
        {"a": {"prompt": "a [corrupt=1]"}, "b": {"prompt": "b [sleep=0.1]"}},
        generator=gen,
        budget_usd=1.2,
    )
    summary = await p.run()
    (stopped,) = summary.failed
    assert stopped.reason.startswith("budget: not started")
    assert p.ledger_total() <= 1.2 + 1e-9
    assert summary.spent_usd == pytest.approx(1.0)
    assert summary.exit_code() == 1
    await p.aclose()


async def test_missing_file_means_not_stored_and_is_regenerated(tmp_path):
    p = make(tmp_path, {"m": {}})
    await p.run()
    (t,) = p.tracks_for("m")
    p.primary.local_path(t.filename).unlink()
    assert p.stored(p.plan()[0].request) is None and p.tracks_for("m") == []
    summary = await p.run()
    assert len(summary.generated) == 1
    assert_stored_ok(p, p.tracks_for("m")[0])
    await p.aclose()


async def test_truncated_file_means_not_stored(tmp_path):
    p = make(tmp_path, {"m": {}})
    await p.run()
    (t,) = p.tracks_for("m")
    path = p.primary.local_path(t.filename)
    path.write_bytes(path.read_bytes()[:100])
    assert p.tracks_for("m") == []
    await p.aclose()


async def test_ensure_generates_once_for_concurrent_callers(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [sleep=0.2]"}}, cache={"name": "memory"})
    request = p.plan()[0].request
    tracks = await asyncio.gather(*(p.ensure(request) for _ in range(5)))
    assert len({t.id for t in tracks}) == 1
    assert len([r for r in ps.records(tmp_path) if r["event"] == "start"]) == 1
    assert await p.ensure(request) == tracks[0]  # stored now: no generation
    assert len([r for r in ps.records(tmp_path) if r["event"] == "start"]) == 1
    await p.aclose()


async def test_ensure_raises_the_generation_error(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [permanent]"}})
    from segue.core.errors import PermanentError

    with pytest.raises(PermanentError):
        await p.ensure(p.plan()[0].request)
    await p.aclose()


async def test_dry_run_generates_nothing_and_prices_what_is_missing(tmp_path):
    gen = {"name": "faulty", "cost_usd": 0.25}
    p = make(tmp_path, {"a": {"variants": 2}, "b": {}}, generator=gen)
    await p.run(p.plan()[:1])
    summary = await p.run(dry_run=True)
    assert len(summary.would_generate) == 2 and len(summary.skipped) == 1
    assert summary.estimate_usd == pytest.approx(0.5)
    assert len([r for r in ps.records(tmp_path) if r["event"] == "start"]) == 1
    await p.aclose()


async def test_replicas_are_written_and_backfilled(tmp_path):
    storage = [{"name": "local"}, {"name": "local", "path": "replica"}]
    p = make(tmp_path, {"m": {"variants": 2}}, storage=storage)
    assert (await p.run()).ok
    primary, replica = p.sinks
    assert primary.list() == replica.list() and len(replica.list()) == 2
    for name in replica.list():
        assert (tmp_path / "replica" / name).read_bytes() == primary.local_path(name).read_bytes()
    await p.aclose()
    # A replica added later is filled from the primary without generating anything.
    storage.append({"name": "local", "path": "late"})
    p = make(tmp_path, {"m": {"variants": 2}}, storage=storage)
    summary = await p.run()
    assert len(summary.skipped) == 2
    assert p.sinks[2].list() == primary.list()
    assert len([r for r in ps.records(tmp_path) if r["event"] == "start"]) == 2
    await p.aclose()


class Marker:
    """A post-processor that silences the first 100 frames and says so; a stored listener."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    # Last (with loudness, whose gain keeps silence silent): loop_points may rewrite the
    # start of a song's loop (a crossfade), so an edit before it would not survive.
    @hookimpl(trylast=True)
    def segue_process_track(self, audio):
        samples = audio.samples.copy()  # the samples given are read-only
        samples[:100] = 0.0
        track = audio.track
        return audio.replace(
            samples=samples, track=track.replace(extra={**track.extra, "marked": True})
        )

    @hookimpl
    def segue_track_stored(self, track):
        self.stored.append(track.id)


async def test_process_track_hooks_run_before_storing(tmp_path):
    marker = Marker()
    plugins = Plugins(strict=False, load_entry_points=False, extra=[pregen_faulty, marker])
    p = make(tmp_path, {"m": {}}, plugins=plugins)
    assert (await p.run()).ok
    (t,) = p.tracks_for("m")
    assert t.extra["marked"] is True
    samples, _ = sf.read(str(p.primary.local_path(t.filename)))
    assert abs(samples[:100]).max() == 0.0 and abs(samples[100:]).max() > 0.05
    assert marker.stored == [t.id]
    await p.aclose()


async def test_moods_with_identical_audio_share_one_generation(tmp_path):
    p = make(tmp_path, {"a": {"prompt": "same"}, "b": {"prompt": "same"}})
    summary = await p.run()
    assert len(summary.outcomes) == 2
    assert len([r for r in ps.records(tmp_path) if r["event"] == "start"]) == 1
    (a,), (b,) = p.tracks_for("a"), p.tracks_for("b")
    assert a.id == b.id and a.mood == "a" and b.mood == "b"
    await p.aclose()


async def test_stop_interrupts_cleanly(tmp_path):
    p = make(tmp_path, {"m": {"prompt": "x [hang=9]", "variants": 2}, "ok": {}})
    task = asyncio.create_task(p.run())
    while len([r for r in ps.records(tmp_path) if r["event"] == "hang"]) < 2:
        await asyncio.sleep(0.01)
    p.stop()
    summary = await task
    assert summary.interrupted and summary.exit_code() == 130
    # The two hung takes were cut short (not failures), the quick one is stored: once each.
    assert summary.failed == [] and summary.count("interrupted") == 2
    assert summary.count("stored") == 1 and len(summary.outcomes) == 3
    assert list((tmp_path / ".segue" / "work").iterdir()) == []
    await p.aclose()


class SlowProcessor:
    @hookimpl
    def segue_process_track(self, audio):
        import time

        time.sleep(0.5)  # post-processing still running when the stop comes


async def test_a_paid_generation_is_stored_even_when_stopped(tmp_path):
    plugins = Plugins(strict=False, load_entry_points=False, extra=[pregen_faulty, SlowProcessor()])
    p = make(tmp_path, {"m": {}}, plugins=plugins, generator={"name": "faulty", "cost_usd": 1.0})
    task = asyncio.create_task(p.run())
    while not [r for r in ps.records(tmp_path) if r["event"] == "done"]:
        await asyncio.sleep(0.01)
    p.stop()
    summary = await task
    assert summary.interrupted and summary.exit_code() == 130
    # Finished and recorded despite the stop, and reported as what it is: stored.
    assert [o.state for o in summary.outcomes] == ["stored"] and summary.failed == []
    assert summary.line().startswith("interrupted: 1 generated, 0 already stored, 0 failed, 0 not")
    (t,) = p.tracks_for("m")
    assert_stored_ok(p, t)
    assert p.ledger_total() == 1.0
    await p.aclose()


async def test_pregen_and_on_demand_ensure_share_the_key_lock(tmp_path):
    """Two pipelines on one disk cache (a pregen and a server): each key generated once."""
    moods = {"m": {"variants": 3, "prompt": "x [sleep=0.2]"}}
    pregen, server = make(tmp_path, moods), make(tmp_path, moods)
    requests = [p.request for p in server.plan()]
    summary, *tracks = await asyncio.gather(
        pregen.run(), *(server.ensure(r) for r in reversed(requests))
    )
    assert summary.ok
    starts = [r["key"] for r in ps.records(tmp_path) if r["event"] == "start"]
    assert sorted(starts) == sorted({t.id for t in tracks}) and len(starts) == 3
    assert {t.id for t in pregen.tracks_for("m")} == {t.id for t in tracks}
    await pregen.aclose()
    await server.aclose()


async def test_stop_before_the_run_starts_any_work(tmp_path):
    p = make(tmp_path, {"m": {"variants": 2}})
    p.stop()
    summary = await p.run()
    assert summary.interrupted and summary.count("interrupted") == 2 and summary.failed == []
    assert ps.records(tmp_path) == []
    assert (await p.run()).ok  # the stop applied to that run only
    await p.aclose()


class _UnknownTempoGenerator:
    """Like a cloud model: a drum loop at 103 BPM, the tempo not reported."""

    name, model, concurrency = "drums103", "drums-1", 1

    def audio_params(self) -> dict:
        return {"model": self.model}

    def estimate_cost(self, request) -> float:
        return 0.0

    def check(self, request) -> None:
        pass

    async def generate(self, request, workdir):
        from audio_signals import SR, drum_loop

        from segue.core.generator import GeneratedAudio

        path = Path(workdir) / "out.wav"
        sf.write(str(path), drum_loop(103.0, seconds=8 * 4 * 60 / 103.0), SR)
        return GeneratedAudio(path=path, model=self.model)

    async def aclose(self) -> None:
        pass


class _UnknownTempoPlugin:
    @hookimpl
    def segue_register_generators(self, register):
        register("drums103", lambda config, state_dir: _UnknownTempoGenerator())


async def test_a_tempo_the_generator_does_not_know_is_measured_not_copied_from_the_score(
    tmp_path,
):
    plugins = Plugins(strict=False, load_entry_points=False, extra=[_UnknownTempoPlugin()])
    # The score asks for 100 BPM; the model played 103 (within the 4% tolerance, no warning).
    p = make(
        tmp_path, {"m": {"bpm": 100, "duration_s": 18.6}}, plugins, generator={"name": "drums103"}
    )
    summary = await p.run()
    assert summary.ok, summary.outcomes
    (track,) = p.tracks_for("m")
    assert track.bpm == pytest.approx(103.0, rel=0.015)  # the grid clients quantise to
    assert "tempo_warning" not in track.extra
    await p.aclose()


class _RaisingGenerator(_UnknownTempoGenerator):
    """A generator with a bug: ``generate`` raises what no retry fixes."""

    name = "buggy"

    async def generate(self, request, workdir):
        raise ZeroDivisionError("division by zero")


class _RaisingPlugin:
    @hookimpl
    def segue_register_generators(self, register):
        register("buggy", lambda config, state_dir: _RaisingGenerator())


async def test_a_generator_that_raises_fails_its_track_naming_the_plugin(tmp_path):
    plugins = Plugins(
        strict=False, load_entry_points=False, extra=[("buggy-gen", _RaisingPlugin())]
    )
    p = make(tmp_path, {"m": {"duration_s": 4}}, plugins, generator={"name": "buggy"})
    summary = await p.run()
    (o,) = summary.failed
    assert o.reason == (
        "plugin buggy-gen: generator buggy: generate raised ZeroDivisionError: division by zero"
    )
    await p.aclose()


class _ShareSeparator:
    """Gives each layer an equal share of the song, written straight into its workdir."""

    name, model = "share", "share-1"

    def check(self, request) -> None:
        pass

    def estimate_cost(self, request) -> float:
        return 0.0

    async def separate(self, request, audio, workdir):
        from segue.core.separator import SeparatedStems

        if request.variant == 1:
            raise KeyError("layer")
        samples, rate = sf.read(str(audio), dtype="float32")
        stems = {}
        for name in request.layers:
            stems[name] = Path(workdir) / f"{name}.wav"  # docs: files under workdir
            sf.write(str(stems[name]), samples / len(request.layers), rate)
        return SeparatedStems(stems=stems, model=self.model)

    async def aclose(self) -> None:
        pass


class _SharePlugin:
    @hookimpl
    def segue_register_stem_separators(self, register):
        register("share", lambda config, state_dir: _ShareSeparator())


async def test_a_third_party_separator_writes_in_its_workdir_and_its_bug_names_it(tmp_path):
    from segue.core.score import load_score

    (tmp_path / "adaptive_score.yaml").write_text(
        "segue: 1\ngenerator: drums103\nseparator: share\nintensity: {key: threat}\n"
        "moods:\n  m: {prompt: drums, bpm: 100, duration_s: 18.6, variants: 2,"
        " layers: {bass: {}, drums: {from: 0.5}}}\nrules: [{mood: m}]\n"
    )
    extra = [("tempo", _UnknownTempoPlugin()), ("sharing", _SharePlugin())]
    plugins = Plugins(strict=False, load_entry_points=False, extra=extra)
    p = Pipeline(load_score(tmp_path / "adaptive_score.yaml"), plugins)
    summary = await p.run()
    (failed,) = summary.failed
    assert failed.variant == 1 and failed.reason.startswith(
        "stem separation (share share-1): plugin sharing: separate raised KeyError: 'layer'; "
    )
    (track,) = p.tracks_for("m")
    assert sorted(track.stems) == ["bass", "drums"]
    await p.aclose()
