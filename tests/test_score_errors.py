"""Broken scores: each gives exactly the expected ``FILE:LINE: path: message`` lines, exit 2.

The fixtures in ``tests/scores/bad/`` end with ``# expect: LINE: path: message`` comments,
one per error the file must give, in order. More cases are built inline below (the ones
whose text is long or not UTF-8).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from segue.core.cli import main
from segue.core.errors import ScoreError
from segue.core.score import load_score, parse_score

BAD = Path(__file__).parent / "scores" / "bad"
FIXTURES = sorted(BAD.glob("*.yaml"))
EXPECT = "# expect: "

VALID_TAIL = "rules:\n  - {mood: explore}\n"


def expected(path: Path, label: str) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [f"{label}:{line[len(EXPECT) :]}" for line in lines if line.startswith(EXPECT)]


def errors_of(path: Path | str) -> list[str]:
    with pytest.raises(ScoreError) as info:
        load_score(path)
    return info.value.errors


def test_there_are_many_distinct_broken_scores():
    assert len(FIXTURES) >= 30
    for path in FIXTURES:
        assert expected(path, "x"), f"{path.name} has no # expect: lines"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_gives_exactly_its_errors(path):
    assert errors_of(path) == expected(path, str(path))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_validate_command_exits_2_with_the_errors(path, capsys, monkeypatch):
    monkeypatch.chdir(BAD)
    assert main(["validate", path.name]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == expected(path, path.name)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "name", ["many_errors", "yaml_bad_indent", "duplicate_mood", "rule_unknown_operator", "empty"]
)
def test_validate_subprocess_exits_2_without_traceback(name):
    path = BAD / f"{name}.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "segue.core", "validate", path.name],
        cwd=BAD,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    # The file is named as the user gave it: a relative path stays relative.
    assert proc.stderr.splitlines() == expected(path, path.name)


# --- inline cases ---------------------------------------------------------------------


def write(tmp_path: Path, text: str | bytes, name: str = "score.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def plan_score(sections: str) -> str:
    return (
        "segue: 1\nmoods:\n  explore:\n    prompt: x\n    composition_plan:\n      sections:\n"
        + sections
        + VALID_TAIL
    )


def section(name: str = "A", ms: int = 8000, lines: str = "[]") -> str:
    return (
        f"        - {{section_name: {name}, positive_local_styles: [], "
        f"negative_local_styles: [], duration_ms: {ms}, lines: {lines}}}\n"
    )


P = "moods.explore.composition_plan.sections"


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (
            f"segue: 1\nmoods:\n  explore:\n    prompt: {'a' * 4101}\n{VALID_TAIL}",
            ["4: moods.explore.prompt: must be at most 4100 characters (it has 4101)"],
        ),
        (
            plan_score(section() * 31),
            [f"6: {P}: must have at most 30 sections (it has 31)"],
        ),
        (
            plan_score(section() + section(name="B" * 101)),
            [f"8: {P}[1].section_name: must be at most 100 characters (it has 101)"],
        ),
        (
            plan_score(section(lines="[" + ", ".join(["la"] * 31) + "]")),
            [f"7: {P}[0].lines: must have at most 30 items (it has 31)"],
        ),
        (
            plan_score(section(lines=f"[ok, {'w' * 201}]")),
            [f"7: {P}[0].lines[1]: must be at most 200 characters (it has 201)"],
        ),
        (
            plan_score(section(ms=8000.5)),  # type: ignore[arg-type]
            [f"7: {P}[0].duration_ms: must be a whole number from 3000 to 120000"],
        ),
        (
            "segue: 1\nmoods:\n  explore: {prompt: x, bpm: 2024-13-45}\n" + VALID_TAIL,
            ["3: invalid YAML: bad value: month must be in 1..12"],
        ),
        (
            "segue: 1\nmoods:\n  explore: {prompt: x, bpm: 2024-01-05}\n" + VALID_TAIL,
            ["3: moods.explore.bpm: must be a number from 20 to 300"],
        ),
        (
            "segue: 1\nmoods:\n  explore: {prompt: x, variants: 99999999999999999999999}\n"
            + VALID_TAIL,
            ["3: moods.explore.variants: must be a whole number from 1 to 16"],
        ),
        (
            f"segue: 1\nmoods:\n  explore: {{prompt: x, bpm: 1{'0' * 400}}}\n" + VALID_TAIL,
            ["3: moods.explore.bpm: must be a number from 20 to 300"],
        ),
        (
            "segue: 1\nmoods:\n  explore: {prompt: x}\nrules:\n  - {mood: explore}\n"
            "events: [boss_defeated]\n",
            ["6: events: must be a mapping of event names to events"],
        ),
        (
            "segue: 1\nmoods: [explore, combat]\n" + VALID_TAIL,
            [
                "2: moods: must be a mapping of mood names to moods",
                "4: rules[0].mood: unknown mood 'explore'",
            ],
        ),
        (
            "segue: 1\ntitle: [a]\nmoods:\n  explore: {prompt: x}\n" + VALID_TAIL,
            ["2: title: must be a string"],
        ),
        (
            "segue: 1\nmoods:\n  explore: {prompt: x}\nrules:\n  - mood: explore\n"
            "    when: {hp: {lt: .nan}}\n",
            ["6: rules[0].when.hp.lt: must not be NaN"],
        ),
        (
            "segue: 1\nmoods:\n  explore: {prompt: x}\nrules:\n  - mood: explore\n"
            "    when: {yes: 1}\n",
            [
                "6: rules[0].when: key yes (read as True) must be a string (quote it: YAML "
                "reads yes/no/on/off, numbers and ~ as other types)"
            ],
        ),
        (
            "segue: 1\nstorage:\n  - local\n  - {sink: s3, bucket: b}\n  - {bucket: c}\n"
            "moods:\n  explore: {prompt: x}\n" + VALID_TAIL,
            ["5: storage[2]: needs `sink`"],
        ),
        (
            "segue: 1\ncache: {backend: disk, name: redis}\nmoods:\n  explore: {prompt: x}\n"
            + VALID_TAIL,
            ["2: cache: give `backend` or `name`, not both"],
        ),
        (
            "segue: 1\nmoods:\n  explore: {prompt: x}\n"
            "  boss:\n    <<: {prompt: y}\n    bpm: 30\n    bpm: 31\n" + VALID_TAIL,
            ["7: moods.boss.bpm: duplicate key 'bpm' (first on line 6)"],
        ),
    ],
    ids=[
        "prompt-too-long",
        "plan-31-sections",
        "plan-section-name-too-long",
        "plan-31-lines",
        "plan-line-too-long",
        "plan-duration-fraction",
        "bad-date",
        "date-for-number",
        "huge-integer",
        "integer-beyond-float",
        "events-list",
        "moods-list",
        "title-list",
        "condition-nan",
        "condition-bool-key",
        "storage-replica-without-sink",
        "cache-two-names",
        "duplicate-after-merge",
    ],
)
def test_inline_broken_score(tmp_path, text, expect):
    path = write(tmp_path, text)
    assert errors_of(path) == [f"{path}:{e}" for e in expect]


def test_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path, b"segue: 1\nmoods:\n  explore: {prompt: caf\xe9}\n")
    assert errors_of(path) == [f"{path}:3: cannot read score: not UTF-8 text (byte 0xe9)"]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (b"segue: 1\x00\n", "1: invalid YAML: control character U+0000 is not allowed"),
        (
            b"segue: 1\nmoods:\n  a: {prompt: \x1b[31mred}\n",
            "3: invalid YAML: control character U+001B is not allowed",
        ),
    ],
)
def test_control_character_names_the_line(tmp_path, text, expect):
    path = write(tmp_path, text)
    assert errors_of(path) == [f"{path}:{expect}"]


def test_directory_is_one_line(tmp_path):
    assert errors_of(tmp_path) == [f"{tmp_path}: cannot read score: is a directory"]


def test_missing_file_via_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "nope.yaml"]) == 2
    assert capsys.readouterr().err == "nope.yaml: cannot read score: no such file or directory\n"
    # The default SCORE is ./adaptive_score.yaml.
    assert main(["validate"]) == 2
    assert capsys.readouterr().err == (
        "adaptive_score.yaml: cannot read score: no such file or directory\n"
    )


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:6: invalid YAML: more than 200000 nodes")


def test_deep_nesting_is_refused(tmp_path):
    path = write(tmp_path, "segue: 1\nmoods: " + "[" * 3000 + "]" * 3000 + "\n")
    errors = errors_of(path)
    assert len(errors) == 1 and "nested too deeply" in errors[0]


def test_huge_file_is_refused(tmp_path):
    path = write(tmp_path, "segue: 1\n" + "# filler\n" * 600_000)
    assert errors_of(path) == [f"{path}: cannot read score: larger than 4194304 bytes"]


def test_errors_are_sorted_by_line_and_all_reported(tmp_path):
    text = (
        "segue: 1\n"
        "moods:\n"
        "  explore: {prompt: x, bpm: 5}\n"  # 3
        "  combat: {prompt: y, format: aac}\n"  # 4
        "rules:\n"
        "  - {mood: combat, priority: x}\n"  # 6
        "  - {mood: nope}\n"  # 7
        "loudness_lufs: 0\n"  # 8
    )
    path = write(tmp_path, text)
    assert [e.split(":", 2)[1] for e in errors_of(path)] == ["3", "4", "6", "7", "8"]


# --- no input crashes the loader --------------------------------------------------------

EXAMPLE_DOC = yaml.safe_load((Path(__file__).parent.parent / "adaptive_score.yaml").read_text())

WORDS = [
    "segue", "title", "moods", "rules", "prompt", "bpm", "key", "sections", "duration_ms",
    "mood", "when", "from", "to", "at", "fade", "tokens", "name", "sink", "backend", "explore",
    "victory", "*", "all", "any", "not", "lt", "in", "exists", "player.health", "D major",
    "next_bar", "ogg", "", "x" * 300,
]  # fmt: skip


def _paths(node, path=()):
    """Every path into the example document (keys and list indexes)."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


PATHS = list(_paths(EXAMPLE_DOC))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([10**400, -(10**400)])
    | st.floats()
    | st.sampled_from(WORDS)
)
keys = st.sampled_from(WORDS) | st.integers() | st.booleans()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(PATHS), value=values, drop=st.booleans())
def test_any_change_to_the_example_gives_score_errors_never_exceptions(path, value, drop):
    doc = copy.deepcopy(EXAMPLE_DOC)
    if path:
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if drop and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    else:
        doc = value
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    try:
        score = parse_score(text, "fuzz.yaml")
    except ScoreError as exc:
        assert exc.errors
        for line in exc.errors:
            assert line.startswith("fuzz.yaml:") and "\n" not in line, line
    else:
        json.dumps(score.public(), allow_nan=False)
