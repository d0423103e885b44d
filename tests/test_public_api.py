"""The plugin API and the client SDK stay put: every import path the docs show works.

The docs (README.md, docs/*.md, the examples' READMEs) show plugin authors and clients
``from segue... import ...`` lines in code blocks and dotted names such as
``segue.core.cue.Cue`` in prose. Each is imported here, with an explicit list of what
plugins and clients rely on, so that moving a module without keeping its old path fails.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "examples").glob("*/README.md")]
)

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
FROM_IMPORT = re.compile(r"^\s*from\s+(segue(?:\.\w+)+)\s+import\s+([\w\s,]+?)\s*(?:#.*)?$", re.M)
IMPORT = re.compile(r"^\s*import\s+(segue(?:\.\w+)+)(?:\s+as\s+\w+)?\s*(?:#.*)?$", re.M)
# A dotted name in backticks in prose: `segue.core.cue.Cue`, `segue.plugins.style`.
DOTTED = re.compile(r"`(segue\.(?:core|plugins)(?:\.\w+)+)")

# What plugin authors and clients import, documented or not in a code block (docs/plugins.md,
# docs/protocol.md, docs/audio.md, docs/pregeneration.md).
EXPLICIT: dict[str, tuple[str, ...]] = {
    "segue.core": ("hookimpl",),
    "segue.core.hookspecs": ("hookspec",),
    "segue.core.errors": (
        "SegueError",
        "ScoreError",
        "PluginError",
        "ConfigError",
        "BudgetError",
        "GenerationError",
        "TransientError",
        "RateLimitedError",
        "PermanentError",
        "AudioError",
    ),
    "segue.core.request": ("GenerationRequest",),
    "segue.core.track": ("Track",),
    "segue.core.generator": ("Generator", "GeneratedAudio"),
    "segue.core.cache": ("Cache",),
    "segue.core.storage": ("StorageSink",),
    "segue.core.registry": (),
    "segue.core.audio": ("read", "write"),
    "segue.core.locks": ("LockTimeout",),
    "segue.core.files": (),
    "segue.core.score": (
        "Score",
        "Mood",
        "Rule",
        "EventSpec",
        "Transition",
        "TransitionRule",
        "PluginChoice",
        "Style",
        "ServerOptions",
        "DEFAULT_SCORE",
        "load_score",
        "parse_score",
        "state_keys",
    ),
    "segue.core.conditions": ("compile_condition", "OPERATORS"),
    "segue.core.prompts": ("says", "append_phrases", "dedupe", "plan_with_styles"),
    "segue.core.plugins": ("Plugins", "get_plugins", "DEFAULT_PLUGINS"),
    "segue.core.cue": ("Cue", "Stinger", "Pending"),
    "segue.core.protocol": ("CueMessage", "StingerMessage", "PendingMessage"),
    "segue.core.client": ("SegueClient", "CueMessage", "Unauthorized", "ConnectionLost"),
    "segue.core.cli": ("main",),
    "segue.plugins.fal.emulator": ("FalEmulator",),
}


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def documented_references(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every segue import in a code block and dotted name in prose."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[int, str]] = []
    for block in FENCE.finditer(text):
        code, start = block.group(1), block.start(1)
        for m in FROM_IMPORT.finditer(code):
            line = line_of(text, start + m.start())
            names = [n.strip() for n in m.group(2).split(",") if n.strip()]
            found += [(line, f"{m.group(1)}.{name}") for name in names]
        for m in IMPORT.finditer(code):
            found.append((line_of(text, start + m.start()), m.group(1)))
    for m in DOTTED.finditer(text):
        found.append((line_of(text, m.start()), m.group(1).rstrip(".")))
    return found


def resolve(dotted: str) -> Any:
    """The module or the object ``dotted`` names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    module: ModuleType | None = None
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Only this name missing is a reason to try a shorter one, not a missing dependency.
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue
        break
    if module is None:
        raise ImportError(f"no module in {dotted}")
    obj: Any = module
    for attr in parts[end:]:
        obj = getattr(obj, attr)
    return obj


REFERENCES = [
    pytest.param(dotted, id=f"{path.relative_to(REPO)}:{line}:{dotted}")
    for path in DOCS
    for line, dotted in documented_references(path)
]


def test_the_docs_show_imports() -> None:
    shown = {dotted for (dotted,) in (p.values for p in REFERENCES)}
    for dotted in (
        "segue.core.hookimpl",
        "segue.core.score.load_score",
        "segue.core.client.SegueClient",
        "segue.core.prompts.append_phrases",
        "segue.core.storage.StorageSink",
    ):
        assert dotted in shown


@pytest.mark.parametrize("dotted", REFERENCES)
def test_documented_import_path_works(dotted: str) -> None:
    assert resolve(dotted) is not None


@pytest.mark.parametrize("module", sorted(EXPLICIT))
def test_public_names_import(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in EXPLICIT[module] if not hasattr(imported, name)]
    assert missing == [], f"{module} lost {missing}"


def test_the_scan_and_the_resolver_can_fail(tmp_path: Path) -> None:
    doc = tmp_path / "page.txt"
    doc.write_text(
        "Use `segue.core.cue.Cue`.\n\n```python\nfrom segue.core.moved import gone  # no\n"
        "import segue.core.nowhere\n```\n"
    )
    refs = documented_references(doc)
    assert refs == [
        (4, "segue.core.moved.gone"),
        (5, "segue.core.nowhere"),
        (1, "segue.core.cue.Cue"),
    ]
    for _, dotted in refs[:2]:
        with pytest.raises((ImportError, AttributeError)):
            resolve(dotted)
    with pytest.raises(AttributeError):
        resolve("segue.core.score.Gone")
