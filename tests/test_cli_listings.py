"""``segue tracks``: the generator column and filters; piped output as whole plain lines."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from segue.core.cli import main
from segue.core.commands import plain_lines
from segue.core.plugins import get_plugins, reset_plugins
from segue.core.pregen.pipeline import Pipeline
from segue.core.score import load_score

SCORE = """\
segue: 1
title: Listings
defaults: {duration_s: 3, format: ogg}
moods:
  explore: {prompt: calm harp, bpm: 120}
  combat: {prompt: taiko battle drums, bpm: 140}
rules:
  - {mood: combat, when: {in_combat: true}}
  - {mood: explore}
"""


@pytest.fixture
def game(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A synth score with both moods generated, plus a combat take recorded as fal's."""
    monkeypatch.delenv("SEGUE_DISABLE_PLUGINS", raising=False)
    path = tmp_path / "adaptive_score.yaml"
    path.write_text(SCORE)
    assert main(["pregen", str(path)]) == 0
    pipeline = Pipeline(load_score(path), get_plugins())
    try:
        combat = pipeline.tracks_for("combat")[0]
        fal_id = "f" * 64
        fal = combat.replace(id=fal_id, variant=1, generator="fal", model="fal-ai/elevenlabs/music")
        src = pipeline.primary.local_path(combat.filename)
        assert src is not None
        asyncio.run(pipeline.primary.put(fal.filename, src, fal.sha256))
        pipeline.cache.set(fal_id, fal)
    finally:
        asyncio.run(pipeline.aclose())
    return path


def tracks_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert main(["tracks", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_tracks_generator_column_and_filters(
    game: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    every = tracks_json(capsys, str(game))
    assert sorted((t["mood"], t["generator"]) for t in every["tracks"]) == [
        ("combat", "fal"),
        ("combat", "synth"),
        ("explore", "synth"),
    ]
    only_fal = tracks_json(capsys, str(game), "--generator", "fal")
    assert [(t["mood"], t["generator"]) for t in only_fal["tracks"]] == [("combat", "fal")]
    assert only_fal["count"] == 1 and only_fal["bytes"] == only_fal["tracks"][0]["bytes"]
    explore = tracks_json(capsys, str(game), "--mood", "explore")
    assert [t["mood"] for t in explore["tracks"]] == ["explore"]
    both = tracks_json(capsys, str(game), "--mood", "explore", "--mood", "combat")
    assert both["count"] == 3
    assert tracks_json(capsys, str(game), "--mood", "combat", "--generator", "synth")["count"] == 1
    # A filter that names nothing known is a typo: said, not an empty list.
    assert main(["tracks", str(game), "--mood", "explor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("segue: --mood explor: no such mood in the score or the stored tracks")
    assert "(did you mean 'explore'?)" in err and len(err.splitlines()) == 1
    assert main(["tracks", str(game), "--generator", "nope"]) == 2
    assert "--generator nope: no such generator" in capsys.readouterr().err

    # Piped: a title, a header and one whole line per track (full ids are 12 characters).
    assert main(["tracks", str(game), "--mood", "combat"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 stored track(s)"
    assert lines[1].split() == [
        "mood", "var", "generator", "format", "length", "bpm", "size", "cost", "id"
    ]  # fmt: skip
    rows = sorted(line.split()[:3] for line in lines[2:4])
    assert rows == [["combat", "0", "synth"], ["combat", "1", "fal"]]
    assert any(line.split()[-1] == "f" * 12 for line in lines[2:4])
    assert lines[-1].startswith("ledger: $")  # after any notes on loops and beats

    # On an 80-column terminal: the rich table, every column readable.
    monkeypatch.setattr("segue.core.commands.tracks.to_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["tracks", str(game)]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    assert "generator" in out and "f" * 12 in out and "explore" in out


def test_plain_lines_keep_values_whole() -> None:
    lines = plain_lines(("a", "long header"), [["x" * 30, "two\nlines"], ["y", ""]])
    assert lines == [
        "a" + " " * 29 + "  long header",
        "x" * 30 + "  two lines",
        "y",
    ]


LONG_DIST = "segue-a-plugin-distribution-with-a-very-long-name-indeed-for-the-listing"


def test_plugins_piped_keeps_a_long_distribution_name_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "segue_longname.py").write_text(
        "from segue.core import hookimpl\n\n"
        "@hookimpl\n"
        "def segue_transform_prompt(request):\n"
        "    return None\n"
    )
    info = site / f"{LONG_DIST.replace('-', '_')}-12.345.6789.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {LONG_DIST}\nVersion: 12.345.6789\n"
    )
    (info / "entry_points.txt").write_text("[segue]\nsegue_longname = segue_longname\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("SEGUE_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    reset_plugins()
    try:
        assert main(["plugins"]) == 0
        piped = capsys.readouterr().out
        # On a terminal the table fits its width, folding what is long, losing nothing.
        monkeypatch.setattr("segue.core.commands.plugins.to_terminal", lambda: True)
        assert main(["plugins"]) == 0
        tty = capsys.readouterr().out
    finally:
        sys.modules.pop("segue_longname", None)
        reset_plugins()
    # Piped: one whole line per plugin, every value in it (hooks and registrations too).
    row = next(line for line in piped.splitlines() if line.startswith("segue_longname "))
    assert row.split() == ["segue_longname", "12.345.6789", LONG_DIST, "transform_prompt"]
    fal = next(line for line in piped.splitlines() if line.startswith("fal "))
    assert "register_commands, register_generators, register_stem_separators" in fal
    assert fal.endswith("generator: fal; stem separator: demucs")
    assert "…" not in piped
    assert max(map(len, tty.splitlines())) <= 80 and "…" not in tty
    folded = "".join(line.split("│")[3].strip() for line in tty.splitlines() if "│" in line)
    assert LONG_DIST in folded
