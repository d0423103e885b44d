"""The ``segue`` entry point: help, version, the strict flag anywhere, plugin sub-commands."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import pytest

from segue.core import __version__, hookimpl
from segue.core.cli import _split_logging, _split_strict, build_parser, main
from segue.core.errors import PluginError
from segue.core.plugins import Plugins


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: segue ")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"segue {__version__}"


@pytest.mark.parametrize(
    ("argv", "rest", "strict"),
    [
        (["plan", "x.yaml"], ["plan", "x.yaml"], False),
        (["--strict-plugins", "plan"], ["plan"], True),
        (["plan", "--strict-plugins", "--json"], ["plan", "--json"], True),
        (["hello", "--", "--strict-plugins"], ["hello", "--", "--strict-plugins"], False),
    ],
)
def test_the_strict_flag_is_taken_from_anywhere_before_a_double_dash(
    argv: list[str], rest: list[str], strict: bool
) -> None:
    assert _split_strict(argv) == (rest, strict)


@pytest.mark.parametrize(
    ("argv", "rest", "verbose", "as_json"),
    [
        (["serve", "x.yaml"], ["serve", "x.yaml"], False, False),
        (["-v", "serve"], ["serve"], True, False),
        (["serve", "-v", "--port", "0"], ["serve", "--port", "0"], True, False),
        (["serve", "--verbose", "--log-json"], ["serve"], True, True),
        (["--log-json", "pregen"], ["pregen"], False, True),
        (["hello", "--", "-v"], ["hello", "--", "-v"], False, False),
    ],
)
def test_the_logging_flags_are_taken_from_anywhere_before_a_double_dash(
    argv: list[str], rest: list[str], verbose: bool, as_json: bool
) -> None:
    assert _split_logging(argv) == (rest, verbose, as_json)


def test_verbose_after_the_command_is_accepted(tmp_path: Any, capsys: Any) -> None:
    score = tmp_path / "adaptive_score.yaml"
    assert main(["init", str(score), "-v"]) == 0
    assert main(["validate", str(score), "--log-json"]) == 0
    assert "ok" in capsys.readouterr().out


def test_commands_get_the_processs_plugins(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    class Hello:
        @hookimpl
        def segue_register_commands(self, subparsers: Any) -> None:
            p = subparsers.add_parser("hello")
            p.set_defaults(func=lambda args: seen.append(args.plugins) or 0)

    plugins = Plugins(load_entry_points=False, disabled=(), extra=[("hello", Hello())])
    monkeypatch.setattr("segue.core.plugins.get_plugins", lambda strict=None: plugins)
    assert main(["hello"]) == 0
    assert seen == [plugins]


def test_a_plugin_command_that_clashes_is_an_error_naming_the_plugin() -> None:
    class Clash:
        @hookimpl
        def segue_register_commands(self, subparsers: argparse._SubParsersAction) -> None:
            subparsers.add_parser("plan")

    plugins = Plugins(load_entry_points=False, disabled=(), extra=[("clash", Clash())])
    with pytest.raises(PluginError, match=r"^plugin clash: segue_register_commands: "):
        build_parser(plugins=plugins)


def test_a_closed_pipe_is_not_a_traceback() -> None:
    code = (
        "import sys, os\n"
        "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
        "from segue.core.cli import main\n"
        "sys.exit(main(['plugins', '--json']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in out.stderr
    assert out.returncode == 1
