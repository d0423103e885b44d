"""The plugin manager: built-ins by dotted name, then the ``segue`` entry points."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from segue.core import hookspecs
from segue.core.errors import PluginError
from segue.core.registry import Registry
from segue.core.request import GenerationRequest

log = logging.getLogger("segue.plugins")

ENTRY_POINT_GROUP = "segue"

# Built-in plugins, loaded by name so that segue.core never imports segue.plugins.
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
    "segue.plugins.loudness",
    "segue.plugins.beat_grid",
)


@dataclass
class PluginFailure:
    name: str
    version: str | None
    reason: str

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"plugin {self.name}{version} failed to load and was skipped: {self.reason}"


@dataclass
class PluginInfo:
    name: str
    version: str | None
    hooks: list[str]
    source: str  # "builtin" or the distribution name
    registered: dict[str, list[str]] = field(default_factory=dict)


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("SEGUE_DISABLE_PLUGINS", "").split(",") if n.strip()}


def strict_from_env() -> bool:
    return os.environ.get("SEGUE_STRICT_PLUGINS", "").lower() in {"1", "true", "yes", "on"}


class Plugins:
    """The loaded plugins, their registries, and the chained hooks."""

    def __init__(
        self,
        strict: bool | None = None,
        load_entry_points: bool = True,
        extra: tuple[Any, ...] | list[Any] = (),
    ) -> None:
        """``extra``: plugin objects (modules, instances) registered after the built-ins and
        entry points, before the registries are built (tests, embedding applications)."""
        self.strict = strict_from_env() if strict is None else strict
        self.pm = pluggy.PluginManager("segue")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.versions: dict[str, str | None] = {}
        self.sources: dict[str, str] = {}
        disabled = _disabled()
        for dotted in DEFAULT_PLUGINS:
            short = dotted.rsplit(".", 1)[1]
            if dotted in disabled or short in disabled:
                continue
            try:
                module = importlib.import_module(dotted)
            except ModuleNotFoundError as exc:
                if exc.name == dotted:
                    continue  # not built yet in this checkout: nothing to register
                self._failed(dotted, None, exc)
                continue
            except Exception as exc:  # a built-in that cannot import is reported like any other
                self._failed(dotted, None, exc)
                continue
            self._register(module, dotted, None, "builtin")
        if load_entry_points:
            self._load_entry_points(disabled)
        for plugin in extra:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            self._register(plugin, name, None, "extra")
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin {self.pm.get_name(exc.plugin)}: {exc}".replace("\n", " ")
            ) from None
        self.generators = self._registry("generator", self.pm.hook.segue_register_generators)
        self.caches = self._registry("cache backend", self.pm.hook.segue_register_cache_backends)
        self.sinks = self._registry("storage sink", self.pm.hook.segue_register_storage_sinks)

    def _failed(self, name: str, version: str | None, exc: BaseException) -> None:
        failure = PluginFailure(name, version, f"{type(exc).__name__}: {exc}".replace("\n", " "))
        if self.strict:
            raise PluginError(str(failure).replace("and was skipped", "")) from None
        self.failures.append(failure)
        log.warning("%s", failure)

    def _register(self, plugin: Any, name: str, version: str | None, source: str) -> None:
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name}: {exc}".replace("\n", " ")) from None
        except ValueError as exc:  # already registered under this name
            self._failed(name, version, exc)
            return
        self.versions[name] = version
        self.sources[name] = source

    def _load_entry_points(self, disabled: set[str]) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled:
                continue
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else None
            try:
                plugin = ep.load()
            except Exception as exc:
                self._failed(ep.name, version, exc)
                continue
            self._register(plugin, ep.name, version, dist.name if dist is not None else "?")

    def _registry(self, kind: str, hook: Any) -> Registry:
        registry = Registry(kind)
        # Each implementation is called on its own so a duplicate name can name both plugins.
        for impl in hook.get_hookimpls():
            impl.function(register=registry.register_for(impl.plugin_name))
        return registry

    def transform(self, request: GenerationRequest, score: Any) -> GenerationRequest:
        """Run ``segue_transform_prompt`` as a chain, in pluggy's call order."""
        for impl in reversed(self.pm.hook.segue_transform_prompt.get_hookimpls()):
            available = {"request": request, "score": score}
            result = impl.function(**{arg: available[arg] for arg in impl.argnames})
            if result is not None:
                if not isinstance(result, GenerationRequest):
                    raise PluginError(
                        f"plugin {impl.plugin_name}: segue_transform_prompt returned "
                        f"{type(result).__name__}, not a GenerationRequest"
                    )
                request = result
        return request

    def process_track(self, track: Any, path: Any) -> Any:
        """Run ``segue_process_track`` as a chain: each sees the previous one's Track."""
        for impl in reversed(self.pm.hook.segue_process_track.get_hookimpls()):
            available = {"track": track, "path": path}
            result = impl.function(**{arg: available[arg] for arg in impl.argnames})
            if result is not None:
                track = result
        return track

    def info(self) -> list[PluginInfo]:
        """Every registered plugin, with its hooks and what it registered."""
        out = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            registered: dict[str, list[str]] = {}
            for registry in (self.generators, self.caches, self.sinks):
                names = [r.name for r in registry.entries.values() if r.plugin == name]
                if names:
                    registered[registry.kind] = sorted(names)
            out.append(
                PluginInfo(name, self.versions.get(name), hooks, self.sources.get(name, "?"),
                           registered)
            )
        return out
