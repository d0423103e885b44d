"""Named factories registered by plugins (generators, cache backends, storage sinks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segue.core.errors import PluginError

Register = Callable[[str, Callable[..., Any]], None]


@dataclass
class Registration:
    name: str
    factory: Callable[..., Any]
    plugin: str


@dataclass
class Registry:
    """One kind of factory, by name; a name registered twice is an error naming both plugins."""

    kind: str
    entries: dict[str, Registration] = field(default_factory=dict)

    def register_for(self, plugin: str) -> Register:
        def register(name: str, factory: Callable[..., Any]) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin}: {self.kind} name must be a non-empty string")
            if name in self.entries:
                other = self.entries[name].plugin
                raise PluginError(
                    f"{self.kind} {name!r} is registered by two plugins: {other} and {plugin}"
                )
            self.entries[name] = Registration(name, factory, plugin)

        return register

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Registration:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise PluginError(f"unknown {self.kind} {name!r} (known: {known})") from None
