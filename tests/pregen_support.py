"""Helpers for the pregeneration tests: scores built in code, the faulty plugin, a driver.

Scores are built as ``Score`` objects (not YAML) so these tests do not depend on the score
loader; a spec is a JSON-able dict so a subprocess can build the same score.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pregen_faulty

from segue.core.plugins import Plugins
from segue.core.score import Mood, PluginChoice, Score

HERE = Path(__file__).resolve().parent

DRIVER = HERE / "pregen_driver.py"


def spec(
    moods: dict[str, dict[str, Any]],
    *,
    generator: dict[str, Any] | None = None,
    cache: dict[str, Any] | None = None,
    storage: list[dict[str, Any]] | None = None,
    budget_usd: float | None = None,
) -> dict[str, Any]:
    return {
        "moods": moods,
        "generator": generator or {"name": "faulty"},
        "cache": cache or {"name": "disk"},
        "storage": storage or [{"name": "local"}],
        "budget_usd": budget_usd,
    }


def _choice(d: dict[str, Any]) -> PluginChoice:
    d = dict(d)
    return PluginChoice(d.pop("name"), d)


def build_score(folder: Path, s: dict[str, Any]) -> Score:
    moods = {}
    for name, m in s["moods"].items():
        moods[name] = Mood(
            name=name,
            prompt=m.get("prompt", f"{name} music"),
            composition_plan=None,
            duration_s=float(m.get("duration_s", 0.5)),
            instrumental=True,
            variants=int(m.get("variants", 1)),
            format=m.get("format", "wav"),
            bpm=m.get("bpm"),
            key=None,
            stinger=bool(m.get("stinger", False)),
        )
    return Score(
        path=Path(folder) / "adaptive_score.yaml",
        title="test",
        generator=_choice(s["generator"]),
        cache=_choice(s["cache"]),
        storage=tuple(_choice(c) for c in s["storage"]),
        moods=moods,
        rules=(),
        events={},
        transitions=(),
        budget_usd=s.get("budget_usd"),
        loudness_lufs=-16.0,
    )


def plugins() -> Plugins:
    """The built-ins plus the faulty generator, registered before the registries are built."""
    return Plugins(strict=False, load_entry_points=False, extra=[pregen_faulty])


def write_spec(folder: Path, s: dict[str, Any]) -> Path:
    path = Path(folder) / "spec.json"
    path.write_text(json.dumps(s))
    return path


def driver_cmd(folder: Path, *args: str) -> list[str]:
    """``segue pregen`` (the real command code) on the spec in ``folder``, in a subprocess."""
    return [sys.executable, str(DRIVER), str(Path(folder) / "spec.json"), "pregen", *args]


def run_driver(folder: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        driver_cmd(folder, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def records(folder: Path) -> list[dict[str, Any]]:
    return pregen_faulty.read_record(Path(folder) / ".segue" / "faulty.jsonl")
