"""Paid work is never redone: storage failing after a generation (a read-only disk, a full
one) keeps the generated file, records the cost, and the next attempt or run stores it
without calling the generator again.

The faults are real: a sink folder that becomes a path the kernel refuses writes to
(``/sys``: EACCES even for root) mid-run, and a sink whose writes go through ``/dev/full``
(the kernel's ENOSPC) while the disk is "full".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pregen_faulty
import pregen_support as ps
import pytest

from segue.core import hookimpl
from segue.core.plugins import Plugins
from segue.core.pregen.pipeline import Pipeline
from segue.plugins.local_storage import LocalSink

MOODS = {"explore": {"variants": 2}, "combat": {}, "danger": {}}
COST = 0.4


class FullDiskSink(LocalSink):
    """The local sink, except that while ``full`` every write goes to /dev/full first."""

    name = "fulldisk"
    full = True

    def _put(self, filename: str, src: Path, sha256: str) -> None:
        if FullDiskSink.full:
            with open("/dev/full", "wb") as f:  # the kernel answers ENOSPC
                f.write(Path(src).read_bytes())
                f.flush()
        super()._put(filename, src, sha256)


class FullDiskPlugin:
    @hookimpl
    def segue_register_storage_sinks(self, register: Any) -> None:
        register("fulldisk", lambda config, state_dir: FullDiskSink(Path(state_dir) / "tracks"))


def generator_calls(folder: Path) -> dict[str, int]:
    calls: dict[str, int] = {}
    for r in ps.records(folder):
        if r["event"] == "start":
            calls[r["key"]] = calls.get(r["key"], 0) + 1
    return calls


def pipeline_for(folder: Path, storage: list[dict[str, Any]]) -> Pipeline:
    s = ps.spec(MOODS, generator={"name": "faulty", "cost_usd": COST}, storage=storage)
    pm = Plugins(strict=False, load_entry_points=False, extra=[pregen_faulty, FullDiskPlugin()])
    return Pipeline(ps.build_score(folder, s), pm, max_attempts=5, backoff_base_s=0.01)


async def test_a_read_only_disk_mid_run_keeps_the_paid_files_for_the_next_run(tmp_path):
    real = tmp_path / "tracks"
    real.mkdir()
    link = tmp_path / "tracks-link"
    link.symlink_to(real, target_is_directory=True)
    pipeline = pipeline_for(tmp_path, [{"name": "local", "path": str(link)}])
    link.unlink()
    link.symlink_to("/sys/kernel", target_is_directory=True)  # the disk turns read-only
    try:
        summary = await pipeline.run()
    finally:
        await pipeline.aclose()
    assert len(summary.failed) == 4 and summary.count("stored") == 0
    for outcome in summary.failed:
        assert "writing there is not allowed" in outcome.reason, outcome.reason
        assert "is kept in" in outcome.reason and "without generating it again" in outcome.reason
        assert outcome.attempts == 1
    calls = generator_calls(tmp_path)
    assert len(calls) == 4 and set(calls.values()) == {1}  # once each, no retries
    assert summary.spent_usd == pytest.approx(4 * COST)
    kept = sorted(p.name for p in (tmp_path / ".segue" / "unstored").iterdir())
    assert len([k for k in kept if k.endswith(".wav")]) == 4

    link.unlink()
    link.symlink_to(real, target_is_directory=True)  # fixed
    again = pipeline_for(tmp_path, [{"name": "local", "path": str(link)}])
    try:
        summary = await again.run()
        assert summary.count("stored") == 4 and not summary.failed
        assert summary.spent_usd == 0 and summary.estimate_usd == 0
        assert again.ledger_total() == pytest.approx(4 * COST)  # recorded once, when paid
        assert all(again.stored(p.request) is not None for p in again.plan())
    finally:
        await again.aclose()
    assert generator_calls(tmp_path) == calls  # not one more call
    assert len(list(real.glob("*.wav"))) == 4
    assert not list((tmp_path / ".segue" / "unstored").glob("*.wav"))


async def test_a_full_disk_is_a_clear_permanent_error_and_the_next_attempt_stores(tmp_path):
    FullDiskSink.full = True
    pipeline = pipeline_for(tmp_path, [{"name": "fulldisk"}])
    try:
        summary = await pipeline.run()
        assert len(summary.failed) == 4
        for outcome in summary.failed:
            assert outcome.reason.startswith("storage fulldisk: the disk is full"), outcome.reason
            assert outcome.attempts == 1
        assert pipeline.ledger_total() == pytest.approx(4 * COST)
        FullDiskSink.full = False  # space freed: the next attempt in the same process
        request = pipeline.plan()[0].request
        track = await pipeline.ensure(request)
        assert track.id == request.cache_key and pipeline.stored(request) is not None
        summary = await pipeline.run()
        assert summary.count("stored") == 3 and summary.spent_usd == 0
    finally:
        FullDiskSink.full = True
        await pipeline.aclose()
    assert set(generator_calls(tmp_path).values()) == {1}
