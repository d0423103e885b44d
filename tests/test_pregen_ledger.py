"""Honest money: the ledger names each cost's generator and endpoint; money spent against
an emulator (any non-production endpoint) is shown apart and never counts toward the
budget for the real endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pregen_support import build_score, plugins, spec

from segue.core.commands.tracks import collect
from segue.core.ledger import LedgerEntry, entries
from segue.core.pregen.pipeline import Pipeline

EMULATOR = "test:127.0.0.1:8790/fal-ai/elevenlabs/music"


def pipeline_for(folder: Path, endpoint: str, moods: tuple[str, ...], budget: float | None):
    s = spec(
        {m: {"duration_s": 0.5} for m in moods},
        generator={"name": "faulty", "cost_usd": 1.0, "endpoint": endpoint},
        budget_usd=budget,
    )
    return Pipeline(build_score(folder, s), plugins())


def test_emulator_spending_is_apart_and_not_counted_for_production(tmp_path: Path) -> None:
    emulated = pipeline_for(tmp_path, EMULATOR, ("a", "b"), None)

    async def run(p: Pipeline, dry_run: bool = False):
        try:
            return await p.run(dry_run=dry_run)
        finally:
            await p.aclose()

    summary = asyncio.run(run(emulated))
    assert summary.spent_usd == 2.0 and summary.ledger_usd == 2.0
    # A third mood at $1 with a budget of $1.50: the real endpoint has spent nothing...
    real = pipeline_for(tmp_path, "queue.fal.run/fal-ai/elevenlabs/music", ("a", "b", "c"), 1.5)
    assert real.ledger_total() == 0.0
    dry = asyncio.run(run(real, dry_run=True))
    assert dry.refused is None and len(dry.would_generate) == 1
    # ...while against the emulator the $2 it "spent" counts toward its own budget.
    again = pipeline_for(tmp_path, EMULATOR, ("a", "b", "c"), 1.5)
    dry = asyncio.run(run(again, dry_run=True))
    assert dry.refused is not None and "$2.00 already spent (ledger)" in dry.refused

    # segue tracks: production money, and apart the emulator's, with every entry's source.
    score = build_score(tmp_path, spec({"a": {}}, generator={"name": "faulty"}))
    ledger = collect(score, plugins())["ledger"]
    assert ledger["total_usd"] == 0.0 and ledger["per_key"] == {}
    assert ledger["non_production_usd"] == 2.0
    assert ledger["non_production"] == {f"faulty at {EMULATOR}": 2.0}
    assert {(e["generator"], e["endpoint"], e["production"]) for e in ledger["entries"]} == {
        ("faulty", EMULATOR, False)
    }


def test_ledger_entries_old_and_new() -> None:
    got = entries({"k1": 0.8, "k2|fal|queue.fal.run/m|production": 1.6, "k3|fal|h/m|test": 4.0})
    assert got == [
        LedgerEntry("k1", None, "", True, 0.8),  # written before entries named the endpoint
        LedgerEntry("k2", "fal", "queue.fal.run/m", True, 1.6),
        LedgerEntry("k3", "fal", "h/m", False, 4.0),
    ]
