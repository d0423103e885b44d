"""Acceptance: the CLI as a new user meets it, against README.md and docs/pregeneration.md.

What it leaves behind, and what it prints when the machine (not the score) is the problem:
one line and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
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
    assert main(["tracks", "--json", str(score)]) == 0
    track_id = json.loads(capsys.readouterr().out)["tracks"][0]["id"]
    # As on a terminal (piped, plan, tracks and plugins print plain lines:
    # tests/test_cli_listings.py).
    monkeypatch.setattr("segue.core.commands.plan.to_terminal", lambda: True)
    monkeypatch.setattr("segue.core.commands.tracks.to_terminal", lambda: True)
    monkeypatch.setattr("segue.core.commands.plugins.to_terminal", lambda: True)
    for command in (["plan", str(score)], ["tracks", str(score)], ["plugins"]):
        assert main(command) == 0
        out = capsys.readouterr().out
        if command[0] == "tracks":  # no vertical rules: every line fits, the id is whole
            assert max(map(len, out.splitlines())) <= 80
            assert "length" in out and "KB" in out and "synth" in out
            assert track_id[:12] in out
            continue
        lines = table_lines(out)
        assert lines, out
        for line in lines:
            # Cropped tables lose their right border (and the columns beside it).
            assert len(line) <= 80 and line[-1] in BORDERS, f"{command[0]}: {line!r}"
        if command[0] == "plan":
            assert "est. cost" in out and "$0.00" in out
        if command[0] == "plugins":
            # Hook names are never cut in two.
            assert "register_cache_backends" in out and "transform_prompt" in out


SHARED = """\
segue: 1
generator: fal
moods:
  town: {prompt: a lute by the well, duration_s: 30}
  inn: {prompt: a lute by the well, duration_s: 30}
  night: {prompt: crickets and a slow harp, duration_s: 30}
rules:
  - {mood: town}
"""


def test_moods_sharing_audio_are_counted_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two moods asking for the same audio share one cache key, so one track and one bill;
    plan and pregen must say so (fal: $0.80 a started minute)."""
    import json

    monkeypatch.delenv("FAL_KEY", raising=False)  # planning and dry runs need no key
    score = tmp_path / "adaptive_score.yaml"
    score.write_text(SHARED)
    assert main(["plan", str(score), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["cost_usd"] for r in doc["requests"]] == [0.8, 0.8, 0.8]
    assert doc["totals"] == {
        "requests": 3,
        "missing": 2,
        "cost_usd_missing": 1.6,
        "cost_usd": 1.6,
    }
    assert main(["pregen", str(score), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "would generate 2 of 2 tracks, estimated $1.60"
    assert main(["pregen", str(score), "--dry-run", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["planned"] == 3 and summary["would_generate"] == 2
    # Generating: one track for the two moods.
    score.write_text(SHARED.replace("generator: fal", "generator: synth").replace("30}", "3}"))
    assert main(["pregen", str(score), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["planned"] == 3 and summary["generated"] == 2
    assert len(list((tmp_path / ".segue" / "tracks").iterdir())) == 2
