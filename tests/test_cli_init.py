"""``segue init``: a starter score that validates and serves; never over an existing file.
And every command that reads a score says in ``--help`` what SCORE defaults to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segue.core.cli import build_parser, main
from segue.core.commands.init import STARTER
from segue.core.engine.director import Director
from segue.core.score import load_score


def test_init_writes_a_starter_that_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    path = tmp_path / "adaptive_score.yaml"
    assert path.read_text() == STARTER
    assert "wrote adaptive_score.yaml" in capsys.readouterr().out
    assert main(["validate"]) == 0
    assert "ok — 3 moods, 2 rules, 1 event, 3 transitions" in capsys.readouterr().out
    score = load_score(path)
    # Commented, and short: a user edits it rather than deleting most of it.
    comments = [line for line in STARTER.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 8 and len(STARTER.splitlines()) < 70
    # A new session hears the default mood; the event plays its stinger.
    director = Director("s", score, lambda mood: ())
    assert [p.mood for p in director.start(0.0)] == ["explore"]
    assert score.events["enemy_defeated"].stinger == "victory"


def test_the_starters_plan_lists_no_word_the_synth_ignores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A new user's first `segue plan` (before: "explore: synth ignores the words:
    # unhurried", "victory: synth ignores the words: short").
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["plan", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["generator"] == "synth"
    assert {r["mood"]: r["ignored_words"] for r in doc["requests"]} == {
        "explore": [],
        "combat": [],
        "victory": [],
    }


def test_init_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "adaptive_score.yaml"
    path.write_text("segue: 1  # mine\n")
    assert main(["init"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "segue: adaptive_score.yaml exists; not overwritten (edit it, or name a new file)"
    assert path.read_text() == "segue: 1  # mine\n"
    assert main(["init", "other.yaml"]) == 0
    assert (tmp_path / "other.yaml").read_text() == STARTER


def test_init_makes_the_folders_it_is_given_and_names_the_file_in_its_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "game/music/score.yaml"]) == 0
    assert (tmp_path / "game/music/score.yaml").read_text() == STARTER
    assert capsys.readouterr().out.strip() == (
        "wrote game/music/score.yaml: edit it, then `segue validate game/music/score.yaml` "
        "and `segue serve game/music/score.yaml`"
    )
    assert main(["validate", "game/music/score.yaml"]) == 0


@pytest.mark.parametrize("command", ["validate", "plan", "pregen", "serve", "tracks", "init"])
def test_every_help_says_what_score_defaults_to(command: str) -> None:
    parser = build_parser(with_plugin_commands=False)
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    assert "(default: ./adaptive_score.yaml)" in " ".join(sub.format_help().split())
