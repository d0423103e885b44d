"""Plugin loading: built-ins, entry points, failures, strict mode, disabling, hook checks,
registries, the transform and process_track chains, and the CLI's single load per process.

Entry points are real: each test plugin is a module plus a ``*.dist-info`` folder with an
``entry_points.txt`` on ``sys.path`` (what ``pip install --target`` leaves), discovered by
``importlib.metadata`` exactly as an installed distribution is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segue.core import __version__, hookimpl
from segue.core.audio import TrackAudio
from segue.core.errors import PluginError
from segue.core.plugins import DEFAULT_PLUGINS, Plugins, get_plugins, reset_plugins
from segue.core.request import GenerationRequest
from segue.core.track import Track

REPO = Path(__file__).resolve().parents[1]


def make_dist(root: Path, dist: str, version: str, module: str, source: str, ep: str) -> None:
    """An installed distribution: ``module.py`` and its dist-info with a segue entry point."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[segue]\n{ep} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install test distributions into a folder on sys.path; forget their modules afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("SEGUE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("SEGUE_STRICT_PLUGINS", raising=False)
    modules: list[str] = []

    def install(dist: str, version: str, module: str, source: str, ep: str | None = None) -> Path:
        make_dist(root, dist, version, module, source, ep or module)
        modules.append(module)
        return root

    install.root = root  # type: ignore[attr-defined]
    yield install
    for module in modules:
        sys.modules.pop(module, None)
    reset_plugins()


TRANSFORMER = """
from segue.core import hookimpl

@hookimpl
def segue_transform_prompt(request):
    return request.replace(prompt=request.prompt + ", {phrase}")
"""

BROKEN = """
raise RuntimeError("no config for the broken plugin")
"""


def request(**changes: Any) -> GenerationRequest:
    base = GenerationRequest(mood="explore", variant=0, prompt="harp", instrumental=False)
    return base.replace(**changes)


# --- built-ins and entry points ---------------------------------------------------------


def test_builtins_are_registered_by_dotted_name_with_segues_version() -> None:
    plugins = Plugins(load_entry_points=False, disabled=())
    infos = {i.name: i for i in plugins.info()}
    for name in ("segue.plugins.style", "segue.plugins.tempo_key", "segue.plugins.instrumental"):
        assert name in DEFAULT_PLUGINS
        assert infos[name].source == "builtin"
        assert infos[name].version == __version__
        assert infos[name].hooks == ["segue_transform_prompt"]
    assert plugins.failures == []


def test_entry_point_plugin_is_loaded_with_its_distribution_and_version(site: Any) -> None:
    site("segue-shout", "1.2.3", "segue_shout", TRANSFORMER.format(phrase="LOUD"), ep="shout")
    plugins = Plugins(disabled=())
    info = {i.name: i for i in plugins.info()}["shout"]
    assert (info.source, info.version) == ("segue-shout", "1.2.3")
    assert info.hooks == ["segue_transform_prompt"]
    assert plugins.transform(request(), None).prompt.startswith("harp, LOUD")


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(site: Any) -> None:
    site("segue-bad", "0.3.1", "segue_bad", BROKEN, ep="bad")
    site("segue-good", "2.0", "segue_good", TRANSFORMER.format(phrase="good"), ep="good")
    plugins = Plugins(strict=False, disabled=())
    assert [(f.name, f.version) for f in plugins.failures] == [("bad", "0.3.1")]
    assert plugins.failures[0].reason == "RuntimeError: no config for the broken plugin"
    assert str(plugins.failures[0]) == (
        "plugin bad 0.3.1 failed to load and was skipped: "
        "RuntimeError: no config for the broken plugin"
    )
    names = [i.name for i in plugins.info()]
    assert "good" in names and "bad" not in names
    assert plugins.to_dict()["failures"] == [
        {
            "name": "bad",
            "version": "0.3.1",
            "reason": "RuntimeError: no config for the broken plugin",
        }
    ]


def test_strict_makes_an_import_failure_fatal(site: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    site("segue-bad", "0.3.1", "segue_bad", BROKEN, ep="bad")
    with pytest.raises(PluginError) as info:
        Plugins(strict=True, disabled=())
    assert str(info.value) == (
        "plugin bad 0.3.1 failed to load: RuntimeError: no config for the broken plugin"
    )
    monkeypatch.setenv("SEGUE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"plugin bad 0\.3\.1"):
        Plugins(disabled=())
    monkeypatch.setenv("SEGUE_STRICT_PLUGINS", "0")
    assert Plugins(disabled=()).failures[0].name == "bad"


def test_disable_by_entry_point_dotted_or_short_name(
    site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    site("segue-bad", "0.3.1", "segue_bad", BROKEN, ep="bad")
    site("segue-good", "2.0", "segue_good", TRANSFORMER.format(phrase="good"), ep="good")
    monkeypatch.setenv("SEGUE_DISABLE_PLUGINS", " bad, segue.plugins.style,tempo_key ,good")
    plugins = Plugins(strict=True)  # the broken one is off, so strict loading succeeds
    names = {i.name for i in plugins.info()}
    assert not names & {"bad", "good", "segue.plugins.style", "segue.plugins.tempo_key"}
    assert "segue.plugins.instrumental" in names
    assert set(plugins.disabled) == {
        "bad",
        "good",
        "segue.plugins.style",
        "segue.plugins.tempo_key",
    }
    assert plugins.transformers() == ["segue.plugins.instrumental"]


def test_a_disabled_name_that_is_no_plugin_is_a_warning_with_a_suggestion(
    site: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    site("segue-good", "2.0", "segue_good", TRANSFORMER.format(phrase="good"), ep="good")
    monkeypatch.setenv("SEGUE_DISABLE_PLUGINS", "stlye,good,loudness,nothing-like-it")
    with caplog.at_level("WARNING", logger="segue.plugins"):
        plugins = Plugins()
    warned = [r.getMessage() for r in caplog.records if "SEGUE_DISABLE_PLUGINS" in r.getMessage()]
    assert warned == [
        "SEGUE_DISABLE_PLUGINS: no plugin is named 'nothing-like-it'",
        "SEGUE_DISABLE_PLUGINS: no plugin is named 'stlye' (did you mean 'style'?)",
    ]
    assert "segue.plugins.style" in {i.name for i in plugins.info()}  # the typo left it on
    assert set(plugins.disabled) == {"good", "segue.plugins.loudness"}


def test_extra_plugins_can_be_disabled_and_named_or_not() -> None:
    class Loud:
        @hookimpl
        def segue_transform_prompt(self, request: GenerationRequest) -> GenerationRequest:
            return request.replace(prompt=request.prompt + "!")

    plugins = Plugins(
        load_entry_points=False, disabled=(), extra=[Loud(), Loud(), ("named", Loud())]
    )
    assert [n for n in plugins.transformers() if not n.startswith("segue.")] == [
        "named",
        "Loud#2",
        "Loud",
    ]
    assert plugins.sources["named"] == "extra"
    quiet = Plugins(load_entry_points=False, disabled=("named",), extra=[("named", Loud())])
    assert "named" not in quiet.transformers() and quiet.disabled == ["named"]


def test_a_builtin_missing_an_optional_dependency_is_skipped_with_a_note(
    site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    site("segue-fake-s3", "1.0", "fake_s3_sink", "import boto3\n", ep="unused")
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the s3 extra were not installed
    monkeypatch.setattr("segue.core.plugins.DEFAULT_PLUGINS", ("fake_s3_sink",))
    plugins = Plugins(load_entry_points=False, strict=True)
    assert plugins.failures == []
    assert plugins.skipped == {
        "fake_s3_sink": "needs boto3, which is not installed (pip install 'segue[s3]')"
    }
    assert plugins.to_dict()["skipped"] == [
        {"name": "fake_s3_sink", "reason": plugins.skipped["fake_s3_sink"]}
    ]


def test_every_builtin_imports_and_a_missing_one_is_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugins = Plugins(load_entry_points=False, disabled=(), strict=True)
    assert [name for name, _ in plugins.pm.list_name_plugin()] == list(DEFAULT_PLUGINS)
    monkeypatch.setattr(
        "segue.core.plugins.DEFAULT_PLUGINS", (*DEFAULT_PLUGINS, "segue.plugins.nonexistent")
    )
    lenient = Plugins(load_entry_points=False, disabled=(), strict=False)
    assert [f.to_dict() for f in lenient.failures] == [
        {
            "name": "segue.plugins.nonexistent",
            "version": __version__,
            "reason": "ModuleNotFoundError: No module named 'segue.plugins.nonexistent'",
        }
    ]
    with pytest.raises(PluginError, match=r"^plugin segue\.plugins\.nonexistent "):
        Plugins(load_entry_points=False, disabled=(), strict=True)


# --- hook validation ----------------------------------------------------------------------


def test_a_misspelt_hook_is_an_error_naming_its_plugin(site: Any) -> None:
    site(
        "segue-typo",
        "0.1",
        "segue_typo",
        """
        from segue.core import hookimpl

        @hookimpl
        def segue_transfrom_prompt(request):
            return request
        """,
        ep="typo",
    )
    with pytest.raises(PluginError) as info:
        Plugins(strict=False, disabled=())
    assert str(info.value) == (
        "plugin typo: unknown hook segue_transfrom_prompt (did you mean segue_transform_prompt?)"
    )


def test_a_hook_with_an_unknown_argument_is_an_error_naming_its_plugin() -> None:
    class Odd:
        @hookimpl
        def segue_transform_prompt(self, request: Any, mood: Any) -> None:
            return None

    with pytest.raises(PluginError, match=r"^plugin odd: .*mood"):
        Plugins(load_entry_points=False, disabled=(), extra=[("odd", Odd())])


def test_wrappers_cannot_join_a_chain() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def segue_transform_prompt(self, request: Any) -> Any:
            return (yield)

    with pytest.raises(PluginError, match="plugin wrap: segue_transform_prompt is a chain"):
        Plugins(load_entry_points=False, disabled=(), extra=[("wrap", Wrapper())])


# --- registries ---------------------------------------------------------------------------


def registrar(hook: str, name: str, factory: Any = dict) -> Any:
    class Registrar:
        pass

    def register_hook(register: Any) -> None:
        register(name, factory)

    setattr(Registrar, hook, staticmethod(hookimpl(specname=hook)(register_hook)))
    return Registrar()


@pytest.mark.parametrize(
    ("hook", "kind", "attr"),
    [
        ("segue_register_generators", "generator", "generators"),
        ("segue_register_cache_backends", "cache backend", "caches"),
        ("segue_register_storage_sinks", "storage sink", "sinks"),
    ],
)
def test_registries_refuse_a_duplicate_name_naming_both_plugins(
    hook: str, kind: str, attr: str
) -> None:
    one = Plugins(load_entry_points=False, disabled=(), extra=[("alpha", registrar(hook, "thing"))])
    registration = getattr(one, attr).get("thing")
    assert (registration.plugin, registration.factory) == ("alpha", dict)
    info = {i.name: i for i in one.info()}["alpha"]
    assert info.registered == {kind: ["thing"]} and info.hooks == [hook]

    with pytest.raises(PluginError) as exc:
        Plugins(
            load_entry_points=False,
            disabled=(),
            extra=[("alpha", registrar(hook, "thing")), ("beta", registrar(hook, "thing"))],
        )
    assert str(exc.value) == f"{kind} 'thing' is registered by two plugins: alpha and beta"


def test_unknown_registry_name_lists_the_known_ones() -> None:
    plugins = Plugins(
        load_entry_points=False,
        disabled=(),
        extra=[("a", registrar("segue_register_generators", "zeta"))],
    )
    with pytest.raises(PluginError, match=r"unknown generator 'nope' \(known: .*zeta"):
        plugins.generators.get("nope")


def test_a_register_hook_that_raises_is_an_error_naming_its_plugin() -> None:
    class Bad:
        @hookimpl
        def segue_register_generators(self, register: Any) -> None:
            raise KeyError("oops")

    with pytest.raises(PluginError) as exc:
        Plugins(load_entry_points=False, disabled=(), extra=[("bad", Bad())])
    assert str(exc.value) == "plugin bad: segue_register_generators raised KeyError: 'oops'"


# --- chains -------------------------------------------------------------------------------


def tagger(tag: str, **opts: Any) -> Any:
    class Tagger:
        @hookimpl(**opts)
        def segue_transform_prompt(self, request: GenerationRequest) -> GenerationRequest:
            return request.replace(prompt=f"{request.prompt}>{tag}")

    return (tag, Tagger())


def test_transform_chain_follows_pluggys_call_order() -> None:
    plugins = Plugins(
        load_entry_points=False,
        disabled=("style", "tempo_key", "instrumental"),
        extra=[
            tagger("last", trylast=True),
            tagger("first", tryfirst=True),
            tagger("a"),
            tagger("b"),
            tagger("first2", tryfirst=True),
        ],
    )
    # tryfirst (last registered first), then the rest last-registered-first, then trylast.
    expected = ["first2", "first", "b", "a", "last"]
    assert plugins.transformers() == expected
    assert plugins.transform(request(prompt="x"), None).prompt == "x>" + ">".join(expected)
    # The same order pluggy itself uses when it calls the hook.
    order = [impl.plugin_name for impl in plugins.pm.hook.segue_transform_prompt._hookimpls[::-1]]
    assert order == expected


def test_each_transformer_sees_the_previous_output_and_none_keeps_it() -> None:
    seen: list[str] = []

    class Watcher:
        @hookimpl(trylast=True)
        def segue_transform_prompt(self, request: GenerationRequest, score: Any) -> None:
            seen.append(f"{request.prompt}|{score}")

    plugins = Plugins(
        load_entry_points=False,
        disabled=("style", "tempo_key", "instrumental"),
        extra=[("watch", Watcher()), tagger("t")],
    )
    out = plugins.transform(request(prompt="p"), "SCORE")
    assert out.prompt == "p>t" and seen == ["p>t|SCORE"]


def test_a_transformer_returning_the_wrong_type_is_named() -> None:
    class Wrong:
        @hookimpl
        def segue_transform_prompt(self, request: GenerationRequest) -> str:
            return request.prompt

    plugins = Plugins(load_entry_points=False, disabled=(), extra=[("wrong", Wrong())])
    with pytest.raises(PluginError, match="plugin wrong: segue_transform_prompt returned str"):
        plugins.transform(request(), None)


def test_process_track_chain(tmp_path: Path) -> None:
    calls: list[tuple[str, Any]] = []

    class Gain:
        @hookimpl(tryfirst=True)
        def segue_process_track(self, audio: TrackAudio) -> TrackAudio:
            calls.append(("gain", float(audio.samples.max())))
            track = audio.track.replace(loudness_lufs=-16.0)
            return audio.replace(samples=audio.samples * 2, track=track)

    class Tempo:
        @hookimpl
        def segue_process_track(self, audio: TrackAudio) -> TrackAudio:
            calls.append(("tempo", (audio.track.loudness_lufs, float(audio.samples.max()))))
            track = audio.track
            return audio.replace(
                track=track.replace(bpm=120.0, extra={**track.extra, "tempo_checked": True})
            )

    class Observer:
        @hookimpl(trylast=True)
        def segue_process_track(self, audio: TrackAudio) -> None:
            calls.append(("observe", audio.track.bpm))

    plugins = Plugins(
        load_entry_points=False,
        disabled=DEFAULT_PLUGINS,
        extra=[("observer", Observer()), ("tempo", Tempo()), ("gain", Gain())],
    )
    track = Track(id="k", mood="m", variant=0, format="ogg", duration_s=4.0)
    samples = np.full((8, 2), 0.25, np.float32)
    given = TrackAudio(samples, 8000, track)
    out = plugins.process_track(given)
    assert (out.track.loudness_lufs, out.track.bpm) == (-16.0, 120.0)
    assert out.track.extra == {"tempo_checked": True}
    assert out.samples.dtype == np.float32 and float(out.samples.max()) == 0.5
    assert calls == [("gain", 0.25), ("tempo", (-16.0, 0.5)), ("observe", 120.0)]
    assert plugins.processors() == ["gain", "tempo", "observer"]
    assert plugins.to_dict()["process_order"] == ["gain", "tempo", "observer"]
    # The input is not changed, and cannot be written to through what a plugin is given.
    assert track.bpm is None and float(samples.max()) == 0.25
    assert given.samples.flags.writeable is False and samples.flags.writeable is True

    class InPlace:
        @hookimpl
        def segue_process_track(self, audio: TrackAudio) -> None:
            audio.samples[:] = 0.0

    class Bad:
        @hookimpl
        def segue_process_track(self, audio: TrackAudio) -> dict[str, Any]:
            return {}

    class OldReturn:
        @hookimpl
        def segue_process_track(self, audio: TrackAudio) -> Track:
            return audio.track

    class Broken:
        @hookimpl
        def segue_process_track(self, audio: TrackAudio) -> TrackAudio:
            return audio.replace(samples=audio.samples * np.float32(np.inf))

    for name, plugin, message in [
        ("inplace", InPlace(), "plugin inplace: segue_process_track raised ValueError: "),
        ("bad", Bad(), "plugin bad: segue_process_track returned dict, not a TrackAudio$"),
        ("old", OldReturn(), r"returned Track, not a TrackAudio \(return audio.replace\(track"),
        ("broken", Broken(), "plugin broken: segue_process_track returned non-finite samples"),
    ]:
        one = Plugins(load_entry_points=False, disabled=DEFAULT_PLUGINS, extra=[(name, plugin)])
        with pytest.raises(PluginError, match=message):
            one.process_track(given)
    assert float(samples.max()) == 0.25


def test_a_processor_with_the_old_signature_is_refused_naming_the_new_one() -> None:
    """A post-processor written for ``(track, path)``: one line, the plugin and the new hook."""

    class Old:
        @hookimpl
        def segue_process_track(self, track: Track, path: Path) -> Track | None:
            return None

    with pytest.raises(PluginError) as info:
        Plugins(load_entry_points=False, extra=[("old-peak", Old())])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "plugin old-peak: segue_process_track(track, path) does not match the hook's "
        "signature segue_process_track(audio): it receives the decoded audio"
    )


def test_notification_hooks_reach_every_plugin() -> None:
    """The notification hooks exist with these argument names and call every implementation."""
    got: list[tuple[str, str, Any]] = []

    def listener(tag: str) -> Any:
        class Listener:
            @hookimpl
            def segue_track_stored(self, track: Track) -> None:
                got.append((tag, "stored", track.id))

            @hookimpl
            def segue_cue(self, session: Any, cue: Any) -> None:
                got.append((tag, "cue", (session, cue)))

            @hookimpl
            def segue_game_event(self, session: Any, event: dict[str, Any]) -> None:
                got.append((tag, "event", (session, event["name"])))

            @hookimpl
            def segue_register_routes(self, app: Any) -> None:
                got.append((tag, "routes", app))

            @hookimpl
            def segue_register_commands(self, subparsers: Any) -> None:
                got.append((tag, "commands", subparsers))

        return (tag, Listener())

    plugins = Plugins(
        load_entry_points=False, disabled=DEFAULT_PLUGINS, extra=[listener("x"), listener("y")]
    )
    hook = plugins.pm.hook
    track = Track(id="abc", mood="m", variant=0, format="ogg", duration_s=1.0)
    hook.segue_track_stored(track=track)
    hook.segue_cue(session="s1", cue="CUE")
    hook.segue_game_event(session="s1", event={"name": "boss_defeated", "data": {}})
    hook.segue_register_routes(app="APP")
    hook.segue_register_commands(subparsers="SUB")
    assert sorted(got, key=str) == sorted(
        [
            (t, kind, value)
            for t in ("x", "y")
            for kind, value in [
                ("stored", "abc"),
                ("cue", ("s1", "CUE")),
                ("event", ("s1", "boss_defeated")),
                ("routes", "APP"),
                ("commands", "SUB"),
            ]
        ],
        key=str,
    )
    hooks = {i.name: i.hooks for i in plugins.info()}["x"]
    assert len(hooks) == 5


# --- the process-wide instance and the CLI -------------------------------------------------


def test_get_plugins_is_loaded_once_per_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGUE_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("SEGUE_DISABLE_PLUGINS", raising=False)
    reset_plugins()
    try:
        first = get_plugins()
        assert get_plugins() is first
        monkeypatch.setenv("SEGUE_DISABLE_PLUGINS", "style")
        other = get_plugins()
        assert other is not first and "segue.plugins.style" in other.disabled
    finally:
        reset_plugins()


def run_segue(args: list[str], pythonpath: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    full_env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), full_env.get("PYTHONPATH", "")])
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "segue.core", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        cwd=pythonpath,
    )


COMMAND_PLUGIN = """
from segue.core import hookimpl

def _run(args):
    print("hello from", args.who, "plugins loaded:", len(args.plugins.info()))
    return 0

@hookimpl
def segue_register_commands(subparsers):
    p = subparsers.add_parser("hello", help="say hello")
    p.add_argument("who")
    p.set_defaults(func=_run)
"""


def test_cli_reports_a_failed_plugin_once_and_runs_plugin_commands(site: Any) -> None:
    site("segue-bad", "0.3.1", "segue_bad", BROKEN, ep="bad")
    site("segue-hello", "1.0", "segue_hello", COMMAND_PLUGIN, ep="hello")
    out = run_segue(["hello", "world"], site.root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("hello from world plugins loaded: ")
    assert out.stderr.count("plugin bad 0.3.1 failed to load and was skipped") == 1
    assert "Traceback" not in out.stderr

    listed = run_segue(["plugins", "--json"], site.root)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["failures"] == [
        {
            "name": "bad",
            "version": "0.3.1",
            "reason": "RuntimeError: no config for the broken plugin",
        }
    ]
    hello = {p["name"]: p for p in data["plugins"]}["hello"]
    assert hello == {
        "name": "hello",
        "version": "1.0",
        "source": "segue-hello",
        "hooks": ["segue_register_commands"],
        "registered": {},
    }
    assert listed.stderr.count("failed to load") == 1


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--strict-plugins", "plugins"], {}),
        (["plugins", "--strict-plugins"], {}),
        (["plugins", "--json"], {"SEGUE_STRICT_PLUGINS": "1"}),
    ],
)
def test_cli_strict_plugins_exits_2_with_one_line(
    site: Any, args: list[str], env: dict[str, str]
) -> None:
    site("segue-bad", "0.3.1", "segue_bad", BROKEN, ep="bad")
    out = run_segue(args, site.root, **env)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "segue: plugin bad 0.3.1 failed to load: RuntimeError: no config for the broken plugin"
    ]
    assert out.stdout == ""


def test_cli_misspelt_hook_exits_2_naming_the_plugin(site: Any) -> None:
    site(
        "segue-typo",
        "0.1",
        "segue_typo",
        "from segue.core import hookimpl\n\n"
        "@hookimpl\ndef segue_transfrom_prompt(request):\n    pass\n",
        ep="typo",
    )
    out = run_segue(["plugins"], site.root)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "segue: plugin typo: unknown hook segue_transfrom_prompt "
        "(did you mean segue_transform_prompt?)"
    )
    # Disabling it is the way out.
    assert run_segue(["plugins"], site.root, SEGUE_DISABLE_PLUGINS="typo").returncode == 0


def test_cli_plugins_table_lists_plugins_and_failures(site: Any) -> None:
    site("segue-bad", "0.3.1", "segue_bad", BROKEN, ep="bad")
    out = run_segue(["plugins"], site.root, COLUMNS="200")
    assert out.returncode == 0, out.stderr
    for text in ("segue.plugins.style", "builtin", __version__, "transform_prompt"):
        assert text in out.stdout
    assert "failed: plugin bad 0.3.1 failed to load and was skipped" in out.stdout
    assert "segue.plugins.tempo_key → segue.plugins.instrumental → segue.plugins.style" in (
        out.stdout
    )
