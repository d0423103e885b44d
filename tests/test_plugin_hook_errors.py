"""A plugin's notification, route or command hook that raises is named in one line.

docs/plugins.md: ``segue_track_stored``, ``segue_cue`` and ``segue_game_event`` exceptions are
logged and ignored (the other plugins' implementations still run); ``segue_register_routes``
and ``segue_register_commands`` exceptions stop the command with one line naming the plugin.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web

from segue.core import hookimpl
from segue.core.cli import build_parser
from segue.core.errors import PluginError, StorageError
from segue.core.plugins import DEFAULT_PLUGINS, Plugins
from segue.core.pregen.sinks import put_all
from segue.core.track import Track
from segue.plugins.memory_cache import MemoryCache


class Broken:
    @hookimpl
    def segue_track_stored(self, track: Track) -> None:
        raise RuntimeError(f"no room for {track.id}")

    @hookimpl
    def segue_cue(self, session: Any, cue: Any) -> None:
        raise KeyError("mood")

    @hookimpl
    def segue_game_event(self, session: Any, event: dict[str, Any]) -> None:
        raise ValueError("bad\nevent")

    @hookimpl
    def segue_register_routes(self, app: Any) -> None:
        raise RuntimeError("no routes today")

    @hookimpl
    def segue_register_commands(self, subparsers: Any) -> None:
        raise AttributeError("'NoneType' object has no attribute 'add_parser'")


class Listener:
    def __init__(self) -> None:
        self.got: list[str] = []

    @hookimpl
    def segue_track_stored(self, track: Track) -> None:
        self.got.append("stored")

    @hookimpl
    def segue_cue(self, session: Any, cue: Any) -> None:
        self.got.append("cue")

    @hookimpl
    def segue_game_event(self, session: Any, event: dict[str, Any]) -> None:
        self.got.append("event")


def plugins_with(*extra: tuple[str, Any]) -> Plugins:
    return Plugins(load_entry_points=False, disabled=DEFAULT_PLUGINS, extra=list(extra))


@pytest.mark.parametrize(
    ("hook", "kwargs", "said"),
    [
        (
            "segue_track_stored",
            {"track": Track(id="abc", mood="m", variant=0, format="ogg", duration_s=1.0)},
            "RuntimeError: no room for abc",
        ),
        ("segue_cue", {"session": "s1", "cue": "CUE"}, "KeyError: 'mood'"),
        ("segue_game_event", {"session": "s1", "event": {"name": "e"}}, "ValueError: bad event"),
    ],
)
def test_a_raising_notification_is_one_line_naming_the_plugin_and_the_others_still_run(
    hook: str, kwargs: dict[str, Any], said: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The listener is registered first, so pluggy calls the broken plugin before it.
    listener = Listener()
    plugins = plugins_with(("listener", listener), ("broken", Broken()))
    with caplog.at_level(logging.INFO, logger="segue"):
        plugins.notify(hook, **kwargs)
    assert listener.got == [hook.removeprefix("segue_").replace("track_", "").replace("game_", "")]
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in errors] == [f"plugin broken: {hook} raised {said} (ignored)"]
    assert errors[0].exc_info is None  # no traceback unless -v


def test_a_raising_route_hook_names_its_plugin() -> None:
    plugins = plugins_with(("broken", Broken()))
    with pytest.raises(PluginError) as info:
        plugins.register_routes(web.Application())
    assert (
        str(info.value)
        == "plugin broken: segue_register_routes raised RuntimeError: no routes today"
    )


def test_a_raising_command_hook_names_its_plugin() -> None:
    plugins = plugins_with(("broken", Broken()))
    with pytest.raises(PluginError) as info:
        build_parser(plugins=plugins)
    assert str(info.value) == (
        "plugin broken: segue_register_commands raised "
        "AttributeError: 'NoneType' object has no attribute 'add_parser'"
    )


class BuggySink:
    """A storage sink whose ``put`` has a bug (not an OSError nor a segue error)."""

    name = "buggy"

    def __init__(self) -> None:
        self.puts = 0

    async def put(self, filename: str, src: Any, sha256: str) -> None:
        self.puts += 1
        raise TypeError("put() got confused")


async def test_a_sink_that_raises_names_itself_and_is_not_retried(tmp_path: Any) -> None:
    sink = BuggySink()
    track = Track(id="a" * 64, mood="m", variant=0, format="ogg", duration_s=1.0)
    src = tmp_path / "x.ogg"
    src.write_bytes(b"x")
    with pytest.raises(StorageError) as info:
        await put_all([sink], track, src)
    where = f"{BuggySink.__module__}.BuggySink"  # how pytest imported this file
    assert str(info.value) == (f"storage buggy ({where}): put raised TypeError: put() got confused")
    assert sink.puts == 1


class FlakyCache(MemoryCache):
    """A cache backend whose ``get`` has a bug; segue does not guard each cache call."""

    name = "flaky"

    def get(self, key: str) -> Any:
        raise RuntimeError(f"lost {key[:4]}")


class FlakyCachePlugin:
    @hookimpl
    def segue_register_cache_backends(self, register: Any) -> None:
        register("flaky", lambda config, state_dir: FlakyCache())


def test_an_unexpected_error_in_a_plugins_code_names_the_plugin(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from segue.core import cli
    from segue.core import plugins as plugins_module

    loaded = Plugins(load_entry_points=False, extra=[("flaky-cache", FlakyCachePlugin())])
    monkeypatch.setattr(plugins_module, "get_plugins", lambda strict=None: loaded)
    score = tmp_path / "s.yaml"
    score.write_text("segue: 1\ncache: flaky\nmoods:\n  a: {prompt: p}\nrules: [{mood: a}]\n")
    assert cli.main(["plan", str(score)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("segue: plugin flaky-cache: unexpected error: RuntimeError: lost ")
    assert line.endswith(" (run with -v for the traceback)")
