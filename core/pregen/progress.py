"""How pregeneration reports itself: a rich live display, plain log lines, or nothing.

The pipeline calls a :class:`Reporter` as each request moves through its states
(``waiting`` for another worker's lock, ``generating``, ``retrying``, ``processing``,
``storing``, then ``stored``, ``skipped`` or ``failed``); :class:`PregenSummary` is
what a run returns and what ``segue pregen --json`` prints.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from segue.core.pregen.planning import PlannedRequest

# States a request goes through; the last four are final. ``interrupted``: stopped
# (Ctrl-C) before its track was stored, nothing wrong with it; the next run resumes it.
STATES = (
    "queued",
    "waiting",
    "generating",
    "retrying",
    "processing",
    "storing",
    "stored",
    "skipped",
    "failed",
    "interrupted",
)


@dataclass
class Outcome:
    """What became of one planned request."""

    key: str
    mood: str
    variant: int
    state: str  # stored | skipped | failed | interrupted | would_generate
    reason: str = ""
    attempts: int = 0
    cost_usd: float = 0.0  # spent on this request in this run
    estimate_usd: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {
            "key": self.key,
            "mood": self.mood,
            "variant": self.variant,
            "state": self.state,
            "attempts": self.attempts,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(self.seconds, 3),
        }
        if self.reason:
            out["reason"] = self.reason
        if self.state == "would_generate":
            out["estimate_usd"] = round(self.estimate_usd, 6)
        return out


@dataclass
class PregenSummary:
    """The result of ``Pipeline.run``: every outcome, money, and whether it was cut short."""

    outcomes: list[Outcome] = field(default_factory=list)
    spent_usd: float = 0.0  # spent in this run
    ledger_usd: float = 0.0  # the whole ledger after the run
    budget_usd: float | None = None
    estimate_usd: float = 0.0  # estimated cost of what was missing at the start
    elapsed_s: float = 0.0
    interrupted: bool = False
    dry_run: bool = False
    refused: str | None = None  # a dry run whose plan the budget would refuse: why

    def _of(self, state: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == state]

    @property
    def generated(self) -> list[Outcome]:
        return self._of("stored")

    @property
    def skipped(self) -> list[Outcome]:
        return self._of("skipped")

    @property
    def failed(self) -> list[Outcome]:
        return self._of("failed")

    @property
    def unfinished(self) -> list[Outcome]:
        """Tracks a stop cut short or never started (not failures: the next run resumes)."""
        return self._of("interrupted")

    @property
    def would_generate(self) -> list[Outcome]:
        return self._of("would_generate")

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    def count(self, state: str) -> int:
        """Distinct tracks (cache keys) in ``state``: moods that plan the same audio share one."""
        return len({o.key for o in self.outcomes if o.state == state})

    def exit_code(self) -> int:
        """0 when every request is stored, 130 when interrupted, 1 when some failed."""
        if self.interrupted:
            return 130
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "planned": len(self.outcomes),
            "generated": self.count("stored"),
            "skipped": self.count("skipped"),
            "failed": [o.to_dict() for o in self.failed],
            "unfinished": [o.to_dict() for o in self.unfinished],
            "spent_usd": round(self.spent_usd, 6),
            "ledger_usd": round(self.ledger_usd, 6),
            "budget_usd": self.budget_usd,
            "estimate_usd": round(self.estimate_usd, 6),
            "elapsed_s": round(self.elapsed_s, 3),
            "interrupted": self.interrupted,
            "dry_run": self.dry_run,
            "tracks": [o.to_dict() for o in self.outcomes],
        }
        if self.dry_run:
            out["would_generate"] = self.count("would_generate")
            out["refused"] = self.refused
        return out

    def line(self) -> str:
        """One line for humans."""
        if self.dry_run:
            return (
                f"would generate {self.count('would_generate')} of "
                f"{len({o.key for o in self.outcomes})} tracks, "
                f"estimated ${self.estimate_usd:.2f}"
                + (f" (budget ${self.budget_usd:.2f})" if self.budget_usd is not None else "")
            )
        # Each track once, as what it is: the counts add up to the distinct tracks planned.
        text = (
            f"{self.count('stored')} generated, {self.count('skipped')} already stored, "
            f"{self.count('failed')} failed"
        )
        if self.interrupted:
            text += f", {self.count('interrupted')} not finished (the next run resumes them)"
        text += (
            f"; spent ${self.spent_usd:.2f} (ledger ${self.ledger_usd:.2f}) "
            f"in {self.elapsed_s:.1f}s"
        )
        return ("interrupted: " + text) if self.interrupted else text


def label(planned: PlannedRequest) -> str:
    r = planned.request
    return f"{r.mood}#{r.variant}"


class Reporter(Protocol):
    def started(self, planned: list[PlannedRequest], todo: int, estimate_usd: float) -> None:
        """The run begins: ``todo`` of ``planned`` are missing and may cost ``estimate_usd``."""
        ...

    def update(self, planned: PlannedRequest, state: str, detail: str = "") -> None:
        """``planned`` moved to ``state`` (one of STATES)."""
        ...

    def spent(self, usd: float) -> None:
        """Money spent in this run so far."""
        ...

    def finished(self, summary: PregenSummary) -> None: ...


class NullReporter:
    def started(self, planned: list[PlannedRequest], todo: int, estimate_usd: float) -> None:
        pass

    def update(self, planned: PlannedRequest, state: str, detail: str = "") -> None:
        pass

    def spent(self, usd: float) -> None:
        pass

    def finished(self, summary: PregenSummary) -> None:
        pass


class LogReporter:
    """Plain lines, one per event that matters (not a terminal, or ``--no-progress``)."""

    def __init__(self, stream: TextIO | None = None, logger: logging.Logger | None = None) -> None:
        self.stream = stream
        self.logger = logger  # when given, lines go to it (the server's logs) instead
        self.total = 0
        self.done = 0
        self.spent_usd = 0.0
        self.counted: set[str] = set()  # keys counted in done: each track once

    def _print(self, text: str) -> None:
        if self.logger is not None:
            self.logger.info(text)
            return
        print(f"pregen: {text}", file=self.stream or sys.stderr, flush=True)

    def started(self, planned: list[PlannedRequest], todo: int, estimate_usd: float) -> None:
        self.total = todo
        self._print(
            f"{len(planned)} planned, {len(planned) - todo} already stored, {todo} to generate"
            f" (estimated ${estimate_usd:.2f})"
        )

    def update(self, planned: PlannedRequest, state: str, detail: str = "") -> None:
        if state in ("queued", "processing", "storing"):
            return
        final = state in ("stored", "failed", "interrupted")
        if final and planned.key not in self.counted:
            self.counted.add(planned.key)
            self.done += 1
        extra = f" {detail}" if detail else ""
        # Out of the run's planned total; a server generating on demand (`--no-pregen`)
        # has none, and then counts alone (not "[1/0]").
        total = f"/{self.total}" if self.total >= self.done else ""
        count = f" [{self.done}{total}]" if final else ""
        self._print(f"{label(planned)} {state}{extra} ({planned.key[:12]}){count}")

    def spent(self, usd: float) -> None:
        self.spent_usd = usd

    def finished(self, summary: PregenSummary) -> None:
        for o in summary.failed:
            self._print(f"failed {o.mood}#{o.variant} ({o.key[:12]}): {o.reason}")
        self._print(summary.line())


class RichReporter:
    """A live display on a terminal: overall bar with ETA and spend, one line per active track."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.overall: Any = None
        self.rows: dict[str, Any] = {}
        self.counted: set[str] = set()  # keys the bar has advanced for: each track once
        self.spent_usd = 0.0
        self.started_at = time.monotonic()

    def _overall_text(self) -> str:
        return f"[bold]pregen[/] spent ${self.spent_usd:.2f}"

    def started(self, planned: list[PlannedRequest], todo: int, estimate_usd: float) -> None:
        self.progress.start()
        self.console.print(
            f"{len(planned)} planned, {len(planned) - todo} already stored, "
            f"{todo} to generate (estimated ${estimate_usd:.2f})"
        )
        self.overall = self.progress.add_task(self._overall_text(), total=todo)

    def update(self, planned: PlannedRequest, state: str, detail: str = "") -> None:
        key = planned.key
        text = f"  {label(planned)} [dim]{key[:10]}[/] {state}" + (f" {detail}" if detail else "")
        if state in ("stored", "failed", "interrupted"):
            row = self.rows.pop(key, None)
            if row is not None:
                self.progress.remove_task(row)
            colour = {"stored": "green", "failed": "red"}.get(state, "yellow")
            self.console.print(f"[{colour}]{state}[/] {label(planned)} {key[:12]} {detail}")
            if self.overall is not None and key not in self.counted:
                self.counted.add(key)
                self.progress.advance(self.overall)
            return
        if state in ("skipped", "queued"):
            return
        if key in self.rows:
            self.progress.update(self.rows[key], description=text)
        else:
            self.rows[key] = self.progress.add_task(text, total=None)

    def spent(self, usd: float) -> None:
        self.spent_usd = usd
        if self.overall is not None:
            self.progress.update(self.overall, description=self._overall_text())

    def finished(self, summary: PregenSummary) -> None:
        for row in self.rows.values():
            self.progress.remove_task(row)
        self.rows.clear()
        self.progress.stop()
        for o in summary.failed:
            self.console.print(f"[red]failed[/] {o.mood}#{o.variant} {o.key[:12]}: {o.reason}")
        self.console.print(summary.line())
