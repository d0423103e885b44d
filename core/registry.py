"""Named factories registered by plugins (generators, cache backends, storage sinks)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from segue.core.errors import PluginError

Register = Callable[[str, Callable[..., Any]], None]


def unknown_options(unknown: Iterable[str], known: Iterable[str]) -> str:
    """``unknown option(s) pth (did you mean 'path'?)``: for a plugin's factory to raise in a
    ConfigError when the score gives it options it does not take."""
    names, choices = sorted(unknown), sorted(known)
    close = [c for n in names for c in difflib.get_close_matches(n, choices, n=1, cutoff=0.6)]
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    return f"unknown option(s) {', '.join(names)}{hint}"


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
            close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PluginError(f"unknown {self.kind} {name!r} ({hint}known: {known})") from None
