"""The plugin manager: built-ins by dotted name, extra objects, then the ``segue`` entry points.

Loading order (which is also pluggy's registration order, so it decides the call order of
hooks with the same priority: the last registered is called first):

1. the built-ins in ``DEFAULT_PLUGINS``, imported by dotted name (``segue.core`` never imports
   ``segue.plugins``);
2. the ``segue`` entry points of installed distributions, one at a time;
3. ``extra`` plugin objects given by the caller (tests, an application embedding segue).

Then ``check_pending()``, then the registries are built.

A plugin that fails to import is reported (name, version, reason) and skipped; with
``strict`` (``--strict-plugins`` / ``SEGUE_STRICT_PLUGINS=1``) it is fatal. A hook
implementation that matches no hookspec (a misspelt hook name) is always an error naming
its plugin.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from segue.core import __version__, hookspecs
from segue.core.conditions import suggest
from segue.core.errors import PluginError, SegueError, error_line
from segue.core.registry import Registry
from segue.core.request import GenerationRequest

if TYPE_CHECKING:
    from segue.core.audio import TrackAudio

log = logging.getLogger("segue.plugins")

ENTRY_POINT_GROUP = "segue"

# Built-in plugins, loaded by name so that segue.core never imports segue.plugins.
# The order matters for prompt transformers of equal priority (see docs/plugins.md).
DEFAULT_PLUGINS: tuple[str, ...] = (
    "segue.plugins.style",
    "segue.plugins.tempo_key",
    "segue.plugins.instrumental",
    "segue.plugins.synth",
    "segue.plugins.fal",
    "segue.plugins.disk_cache",
    "segue.plugins.memory_cache",
    "segue.plugins.redis_cache",
    "segue.plugins.local_storage",
    "segue.plugins.s3_storage",
    "segue.plugins.loudness",
    "segue.plugins.beat_grid",
    "segue.plugins.loop_points",
)

# Hooks whose signature changed: a plugin written for the old one gets this hint.
CHANGED_HOOKS: dict[str, str] = {
    "segue_process_track": "it receives the decoded audio, no longer (track, path): "
    "return audio.replace(track=..., samples=...) or None (docs/plugins.md)",
}

# Third-party modules that only optional extras install: a built-in that needs one of them
# is skipped with a note (not a failure) when it is missing.
OPTIONAL_DEPENDENCIES: dict[str, str] = {"redis": "redis", "boto3": "s3", "botocore": "s3"}


@dataclass
class PluginFailure:
    name: str
    version: str | None
    reason: str

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"plugin {self.name}{version} failed to load and was skipped: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "reason": self.reason}


@dataclass
class PluginInfo:
    name: str
    version: str | None
    hooks: list[str]
    source: str  # "builtin", "extra", or the distribution's name
    registered: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "hooks": list(self.hooks),
            "registered": {k: list(v) for k, v in self.registered.items()},
        }


def disabled_from_env() -> set[str]:
    """Names in ``SEGUE_DISABLE_PLUGINS`` (comma-separated)."""
    raw = os.environ.get("SEGUE_DISABLE_PLUGINS", "")
    return {n.strip() for n in raw.split(",") if n.strip()}


def strict_from_env() -> bool:
    return os.environ.get("SEGUE_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _call_chained(impl: Any, hook: str, available: dict[str, Any]) -> Any:
    """Call one implementation of a chained hook; a bug in it names its plugin.

    segue's own errors (a ``PermanentError`` from a post-processor, say) pass unchanged:
    they already say what went wrong and the pipeline knows what to do with them.
    """
    try:
        return impl.function(**{arg: available[arg] for arg in impl.argnames})
    except SegueError:
        raise
    except Exception as exc:
        raise PluginError(f"plugin {impl.plugin_name}: {hook} raised {error_line(exc)}") from exc


def _stems_follow(before: TrackAudio, after: TrackAudio) -> TrackAudio:
    """``after`` with stems a plugin left as they were following its change of the mix's
    level (a per-frame gain); dropped when it changed more than the level (docs/plugins.md).

    Done after each plugin, so a gain after a cut applied to every stem is followed too.
    """
    from segue.core.audio import follow_gain

    left = set(after.stems) == set(before.stems) and all(
        after.stems[k] is before.stems[k] for k in before.stems
    )
    if not left:
        return after  # the plugin applied its change to the stems itself
    followed = follow_gain(before.samples, after.samples, before.stems)
    return after.replace(stems=followed or {})


def _is_track(value: Any) -> bool:
    from segue.core.track import Track

    return isinstance(value, Track)


class Plugins:
    """The loaded plugins, their registries, and the chained hooks.

    ``strict``: a plugin that fails to load raises PluginError (default: SEGUE_STRICT_PLUGINS).
    ``extra``: plugin objects, each ``(name, obj)`` or just ``obj`` (named by its ``__name__``
    or class), registered after the entry points and before the registries are built.
    ``disabled``: names to leave out (default: SEGUE_DISABLE_PLUGINS).
    """

    def __init__(
        self,
        strict: bool | None = None,
        load_entry_points: bool = True,
        extra: Iterable[tuple[str, Any] | Any] = (),
        disabled: Iterable[str] | None = None,
    ) -> None:
        self.strict = strict_from_env() if strict is None else strict
        self.pm = pluggy.PluginManager("segue")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        # Built-ins left out for a known reason (an optional dependency is not installed).
        self.skipped: dict[str, str] = {}
        self.disabled: list[str] = []
        self.versions: dict[str, str | None] = {}
        self.sources: dict[str, str] = {}
        off = disabled_from_env() if disabled is None else set(disabled)

        for dotted in DEFAULT_PLUGINS:
            short = dotted.rsplit(".", 1)[-1]
            if dotted in off or short in off:
                self.disabled.append(dotted)
                continue
            try:
                module = importlib.import_module(dotted)
            except ModuleNotFoundError as exc:
                root = (exc.name or "").split(".")[0]
                if root in OPTIONAL_DEPENDENCIES:
                    extra_name = OPTIONAL_DEPENDENCIES[root]
                    self.skipped[dotted] = (
                        f"needs {root}, which is not installed (pip install 'segue[{extra_name}]')"
                    )
                    log.debug("plugin %s skipped: %s", dotted, self.skipped[dotted])
                    continue
                self._failed(dotted, __version__, exc)
                continue
            except Exception as exc:  # a built-in that cannot import is reported like any other
                self._failed(dotted, __version__, exc)
                continue
            self._register(module, dotted, __version__, "builtin")

        if load_entry_points:
            self._load_entry_points(off)

        extra_names = []
        for item in extra:
            name, obj = self._extra_name(item)
            extra_names.append(name)
            if name in off:
                self.disabled.append(name)
                continue
            self._register(obj, name, None, "extra")

        if disabled is None and load_entry_points:
            self._warn_unknown_disabled(off, extra_names)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(self._pending_message(exc)) from None
        self._check_chained_hooks()
        self.generators = self._registry("generator", "segue_register_generators")
        self.caches = self._registry("cache backend", "segue_register_cache_backends")
        self.sinks = self._registry("storage sink", "segue_register_storage_sinks")
        self.separators = self._registry("stem separator", "segue_register_stem_separators")

    # -- loading -------------------------------------------------------------------------

    def _warn_unknown_disabled(self, off: set[str], extra_names: Iterable[str]) -> None:
        """A name in SEGUE_DISABLE_PLUGINS that is no plugin is a typo: the plugin it meant
        is still on, so say so (once, when the plugins load)."""
        known = {name for dotted in DEFAULT_PLUGINS for name in (dotted, dotted.rsplit(".", 1)[-1])}
        known.update(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
        known.update(extra_names)
        for name in sorted(off - known):
            hint = suggest(name, sorted(known))
            log.warning("SEGUE_DISABLE_PLUGINS: no plugin is named %r%s", name, hint)

    def _failed(self, name: str, version: str | None, exc: BaseException) -> None:
        failure = PluginFailure(name, version, error_line(exc))
        if self.strict:
            version_text = f" {version}" if version else ""
            raise PluginError(
                f"plugin {name}{version_text} failed to load: {failure.reason}"
            ) from None
        self.failures.append(failure)
        log.warning("%s", failure)

    def _register(self, plugin: Any, name: str, version: str | None, source: str) -> None:
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name}: {self._validation_message(exc)}") from None
        except ValueError as exc:  # the name, or the same object, is already registered
            self._failed(name, version, exc)
            return
        self.versions[name] = version
        self.sources[name] = source

    def _validation_message(self, exc: pluggy.PluginValidationError) -> str:
        """pluggy's complaint on one line; for arguments a hook lacks, the hook's signature."""
        text = str(exc)
        found = re.search(r"for hook '(\w+)'", text)
        caller = getattr(self.pm.hook, found.group(1), None) if found else None
        spec = getattr(caller, "spec", None)
        if spec is None or "can not be found in the hookspec" not in text:
            return _one_line(text)
        hook = found.group(1) if found else ""
        try:
            asked = ", ".join(inspect.signature(getattr(exc.plugin, hook)).parameters)
        except (AttributeError, TypeError, ValueError):  # not a plain function: pluggy's text
            return _one_line(text)
        wanted = ", ".join(spec.argnames)
        message = f"{hook}({asked}) does not match the hook's signature {hook}({wanted})"
        hint = CHANGED_HOOKS.get(hook)
        return f"{message}: {hint}" if hint else message

    def _extra_name(self, item: Any) -> tuple[str, Any]:
        """``(name, obj)`` as given, or a plugin object named after itself."""
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            return item[0], item[1]
        base = getattr(item, "__name__", None) or type(item).__name__
        name, n = base, 1
        while self.pm.has_plugin(name):
            n += 1
            name = f"{base}#{n}"
        return name, item

    def _load_entry_points(self, disabled: set[str]) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled:
                self.disabled.append(ep.name)
                continue
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else None
            source = dist.name if dist is not None else "?"
            try:
                plugin = ep.load()
            except Exception as exc:  # any error in a third party's import is its own
                self._failed(ep.name, version, exc)
                continue
            self._register(plugin, ep.name, version, source)

    def _pending_message(self, exc: pluggy.PluginValidationError) -> str:
        name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
        callers = vars(self.pm.hook)
        known = [hook for hook, caller in callers.items() if caller.has_spec()]
        unknown = [
            hook
            for hook, caller in callers.items()
            if not caller.has_spec()
            and any(impl.plugin is exc.plugin for impl in caller.get_hookimpls())
        ]
        if not unknown:
            return f"plugin {name}: {_one_line(str(exc))}"
        hook = unknown[0]
        close = difflib.get_close_matches(hook, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"plugin {name}: unknown hook {hook}{hint}"

    def _check_chained_hooks(self) -> None:
        # transform and process_track call implementations one by one; a wrapper cannot take part.
        for hook in ("segue_transform_prompt", "segue_process_track"):
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if impl.hookwrapper or impl.wrapper:
                    raise PluginError(
                        f"plugin {impl.plugin_name}: {hook} is a chain; "
                        "hookwrapper/wrapper implementations are not supported"
                    )

    def _registry(self, kind: str, hook_name: str) -> Registry:
        registry = Registry(kind)
        # Each implementation is called on its own so a duplicate name can name both plugins,
        # in registration order (built-ins first).
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                impl.function(register=registry.register_for(impl.plugin_name))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name}: {hook_name} raised {error_line(exc)}"
                ) from None
        return registry

    # -- chained hooks -------------------------------------------------------------------

    def _call_order(self, hook_name: str) -> list[Any]:
        # pluggy calls get_hookimpls() back to front: tryfirst, then LIFO, then trylast.
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    def transformers(self) -> list[str]:
        """The names of the ``segue_transform_prompt`` plugins, in the order they run."""
        return [impl.plugin_name for impl in self._call_order("segue_transform_prompt")]

    def processors(self) -> list[str]:
        """The names of the ``segue_process_track`` plugins, in the order they run."""
        return [impl.plugin_name for impl in self._call_order("segue_process_track")]

    def transform(self, request: GenerationRequest, score: Any) -> GenerationRequest:
        """Run ``segue_transform_prompt`` as a chain, in pluggy's call order."""
        for impl in self._call_order("segue_transform_prompt"):
            available = {"request": request, "score": score}
            result = _call_chained(impl, "segue_transform_prompt", available)
            if result is not None:
                if not isinstance(result, GenerationRequest):
                    raise PluginError(
                        f"plugin {impl.plugin_name}: segue_transform_prompt returned "
                        f"{type(result).__name__}, not a GenerationRequest"
                    )
                request = result
        return request

    def process_track(self, audio: TrackAudio) -> TrackAudio:
        """Run ``segue_process_track`` as a chain: each sees the previous one's TrackAudio."""
        import numpy as np  # not at the top: the CLI's start-up does not need numpy

        from segue.core.audio import TrackAudio

        for impl in self._call_order("segue_process_track"):
            result = _call_chained(impl, "segue_process_track", {"audio": audio})
            if result is None:
                continue
            if not isinstance(result, TrackAudio):
                hint = " (return audio.replace(track=...))" if _is_track(result) else ""
                raise PluginError(
                    f"plugin {impl.plugin_name}: segue_process_track returned "
                    f"{type(result).__name__}, not a TrackAudio{hint}"
                )
            # Checked here, once per change, so the plugin that broke the samples is named
            # (the encoder would only say the output cannot be encoded).
            if result.samples is not audio.samples and not np.isfinite(result.samples).all():
                raise PluginError(
                    f"plugin {impl.plugin_name}: segue_process_track returned non-finite samples"
                )
            if audio.stems and result.samples is not audio.samples:
                result = _stems_follow(audio, result)
            audio = result
        return audio

    # -- notifications and set-up hooks ------------------------------------------------

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call every implementation of a notification hook (``segue_track_stored``,
        ``segue_cue``, ``segue_game_event``) on its own: one that raises is logged in one line
        naming its plugin (the traceback with ``-v``) and the others still run."""
        for impl in self._call_order(hook_name):
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as exc:
                log.error(
                    "plugin %s: %s raised %s (ignored)",
                    impl.plugin_name,
                    hook_name,
                    error_line(exc),
                )
                log.debug(
                    "the traceback of plugin %s's %s", impl.plugin_name, hook_name, exc_info=exc
                )

    def has(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name``."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def register_routes(self, app: Any) -> None:
        """``segue_register_routes``, one plugin at a time: one that raises stops the server's
        start with one line naming it (``PluginError``)."""
        for impl in self._call_order("segue_register_routes"):
            try:
                impl.function(app=app)
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name}: segue_register_routes raised {error_line(exc)}"
                ) from exc

    def failure_line(self, exc: BaseException) -> str:
        """``exc`` in one line, after the plugin whose code raised it (a cache's ``get``, a
        sink's ``open``) when one did: ``plugin segue_redis2: RuntimeError: …``."""
        culprit = self.at_fault(exc)
        return f"plugin {culprit}: {error_line(exc)}" if culprit else error_line(exc)

    def at_fault(self, exc: BaseException) -> str | None:
        """The plugin whose code raised ``exc`` (the innermost frame of its traceback that is
        in a plugin's module or package), or None: so that an unexpected error names it."""
        files: list[tuple[str, str, bool]] = []
        for name, plugin in self.pm.list_name_plugin():
            module = plugin if inspect.ismodule(plugin) else inspect.getmodule(type(plugin))
            path = getattr(module, "__file__", None)
            if not path:
                continue
            is_package = hasattr(module, "__path__")
            where = os.path.dirname(path) if is_package else path
            files.append((os.path.realpath(where), name, is_package))
        tb = exc.__traceback__
        frames = []
        while tb is not None:
            frames.append(os.path.realpath(tb.tb_frame.f_code.co_filename))
            tb = tb.tb_next
        for frame in reversed(frames):
            for where, name, is_package in files:
                if frame == where or (is_package and frame.startswith(where + os.sep)):
                    return name
        return None

    # -- introspection -------------------------------------------------------------------

    def info(self) -> list[PluginInfo]:
        """Every registered plugin, with its hooks and what it registered."""
        out = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            registered: dict[str, list[str]] = {}
            for registry in (self.generators, self.caches, self.sinks, self.separators):
                names = [r.name for r in registry.entries.values() if r.plugin == name]
                if names:
                    registered[registry.kind] = sorted(names)
            out.append(
                PluginInfo(
                    name, self.versions.get(name), hooks, self.sources.get(name, "?"), registered
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """What ``segue plugins --json`` prints."""
        return {
            "plugins": [p.to_dict() for p in self.info()],
            "failures": [f.to_dict() for f in self.failures],
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped.items()],
            "disabled": list(self.disabled),
            "transform_order": self.transformers(),
            "process_order": self.processors(),
        }


_cache: dict[tuple[bool, frozenset[str]], Plugins] = {}


def get_plugins(strict: bool | None = None) -> Plugins:
    """The process-wide plugins (loaded once, so a load failure is reported once).

    One instance per (strict, ``SEGUE_DISABLE_PLUGINS``); ``reset_plugins()`` forgets them.
    """
    resolved = strict_from_env() if strict is None else strict
    key = (resolved, frozenset(disabled_from_env()))
    if key not in _cache:
        _cache[key] = Plugins(strict=resolved)
    return _cache[key]


def reset_plugins() -> None:
    """Forget the cached plugins (tests; after installing a plugin in-process)."""
    _cache.clear()
