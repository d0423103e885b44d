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

Limits (:class:`StateLimits`, from the score's ``server:`` section): a key may have at
most ``max_key_parts`` dotted parts, values nest at most ``max_depth`` levels (dotted
parts and nested objects and lists together), and a session's whole state holds at most
``max_keys`` keys (at every level) and ``max_bytes`` (its JSON size, roughly). A change
that would pass one is refused whole with a StateError naming the limit. What a state
holds is kept up to date in a :class:`StateUsage` from the change alone (what it adds,
what it replaces or removes), so checking costs the size of the change, not of the
state; nesting is measured before anything recurses into it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segue.core.errors import SegueError


class StateError(SegueError, ValueError):
    """A state change of the wrong shape; the message names the field."""


_SCALARS = frozenset((bool, int, float, str, type(None)))
_EMPTY_OK = frozenset((list, tuple))


@dataclass(frozen=True, slots=True)
class StateLimits:
    """How much one session's state may hold (the score's ``server:`` keys in brackets)."""

    max_keys: int = 1000  # keys in the whole state, at every level (max_state_keys)
    max_depth: int = 16  # levels of nesting, dotted parts included (max_state_depth)
    max_key_parts: int = 8  # dotted parts in one key (max_key_parts)
    max_bytes: int = 65536  # the state's size, its JSON roughly (max_state_bytes)

    @classmethod
    def of(cls, options: Any) -> StateLimits:
        """The limits a score's server options set (defaults where they set none)."""
        d = cls()
        return cls(
            max_keys=int(getattr(options, "max_state_keys", d.max_keys)),
            max_depth=int(getattr(options, "max_state_depth", d.max_depth)),
            max_key_parts=int(getattr(options, "max_key_parts", d.max_key_parts)),
            max_bytes=int(getattr(options, "max_state_bytes", d.max_bytes)),
        )


class StateUsage:
    """Keys and bytes a session's state holds (kept up to date by ``apply_state``)."""

    __slots__ = ("bytes", "keys")

    def __init__(self, keys: int = 0, bytes: int = 0) -> None:
        self.keys = keys
        self.bytes = bytes

    def __repr__(self) -> str:
        return f"StateUsage(keys={self.keys}, bytes={self.bytes})"


def measure(state: Mapping[str, Any]) -> StateUsage:
    """What ``state`` holds, counted whole (``apply_state`` keeps a usage without this)."""
    keys, size = _size(state, 0, _Tally(None), "state")
    return StateUsage(keys, size)


class _Tally:
    """What one change adds to a state (keys, bytes) and how deep its paths go."""

    __slots__ = ("bytes", "keys", "limits")

    def __init__(self, limits: StateLimits | None) -> None:
        self.limits = limits
        self.keys = 0
        self.bytes = 0

    def parts(self, key: str, where: str) -> list[str]:
        limits = self.limits
        if limits is not None and key.count(".") >= limits.max_key_parts:
            shown = key if len(key) <= 40 else key[:39] + "…"
            raise StateError(
                f"{where}: key {shown!r} of {key.count('.') + 1} dotted parts, over the limit "
                f"of {limits.max_key_parts} (server.max_key_parts)"
            )
        return _split(key, where)

    def depth(self, depth: int, where: str) -> None:
        limits = self.limits
        if limits is not None and depth > limits.max_depth:
            raise StateError(
                f"{where}: nested deeper than {limits.max_depth} levels (server.max_state_depth)"
            )


def _size(value: Any, depth: int, tally: _Tally, where: str) -> tuple[int, int]:
    """Keys and bytes ``value`` holds as stored, its key ``depth`` levels down (nesting is
    checked level by level, before going deeper)."""
    t = type(value)
    if t is str:
        return 0, len(value) + 2
    if t is float or value is None or t is bool:
        return 0, 8
    if t is int:
        return 0, 8 + value.bit_length() * 3 // 10
    if isinstance(value, Mapping):
        if value:
            tally.depth(depth + 1, where)
        keys, size = 0, 2
        for key, item in value.items():
            k, b = _size(item, depth + 1, tally, where)
            keys += 1 + k
            size += b + (len(key) if type(key) is str else 8) + 3
        return keys, size
    if isinstance(value, list | tuple):
        if value:
            tally.depth(depth + 1, where)
        keys, size = 0, 2
        for item in value:
            k, b = _size(item, depth + 1, tally, where)
            keys += k
            size += b + 1
        return keys, size
    return 0, 8


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
    *,
    limits: StateLimits | None = None,
    usage: StateUsage | None = None,
) -> dict[str, Any]:
    """The state after a change; raises StateError, leaving nothing changed, on bad shapes
    or (with ``limits``) a change that would pass a limit. ``usage``, what ``state``
    holds, is updated to what the result holds."""
    tally = _Tally(limits)
    if limits is not None:
        # More keys in one message than a whole state may hold: refused before any work.
        for part, name in ((set, "set"), (replace, "replace")):
            if isinstance(part, Mapping) and len(part) > limits.max_keys:
                raise StateError(
                    f"{name}: {len(part)} keys, over the limit of {limits.max_keys} "
                    "(server.max_state_keys)"
                )
    if (
        replace is None
        and type(set) is dict
        and (unset is None or (type(unset) in _EMPTY_OK and not unset))
    ):
        result = _fast_set(state, set, tally)
        if result is not None:
            return _commit(result, tally, usage)
        tally = _Tally(limits)  # the general merge counts afresh
    if replace is not None:
        if not isinstance(replace, Mapping):
            raise StateError(f"replace: must be an object, not {_kind(replace)}")
        if usage is not None:  # the old state goes whole (its braces stay)
            tally.keys -= usage.keys
            tally.bytes -= usage.bytes - 2
        result: dict[str, Any] = _merge({}, replace, "replace", 0, tally)
    else:
        result = dict(state or {})
    if unset is not None:
        if not isinstance(unset, list | tuple) or not all(isinstance(k, str) for k in unset):
            raise StateError("unset: must be a list of strings")
        for key in unset:
            result = _unset(result, tally.parts(key, "unset"), tally)
    if set is not None:
        if not isinstance(set, Mapping):
            raise StateError(f"set: must be an object, not {_kind(set)}")
        result = _merge(result, set, "set", 0, tally)
    return _commit(result, tally, usage)


def _commit(result: dict[str, Any], tally: _Tally, usage: StateUsage | None) -> dict[str, Any]:
    """Check the totals against the limits; then (only then) count them in ``usage``."""
    if usage is None:
        return result
    keys = usage.keys + tally.keys
    size = usage.bytes + tally.bytes
    limits = tally.limits
    # No "state: " here: the server says it before every StateError.
    if limits is not None and tally.keys > 0 and keys > limits.max_keys:
        raise StateError(
            f"{keys} keys, over the limit of {limits.max_keys} (server.max_state_keys)"
        )
    if limits is not None and tally.bytes > 0 and size > limits.max_bytes:
        raise StateError(
            f"about {size} bytes, over the limit of {limits.max_bytes} (server.max_state_bytes)"
        )
    usage.keys = keys
    usage.bytes = size
    return result


def _fast_set(
    state: Mapping[str, Any] | None, changes: dict[Any, Any], tally: _Tally
) -> dict[str, Any] | None:
    """The common message, ``set`` of (dotted) keys to JSON scalars, on plain dicts:
    the result of the general merge, or None to take it (anything else, errors too).

    Scalars are immutable, so deepcopy would return them as they are; only the dicts
    along each key's path are copied, as the general merge does.
    """
    result = dict(state) if state else {}
    limits = tally.limits
    max_parts = limits.max_key_parts if limits is not None else 0
    keys = size = 0
    for key, value in changes.items():
        if type(key) is not str or type(value) not in _SCALARS or not key:
            return None
        if max_parts and key.count(".") >= max_parts:
            return None  # the general merge names the limit
        parts = key.split(".")
        node = result
        for part in parts[:-1]:
            if not part:
                return None
            child = node.get(part, _ABSENT)
            if child is _ABSENT:
                child = {}
                keys += 1
                size += len(part) + 5
            elif type(child) is dict:
                child = dict(child)
            else:
                return None
            node[part] = child
            node = child
        last = parts[-1]
        if not last:
            return None
        if limits is not None and len(parts) > limits.max_depth:
            return None
        old = node.get(last, _ABSENT)
        if old is _ABSENT:
            keys += 1
            size += len(last) + 3
        elif type(old) in _SCALARS:
            size -= _scalar_size(old)
        else:
            return None  # an object or list replaced: the general merge counts it
        node[last] = value
        size += _scalar_size(value)
    tally.keys += keys
    tally.bytes += size
    return result


_ABSENT = object()


def _scalar_size(value: Any) -> int:
    if type(value) is str:
        return len(value) + 2
    if type(value) is int:
        return 8 + value.bit_length() * 3 // 10
    return 8


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


def _merge(
    target: dict[str, Any], changes: Mapping[str, Any], where: str, depth: int, tally: _Tally
) -> dict[str, Any]:
    """``target`` (not modified) with ``changes`` merged in, as a new dict; ``depth`` is
    the level of ``target``'s keys less one."""
    out = dict(target)
    for key, value in changes.items():
        if not isinstance(key, str):
            raise StateError(f"{where}: keys must be strings, not {_kind(key)}")
        parts = tally.parts(key, where)
        _set_path(out, parts, value, _join(where, key), depth, tally)
    return out


def _set_path(
    node: dict[str, Any], parts: list[str], value: Any, where: str, depth: int, tally: _Tally
) -> None:
    """Set ``parts`` below ``node`` (a fresh copy the caller owns), copying on the way."""
    head, rest = parts[0], parts[1:]
    depth += 1
    tally.depth(depth, where)
    existing = node.get(head, _ABSENT)
    if existing is _ABSENT:
        tally.keys += 1
        tally.bytes += len(head) + 3
    if rest:
        if existing is _ABSENT or existing is None:
            if existing is None:
                tally.bytes -= 8
            child: Any = {}
            tally.bytes += 2
        elif not isinstance(existing, Mapping):
            raise StateError(
                f"{where}: cannot set below {head!r}, which holds {_kind(existing)}, not an object"
            )
        else:
            child = dict(existing)
        node[head] = child
        _set_path(child, rest, value, where, depth, tally)
        return
    if isinstance(value, Mapping):
        if existing is not _ABSENT and existing is not None and not isinstance(existing, Mapping):
            raise StateError(
                f"{where}: cannot merge an object into {head!r}, which holds {_kind(existing)}"
            )
        if existing is None:
            tally.bytes -= 8
        if existing is _ABSENT or existing is None:
            tally.bytes += 2
            existing = {}
        node[head] = _merge(dict(existing), value, where, depth, tally)
    else:
        k, b = _size(value, depth, tally, where)
        if existing is not _ABSENT:
            ok, ob = _size(existing, depth, _Tally(None), where)
            k -= ok
            b -= ob
        tally.keys += k
        tally.bytes += b
        node[head] = copy.deepcopy(value)


def _unset(node: dict[str, Any], parts: list[str], tally: _Tally) -> dict[str, Any]:
    head, rest = parts[0], parts[1:]
    if head not in node:
        return node
    out = dict(node)
    if not rest:
        k, b = _size(out.pop(head), 0, _Tally(None), "unset")
        tally.keys -= 1 + k
        tally.bytes -= b + len(head) + 3
        return out
    child = out[head]
    if not isinstance(child, Mapping):
        return node  # nothing below a plain value: nothing to unset
    out[head] = _unset(dict(child), rest, tally)
    return out
