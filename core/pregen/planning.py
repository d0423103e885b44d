"""From a score to generation requests: one per (mood, variant), after prompt transformers."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segue.core.errors import ConfigError, PermanentError, PluginError, SegueError, error_line
from segue.core.generator import Generator
from segue.core.plugins import Plugins
from segue.core.registry import Registry
from segue.core.request import GenerationRequest
from segue.core.score import PluginChoice, Score
from segue.core.separator import LayerError, StemSeparator, renders_stems

log = logging.getLogger("segue.pipeline")


def generator_choice(score: Score, name: str | None = None) -> PluginChoice:
    """The score's generator, or ``name`` (with the score's options when it is the same one)."""
    if name is None or name == score.generator.name:
        return score.generator
    return PluginChoice(name)  # from the command line: no line in the score


# What the pipeline calls on each kind of object a factory makes (docs/plugins.md,
# "Interfaces"); an object missing one is reported when it is made, naming its plugin.
GENERATOR_METHODS = ("audio_params", "estimate_cost", "check", "generate", "aclose")
CACHE_METHODS = ("get", "set", "delete", "tracks", "record_cost", "ledger", "lock", "close")
SINK_METHODS = ("put", "exists", "local_path", "open", "list")
SEPARATOR_METHODS = ("check", "estimate_cost", "separate", "aclose")


def instantiate(
    score: Score,
    registry: Registry,
    choice: PluginChoice,
    methods: tuple[str, ...],
    label: str,
) -> Any:
    """Make the object ``choice`` names with its registered factory.

    Bad input is one line: an unknown name, or options the factory refuses, named with the
    score's ``FILE:LINE`` when the score writes the choice (``label`` is its path there).
    A factory that fails some other way (a plugin's ``TypeError`` on an option it does not
    take) is reported the same way, naming the plugin, never as a traceback.
    """
    where = f"{_display_path(score.path)}:{choice.line}: " if choice.line else ""
    try:
        registration = registry.get(choice.name)
    except PluginError as exc:
        # "unknown generator 'x'" says what it is; a location says where.
        prefix = f"{where}{label}: " if where or label != "generator" else ""
        raise ConfigError(f"{prefix}{exc}") from None
    try:
        made = registration.factory(dict(choice.options), score.state_dir)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    except (SegueError, OSError):  # OSError: the machine, not the options (exit 1)
        raise
    except Exception as exc:
        raise ConfigError(
            f"{where}{registry.kind} {choice.name} (plugin {registration.plugin}) refused "
            f"its options: {error_line(exc)}"
        ) from None
    missing = [m for m in methods if not callable(getattr(made, m, None))]
    if missing:
        raise PluginError(
            f"plugin {registration.plugin}: {registry.kind} {choice.name!r} "
            f"({type(made).__name__}) does not implement {', '.join(missing)} "
            "(see docs/plugins.md, Interfaces)"
        )
    return made


def make_generator(score: Score, plugins: Plugins, name: str | None = None) -> Generator:
    choice = generator_choice(score, name)
    return instantiate(score, plugins.generators, choice, GENERATOR_METHODS, "generator")


def make_separator(score: Score, plugins: Plugins, generator: Generator) -> StemSeparator | None:
    """The score's stem separator, when some mood has layers the generator cannot render.

    None when the generator renders stems itself, no mood has layers, or the score says
    ``separator: none``. The default (``demucs``, from the fal plugin) is left out, with a
    warning, when it is not registered or cannot work while the generator can (its
    ``preflight`` refuses: no ``FAL_KEY`` for an offline generator); those layers then
    play the mix as one (docs/score.md). A separator the score names is always used.
    """
    choice = score.separator
    if choice is None or renders_stems(generator):
        return None
    if not any(m.layers for m in score.moods.values()):
        return None
    if choice.line:
        return instantiate(score, plugins.separators, choice, SEPARATOR_METHODS, "separator")
    if choice.name not in plugins.separators.entries:
        log.warning(
            "no stem separator %r is registered: moods with layers get no stems", choice.name
        )
        return None
    made = instantiate(score, plugins.separators, choice, SEPARATOR_METHODS, "separator")
    problem = _preflight_problem(made)
    if problem is not None and _preflight_problem(generator) is None:
        # The generator can work without what the separator lacks (an offline generator,
        # no FAL_KEY): leave separation out rather than stop it. A generator that lacks
        # it too (fal) keeps the separator: the plan shows its cost, pregen says why.
        log.warning(
            "no stem separation (moods with layers play the whole mix): %s; "
            "or write `separator: none` in the score",
            problem,
        )
        return None
    return made


def _preflight_problem(made: Any) -> ConfigError | None:
    """What ``made.preflight()`` (optional) refuses, if anything."""
    preflight = getattr(made, "preflight", None)
    try:
        if preflight is not None:
            preflight()
    except ConfigError as exc:
        return exc
    return None


def base_requests(score: Score, generator: Generator) -> list[GenerationRequest]:
    """The requests the score asks for, before prompt transformers.

    Numbers are floats and plans are copies, so the cache key does not depend on whether the
    YAML said ``84`` or ``84.0``, and no transformer can change the score through a request.
    """
    params = {**generator.audio_params(), "loudness_lufs": float(score.loudness_lufs)}
    requests = []
    for mood in score.moods.values():
        for variant in range(mood.variants):
            requests.append(
                GenerationRequest(
                    mood=mood.name,
                    variant=variant,
                    prompt=mood.prompt or "",
                    composition_plan=copy.deepcopy(mood.composition_plan),
                    duration_s=float(mood.duration_s),
                    instrumental=mood.instrumental,
                    bpm=None if mood.bpm is None else float(mood.bpm),
                    key=mood.key,
                    stinger=mood.stinger,
                    output_format=mood.format,
                    generator=generator.name,
                    params=copy.deepcopy(params),
                    layers=tuple(layer.name for layer in mood.layers),
                )
            )
    return requests


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, as errors show it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class PlannedRequest:
    request: GenerationRequest
    cost_usd: float  # the whole estimate: generation plus stem separation
    separation_usd: float = 0.0  # the stem separation's part of it

    @property
    def key(self) -> str:
        return self.request.cache_key


def _ask(registry: Registry, made: Any, method: str, request: GenerationRequest) -> Any:
    """``made.method(request)``; a plugin's own bug (not a SegueError) is one line naming it.

    ``estimate_cost`` must give a number: anything ``float()`` refuses is the plugin's bug too.
    """
    try:
        answer = getattr(made, method)(request)
        return float(answer) if method == "estimate_cost" else answer
    except SegueError:
        raise
    except Exception as exc:
        name = getattr(made, "name", type(made).__name__)
        registration = registry.entries.get(name)
        plugin = registration.plugin if registration else type(made).__module__
        text = error_line(exc)
        raise PluginError(
            f"plugin {plugin}: {registry.kind} {name}: {method} raised {text} "
            f"(mood {request.mood}, variant {request.variant})"
        ) from None


def build_plan(
    score: Score,
    plugins: Plugins,
    generator: Generator,
    separator: StemSeparator | None = None,
) -> list[PlannedRequest]:
    """Every request after the transformer chain, checked against the generator's limits.

    A request the generator refuses (``PermanentError`` from ``check``) is bad input: a
    ``ConfigError`` naming the score file, the mood's line and the mood; a layer the
    ``separator`` cannot give names the layer's line. A request with layers costs its
    separation too.
    """
    plan = []
    for request in base_requests(score, generator):
        final = plugins.transform(request, score)
        mood = score.moods.get(request.mood)
        where = _display_path(score.path) + (f":{mood.line}" if mood and mood.line else "")
        try:
            _ask(plugins.generators, generator, "check", final)
        except PermanentError as exc:
            raise ConfigError(
                f"{where}: moods.{request.mood}: generator {generator.name} refuses "
                f"variant {request.variant}: {' '.join(str(exc).split())}"
            ) from None
        cost = _ask(plugins.generators, generator, "estimate_cost", final)
        separation = 0.0
        if separator is not None and final.layers:
            try:
                _ask(plugins.separators, separator, "check", final)
            except LayerError as exc:
                layer = (
                    next((x for x in mood.layers if x.name == exc.layer), None) if mood else None
                )
                at = f"{_display_path(score.path)}:{layer.line}" if layer and layer.line else where
                raise ConfigError(
                    f"{at}: moods.{request.mood}.layers.{exc.layer}: {' '.join(str(exc).split())}"
                ) from None
            except PermanentError as exc:
                raise ConfigError(
                    f"{where}: moods.{request.mood}: separator {separator.name} refuses "
                    f"variant {request.variant}: {' '.join(str(exc).split())}"
                ) from None
            separation = _ask(plugins.separators, separator, "estimate_cost", final)
        plan.append(PlannedRequest(final, cost + separation, separation))
    return plan
