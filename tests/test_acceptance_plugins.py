"""Acceptance: a third-party plugin written from docs/plugins.md alone, and what a user sees
when it (or the score's options for it) goes wrong: one line naming the plugin and the
score's FILE:LINE, exit status 2, never a traceback.

Plugins are real installed distributions (a module and a ``*.dist-info`` with a ``segue``
entry point on ``sys.path``), found by ``importlib.metadata`` like any ``pip install``.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segue.core import hookimpl
from segue.core.audio import TrackAudio
from segue.core.cli import main
from segue.core.errors import PermanentError, PluginError
from segue.core.plugins import Plugins, reset_plugins
from segue.core.pregen.planning import build_plan, make_generator
from segue.core.score import load_score
from segue.core.track import Track

SCORE = """\
segue: 1
generator: {GENERATOR}
cache: {CACHE}
storage: {STORAGE}
moods:
  calm: {{prompt: calm strings, duration_s: 4, bpm: 90}}
rules:
  - {{mood: calm}}
"""

# A generator as a hurried author writes it from the docs: options as keyword arguments.
TONE = """\
from pathlib import Path

import numpy as np
import soundfile as sf

from segue.core import hookimpl
from segue.core.generator import GeneratedAudio


class Tone:
    name = "tone"
    model = "tone-1"

    def __init__(self, freq=440.0, concurrency=1):
        self.freq = float(freq)
        self.concurrency = int(concurrency)

    def audio_params(self):
        return {"model": self.model, "freq": self.freq}

    def estimate_cost(self, request):
        return 0.0

    def check(self, request):
        pass

    async def generate(self, request, workdir):
        t = np.arange(int(request.duration_s * 8000)) / 8000
        path = Path(workdir) / "tone.wav"
        sf.write(path, 0.2 * np.sin(2 * np.pi * self.freq * t), 8000)
        return GeneratedAudio(path, self.model)

    async def aclose(self):
        pass


class Bare:
    # No audio_params, check or aclose: the documented interface, half written.
    name = "bare"
    model = "bare-1"
    concurrency = 1

    def estimate_cost(self, request):
        return 0.0

    async def generate(self, request, workdir):
        raise NotImplementedError


class Sloppy(Tone):
    # Its own bugs: a price option left a string, a check that trips over itself.
    name = "sloppy"

    def __init__(self, price=0.0, picky=False):
        super().__init__()
        self.price = price
        self.picky = picky

    def estimate_cost(self, request):
        return self.price * request.duration_s

    def check(self, request):
        if self.picky:
            raise ValueError("picky about " + request.mood)


class Sink:
    name = "flaky"

    def __init__(self, root):
        self.root = Path(root)

    async def put(self, filename, src, sha256):
        pass

    def exists(self, filename):
        return False

    def local_path(self, filename):
        return None

    async def open(self, filename, start=0, end=None):
        return b""

    # no list()


def _sink(config, state_dir):
    return Sink(config["root"])      # a KeyError when the score forgets `root`


@hookimpl
def segue_register_generators(register):
    register("tone", lambda config, state_dir: Tone(**config))
    register("bare", lambda config, state_dir: Bare())
    register("sloppy", lambda config, state_dir: Sloppy(**config))


@hookimpl
def segue_register_storage_sinks(register):
    register("flaky", _sink)
"""


def make_dist(root: Path, dist: str, version: str, module: str, source: str) -> None:
    """An installed distribution: ``module.py`` and its dist-info with a segue entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[segue]\n{module} = {module}\n")


@pytest.fixture
def tone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "segue-tone", "1.0.0", "segue_tone", TONE)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("SEGUE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("SEGUE_STRICT_PLUGINS", raising=False)
    reset_plugins()
    yield
    sys.modules.pop("segue_tone", None)
    reset_plugins()


def write_score(
    tmp_path: Path, generator: str = "synth", cache: str = "memory", storage: str = "local"
) -> Path:
    path = tmp_path / "game.yaml"
    path.write_text(SCORE.format(GENERATOR=generator, CACHE=cache, STORAGE=storage))
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err.strip()


def test_a_third_party_factory_refusing_options_is_one_line_naming_plugin_and_line(
    tone: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    score = write_score(tmp_path, generator="{name: tone, freq: 220, bogus: 1}")
    code, err = run(["plan", str(score), "--json"], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        f"segue: {score}:2: generator tone (plugin segue_tone) refused its options"
    )
    assert "TypeError" in err and "bogus" in err
    assert "Traceback" not in err
    # The same options, right: the plan works.
    write_score(tmp_path, generator="{name: tone, freq: 220}")
    assert main(["plan", str(score), "--json"]) == 0


def test_a_generator_missing_interface_methods_names_plugin_and_methods(
    tone: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    score = write_score(tmp_path, generator="bare")
    code, err = run(["plan", str(score)], capsys)
    assert code == 2
    assert err == (
        "segue: plugin segue_tone: generator 'bare' (Bare) does not implement "
        "audio_params, check, aclose (see docs/plugins.md, Interfaces)"
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("price: abc", "estimate_cost raised TypeError: can't multiply sequence by non-int"),
        ("picky: true", "check raised ValueError: picky about calm (mood calm, variant 0)"),
    ],
)
def test_a_generator_method_that_raises_while_planning_names_the_plugin(
    tone: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: str, expected: str
) -> None:
    score = write_score(tmp_path, generator=f"{{name: sloppy, {options}}}")
    code, err = run(["plan", str(score)], capsys)
    assert code == 2
    assert err.startswith(f"segue: plugin segue_tone: generator sloppy: {expected}"), err
    assert len(err.splitlines()) == 1


def test_a_sink_factory_error_and_a_sink_missing_a_method(
    tone: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    score = write_score(tmp_path, storage="[local, {sink: flaky}]")
    code, err = run(["tracks", str(score)], capsys)
    assert code == 2
    assert err.startswith(f"segue: {score}:4: storage sink flaky (plugin segue_tone) refused")
    assert "KeyError: 'root'" in err
    write_score(tmp_path, storage="[local, {sink: flaky, root: x}]")
    code, err = run(["tracks", str(score)], capsys)
    assert code == 2
    assert "storage sink 'flaky' (Sink) does not implement list" in err


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("generator", "{name: synth, bogus: 1}", ":2: generator synth: unknown option 'bogus'"),
        ("generator", "nope", ":2: generator: unknown generator 'nope' (known: "),
        ("cache", "{backend: disk, pth: x}", ":3: cache disk: unknown option(s) pth"),
        # A near miss of a name says what was meant.
        (
            "generator",
            "{name: synth, soundfnt: x}",
            ":2: generator synth: unknown option 'soundfnt' (did you mean 'soundfont'? known: ",
        ),
        ("generator", "synt", ":2: generator: unknown generator 'synt' (did you mean 'synth'? "),
        ("cache", "{backend: disk, pth: x}", ":3: cache disk: unknown option(s) pth (did you mean"),
        ("storage", "{sink: local, pat: x}", ":4: storage local: unknown option(s) pat (did you"),
        ("storage", "[local, locl]", ":4: storage[1]: unknown storage sink 'locl' (did you mean"),
        ("cache", "nosuch", ":3: cache: unknown cache backend 'nosuch'"),
        ("storage", "[local, nosuch]", ":4: storage[1]: unknown storage sink 'nosuch'"),
    ],
)
def test_builtin_option_errors_name_the_score_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.delenv("SEGUE_DISABLE_PLUGINS", raising=False)
    score = write_score(tmp_path, **{field: value})
    code, err = run(["plan", str(score)], capsys)
    assert code == 2
    assert err.startswith(f"segue: {score}{expected}"), err
    assert len(err.splitlines()) == 1


def test_generator_from_the_command_line_has_no_score_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    score = write_score(tmp_path)
    code, err = run(["plan", str(score), "--generator", "nope"], capsys)
    assert code == 2
    assert err.startswith("segue: unknown generator 'nope'")


class Raising:
    @hookimpl
    def segue_transform_prompt(self, request: Any) -> Any:
        raise KeyError("style")


class RaisingProcessor:
    @hookimpl
    def segue_process_track(self, audio: TrackAudio) -> TrackAudio | None:
        raise ZeroDivisionError("no beats")


class RefusingProcessor:
    @hookimpl
    def segue_process_track(self, audio: TrackAudio) -> TrackAudio | None:
        raise PermanentError("too quiet")


def test_a_transformer_that_raises_is_named(tmp_path: Path) -> None:
    plugins = Plugins(load_entry_points=False, extra=[("crashy", Raising())])
    score = load_score(write_score(tmp_path))
    with pytest.raises(PluginError) as info:
        build_plan(score, plugins, make_generator(score, plugins))
    assert str(info.value) == "plugin crashy: segue_transform_prompt raised KeyError: 'style'"


def test_a_processor_that_raises_is_named_and_segue_errors_pass_unchanged(tmp_path: Path) -> None:
    track = Track(id="k", mood="calm", variant=0, format="ogg", duration_s=4.0)
    decoded = TrackAudio(np.zeros((4 * 8000, 1), np.float32), 8000, track)
    builtins_off = ["beat_grid", "loop_points", "loudness"]  # only the plugin under test
    plugins = Plugins(
        load_entry_points=False, extra=[("beatless", RaisingProcessor())], disabled=builtins_off
    )
    with pytest.raises(PluginError, match=r"^plugin beatless: segue_process_track raised Zero"):
        plugins.process_track(decoded)
    plugins = Plugins(
        load_entry_points=False, extra=[("strict", RefusingProcessor())], disabled=builtins_off
    )
    with pytest.raises(PermanentError, match=r"^too quiet$"):
        plugins.process_track(decoded)


class Peak:
    @hookimpl
    def segue_process_track(self, audio: TrackAudio) -> TrackAudio | None:
        return None


# A post-processor written for the hook's old signature (a float WAV edited in place).
OLD_PROCESSOR = """\
import soundfile as sf

from segue.core import hookimpl


@hookimpl
def segue_process_track(track, path):
    samples, sr = sf.read(path, dtype="float32")
    return track.replace(extra={**track.extra, "peak": float(abs(samples).max())})
"""


def test_a_processor_for_the_old_signature_gets_one_line_with_the_new_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "segue-peak", "0.3.0", "segue_peak", OLD_PROCESSOR)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("SEGUE_DISABLE_PLUGINS", raising=False)
    reset_plugins()
    try:
        code, err = run(["plugins"], capsys)
    finally:
        sys.modules.pop("segue_peak", None)
        reset_plugins()
    assert code == 2
    assert err == (
        "segue: plugin segue_peak: segue_process_track(track, path) does not match the hook's "
        "signature segue_process_track(audio): it receives the decoded audio, no longer "
        "(track, path): return audio.replace(track=..., samples=...) or None (docs/plugins.md)"
    )


class First:
    @hookimpl(tryfirst=True)
    def segue_transform_prompt(self, request: Any) -> Any:
        return request.replace(prompt="[first] " + request.prompt)


class Middle:
    @hookimpl
    def segue_transform_prompt(self, request: Any) -> Any:
        return request.replace(prompt=request.prompt + " [middle]")


class Last:
    @hookimpl(trylast=True)
    def segue_transform_prompt(self, request: Any) -> Any:
        return request.replace(prompt=request.prompt + " [last]")


def test_chain_orders_are_the_documented_ones(tmp_path: Path) -> None:
    """docs/plugins.md: the transformer table, and where a post-processor lands."""
    plugins = Plugins(
        load_entry_points=False,
        extra=[("peak", Peak()), ("first", First()), ("middle", Middle()), ("last", Last())],
    )
    assert plugins.processors() == [
        "segue.plugins.beat_grid",
        "peak",
        "segue.plugins.loop_points",
        "segue.plugins.loudness",
    ]
    assert plugins.transformers() == [
        "first",
        "segue.plugins.tempo_key",
        "middle",
        "segue.plugins.instrumental",
        "segue.plugins.style",
        "last",
    ]
    score = load_score(write_score(tmp_path))
    (request,) = [p.request for p in build_plan(score, plugins, make_generator(score, plugins))]
    assert request.prompt == "[first] calm strings, 90 BPM [middle], instrumental [last]"
