"""Acceptance: the CLI as a new user meets it, against DESIGN section 8.

What it leaves behind, and what it prints when the machine (not the score) is the problem:
one line and exit status 1, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segue.core.cli import main
from segue.core.plugins import reset_plugins

SCORE = """\
segue: 1
moods:
  calm: {prompt: calm strings, duration_s: 4, bpm: 120}
rules:
  - {mood: calm}
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGUE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("SEGUE_STRICT_PLUGINS", raising=False)
    reset_plugins()


def score_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "adaptive_score.yaml"
    path.write_text(SCORE)
    return path


@pytest.mark.parametrize("command", ["plan", "tracks", "pregen"])
def test_a_state_folder_that_cannot_be_made_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    score = score_in(tmp_path / "game")
    (tmp_path / "game" / ".segue").write_text("a file where the state folder goes")
    assert main([command, str(score)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("segue: ") and len(err.splitlines()) == 1, err
    assert ".segue" in err and "Traceback" not in err and "[Errno" not in err


def test_a_tracks_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    score = score_in(tmp_path / "game")
    (tmp_path / "game" / ".segue").mkdir()
    (tmp_path / "game" / ".segue" / "tracks").write_text("")
    assert main(["pregen", str(score)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"segue: file exists: {tmp_path / 'game' / '.segue' / 'tracks'}"


def test_an_unexpected_error_is_one_line_and_v_shows_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue.core.commands import validate

    def broken(args: object) -> int:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(validate, "run", broken)
    score = score_in(tmp_path)
    assert main(["validate", str(score)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "segue: unexpected error: RuntimeError: a bug over two lines "
        "(run with -v for the traceback)"
    )
    with pytest.raises(RuntimeError):
        main(["-v", "validate", str(score)])


BORDERS = "┃│┓┐┫┤┩┘"


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]


def test_tables_fit_80_columns_without_cropping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    score = score_in(tmp_path)
    score.write_text(
        SCORE.replace("calm: {", "a_longer_mood_name: {").replace(
            "mood: calm", "mood: a_longer_mood_name"
        )
    )
    assert main(["pregen", str(score)]) == 0
    capsys.readouterr()
    for command in (["plan", str(score)], ["tracks", str(score)], ["plugins"]):
        assert main(command) == 0
        out = capsys.readouterr().out
        lines = table_lines(out)
        assert lines, out
        for line in lines:
            # Cropped tables lose their right border (and the columns beside it).
            assert len(line) <= 80 and line[-1] in BORDERS, f"{command[0]}: {line!r}"
        if command[0] == "plan":
            assert "est. cost" in out and "$0.00" in out
        if command[0] == "tracks":
            assert "length" in out and "KB" in out
        if command[0] == "plugins":
            # Hook names are never cut in two.
            assert "register_cache_backends" in out and "transform_prompt" in out
