"""docs/score.md documents every key the loader accepts, and its examples are valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segue.core import score_check
from segue.core.conditions import OPERATORS
from segue.core.score import Transition, parse_score

DOC = (Path(__file__).parent.parent / "docs" / "score.md").read_text(encoding="utf-8")

KEY_LISTS = [
    "TOP_KEYS",
    "DEFAULTS_KEYS",
    "MOOD_KEYS",
    "PLAN_KEYS",
    "SECTION_KEYS",
    "RULE_KEYS",
    "EVENT_KEYS",
    "TRANSITION_KEYS",
    "SERVER_KEYS",
    "FORMATS",
    "MOOD_AT",
    "ENTRIES",
    "FADES",
    "MODES",
]


@pytest.mark.parametrize("name", KEY_LISTS)
def test_every_key_and_choice_is_documented(name):
    missing = [k for k in getattr(score_check, name) if f"`{k}`" not in DOC]
    assert not missing, f"docs/score.md does not mention {missing}"


def test_every_operator_is_documented():
    assert all(f"`{op}`" in DOC for op in (*OPERATORS, "all", "any", "not"))


def test_minimal_example_is_valid():
    block = re.search(r"## A minimal score\n\n```yaml\n(.*?)```", DOC, re.S)
    assert block is not None
    score = parse_score(block.group(1), "minimal.yaml")
    assert list(score.moods) == ["explore"]


def test_transition_defaults_match_the_docs():
    t = Transition()
    for key, value in [("at", t.at), ("entry", t.entry), ("fade", t.fade),
                       ("fade_ms", t.fade_ms)]:  # fmt: skip
        assert re.search(rf"\| `{key}` \| [^|]+ \| `{value}` \|", DOC), key


def test_every_server_key_the_docs_show_is_accepted() -> None:
    """A `server:` block in any doc, and the keys of score.md's server table, validate."""
    docs = Path(__file__).parent.parent / "docs"
    shown: set[str] = set()
    for page in sorted(docs.glob("*.md")):
        for block in re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            server = re.search(r"^server:\n((?:[ #].*\n?)+)", block, re.M)
            if server is None:
                continue
            text = "segue: 1\nmoods: {a: {prompt: a}}\nrules: [{mood: a}]\n" + server.group(0)
            parse_score(text, f"{page.name}.yaml")  # raises ScoreError naming a refused key
            shown |= set(re.findall(r"^  (\w+):", server.group(1), re.M))
    table = DOC.split("## Server", 1)[1].split("\n## ", 1)[0]
    shown |= set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert shown and shown <= set(score_check.SERVER_KEYS), shown - set(score_check.SERVER_KEYS)
