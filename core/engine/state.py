"""Game state merge: what a ``state`` message (or HTTP call) does to a session's state.

``apply_state(state, set=..., unset=..., replace=...)`` returns a new dict and never
changes its input (dicts along the changed paths are copied, values taken from ``set``
are deep-copied). The order is: ``replace`` (the whole state), then ``unset``, then
``set`` — so ``unset: [player]`` with ``set: {player.health: 1}`` leaves exactly
``{player: {health: 1}}``.

Keys: a dot separates levels everywhere, in ``set`` and ``unset`` and inside nested
mappings of ``set``: ``{"player.health": 0.2}`` and ``{"player": {"health": 0.2}}`` both
set ``state["player"]["health"]``, keeping the player's other keys (a deep merge; a
non-mapping value replaces what was there). Setting below a value that is not a
mapping is an error rather than a silent overwrite. Unsetting a path that is not
there does nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from segue.core.errors import SegueError


class StateError(SegueError, ValueError):
    """A state change of the wrong shape; the message names the field."""


_SCALARS = frozenset((bool, int, float, str, type(None)))
_EMPTY_OK = frozenset((list, tuple))


def _split(key: Any, where: str) -> list[str]:
    if not isinstance(key, str):
        raise StateError(f"{where}: keys must be strings, not {_kind(key)}")
    parts = key.split(".")
    if not all(parts):
        raise StateError(f"{where}: bad key {key!r} (empty part between dots)")
    return parts


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def apply_state(
    state: Mapping[str, Any] | None,
    set: Mapping[str, Any] | None = None,  # the protocol's name (shadows set())
    unset: Any = None,
    replace: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The state after a change; raises StateError, leaving nothing changed, on bad shapes."""
    if (
        replace is None
        and type(set) is dict
        and (unset is None or (type(unset) in _EMPTY_OK and not unset))
    ):
        result = _fast_set(state, set)
        if result is not None:
            return result
    if replace is not None:
        if not isinstance(replace, Mapping):
            raise StateError(f"replace: must be an object, not {_kind(replace)}")
        for key in replace:
            _split(key, "replace")
        result: dict[str, Any] = copy.deepcopy(dict(replace))
    else:
        result = dict(state or {})
    if unset is not None:
        if not isinstance(unset, list | tuple) or not all(isinstance(k, str) for k in unset):
            raise StateError("unset: must be a list of strings")
        for key in unset:
            result = _unset(result, _split(key, "unset"))
    if set is not None:
        if not isinstance(set, Mapping):
            raise StateError(f"set: must be an object, not {_kind(set)}")
        result = _merge(result, set, "set")
    return result


def _fast_set(state: Mapping[str, Any] | None, changes: dict[Any, Any]) -> dict[str, Any] | None:
    """The common message, ``set`` of (dotted) keys to JSON scalars, on plain dicts:
    the result of the general merge, or None to take it (anything else, errors too).

    Scalars are immutable, so deepcopy would return them as they are; only the dicts
    along each key's path are copied, as the general merge does.
    """
    result = dict(state) if state else {}
    for key, value in changes.items():
        if type(key) is not str or type(value) not in _SCALARS or not key:
            return None
        if "." not in key:
            result[key] = value
            continue
        parts = key.split(".")
        node = result
        for part in parts[:-1]:
            if not part:
                return None
            child = node.get(part)
            if child is None:
                child = {}
            elif type(child) is dict:
                child = dict(child)
            else:
                return None
            node[part] = child
            node = child
        last = parts[-1]
        if not last:
            return None
        node[last] = value
    return result


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _merge(target: dict[str, Any], changes: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``target`` (not modified) with ``changes`` merged in, as a new dict."""
    out = dict(target)
    for key, value in changes.items():
        parts = _split(key, where)
        _set_path(out, parts, value, _join(where, key))
    return out


def _set_path(node: dict[str, Any], parts: list[str], value: Any, where: str) -> None:
    """Set ``parts`` below ``node`` (a fresh copy the caller owns), copying on the way."""
    head, rest = parts[0], parts[1:]
    if rest:
        child = node.get(head)
        if child is None:
            child = {}
        elif not isinstance(child, Mapping):
            raise StateError(
                f"{where}: cannot set below {head!r}, which holds {_kind(child)}, not an object"
            )
        child = dict(child)
        node[head] = child
        _set_path(child, rest, value, where)
        return
    if isinstance(value, Mapping):
        existing = node.get(head)
        if existing is not None and not isinstance(existing, Mapping):
            raise StateError(
                f"{where}: cannot merge an object into {head!r}, which holds {_kind(existing)}"
            )
        node[head] = _merge(dict(existing or {}), value, where)
    else:
        node[head] = copy.deepcopy(value)


def _unset(node: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    head, rest = parts[0], parts[1:]
    if head not in node:
        return node
    out = dict(node)
    if not rest:
        del out[head]
        return out
    child = out[head]
    if not isinstance(child, Mapping):
        return node  # nothing below a plain value: nothing to unset
    out[head] = _unset(dict(child), rest)
    return out
