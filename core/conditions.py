"""Conditions: the ``when`` of a rule, compiled once, matched against game state.

A condition is a mapping of state keys to a literal (equality) or an operator map::

    {in_combat: true, player.health: {lt: 0.3}, zone: {in: [crypt, catacombs]}}

Several entries in one mapping must all hold. ``all: [...]``, ``any: [...]`` and
``not: {...}`` combine conditions. Dotted keys reach nested state (``player.health`` is
``state["player"]["health"]``), and a literal dotted key present in the state is used
too. A key missing from the state never matches, except ``exists: false``. Values of
incompatible types never compare equal or ordered (``true`` is not ``1``), and matching
never raises. There is no ``eval``: conditions are data.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PathPart = str | int
Path = tuple[PathPart, ...]

OPERATORS: tuple[str, ...] = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "exists")
COMBINATORS: tuple[str, ...] = ("all", "any", "not")
# Spellings from other query languages, for a better did-you-mean than string distance.
_ALIASES = {
    "lte": "le",
    "gte": "ge",
    "neq": "ne",
    "equals": "eq",
    "is": "eq",
    "not_eq": "ne",
    "<": "lt",
    "<=": "le",
    ">": "gt",
    ">=": "ge",
    "==": "eq",
    "=": "eq",
    "!=": "ne",
    "nin": "not_in",
    "notin": "not_in",
    "not in": "not_in",
    "has": "exists",
}

_MISSING = object()


class ConditionError(Exception):
    """A condition does not compile. ``errors`` is a list of (path, message)."""

    def __init__(self, errors: list[tuple[Path, str]]) -> None:
        self.errors = list(errors)
        super().__init__(
            "; ".join(f"{format_path(path)}: {message}" for path, message in self.errors)
        )


def format_path(path: Sequence[PathPart]) -> str:
    """``("rules", 0, "when", "hp")`` -> ``rules[0].when.hp``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def suggest(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- value semantics -------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str | None:
    """The comparison family of a value: bool, number, str, null; None for anything else."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "str"
    return None


def values_equal(a: Any, b: Any) -> bool:
    """Equality within one family only: ``True != 1``, ``1 == 1.0``, ``"1" != 1``."""
    kind = _kind(a)
    if kind is None or kind != _kind(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - scalars of one family always compare
        return False


def _ordered(a: Any, b: Any, op: str) -> bool:
    """``a op b`` for two numbers or two strings; anything else is False."""
    kind = _kind(a)
    if kind not in ("number", "str") or kind != _kind(b):
        return False
    try:
        if op == "lt":
            return bool(a < b)
        if op == "le":
            return bool(a <= b)
        if op == "gt":
            return bool(a > b)
        return bool(a >= b)
    except Exception:  # pragma: no cover - e.g. an int too large for a float comparison
        return False


def lookup(state: Any, key: str) -> Any:
    """The value of a dotted ``key`` in ``state``, or ``_MISSING``.

    A literal key (``"player.health"``) wins over the nested path; at each level the
    longest dotted prefix present is tried first, so mixed spellings resolve too.
    """
    if not isinstance(state, Mapping):
        return _MISSING
    return _walk(state, key.split("."))


def _walk(node: Any, parts: list[str]) -> Any:
    if not isinstance(node, Mapping):
        return _MISSING
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        try:
            if head not in node:
                continue
            value = node[head]
        except Exception:  # an unhashable or odd mapping: treat as absent
            continue
        if i == len(parts):
            return value
        found = _walk(value, parts[i:])
        if found is not _MISSING:
            return found
    return _MISSING


# --- compiled nodes --------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One test of one state key: ``key op value``."""

    key: str
    op: str
    value: Any

    def matches(self, state: Mapping[str, Any]) -> bool:
        found = lookup(state, self.key)
        if self.op == "exists":
            return (found is not _MISSING) == self.value
        if found is _MISSING:
            return False
        if self.op == "eq":
            return values_equal(found, self.value)
        if self.op == "ne":
            return not values_equal(found, self.value)
        if self.op == "in":
            return any(values_equal(found, v) for v in self.value)
        if self.op == "not_in":
            return not any(values_equal(found, v) for v in self.value)
        return _ordered(found, self.value, self.op)

    def terms(self) -> Iterator[Term]:
        yield self


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]

    def matches(self, state: Mapping[str, Any]) -> bool:
        return all(child.matches(state) for child in self.children)

    def terms(self) -> Iterator[Term]:
        for child in self.children:
            yield from child.terms()


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]

    def matches(self, state: Mapping[str, Any]) -> bool:
        return any(child.matches(state) for child in self.children)

    def terms(self) -> Iterator[Term]:
        for child in self.children:
            yield from child.terms()


@dataclass(frozen=True)
class NotOf:
    child: Node

    def matches(self, state: Mapping[str, Any]) -> bool:
        return not self.child.matches(state)

    def terms(self) -> Iterator[Term]:
        yield from self.child.terms()


Node = Term | AllOf | AnyOf | NotOf


@dataclass(frozen=True)
class Condition:
    """A compiled ``when``: ``matches(state)``, ``keys()``, and the source as written."""

    root: Node
    source: Any  # the condition as written, as plain data (for /api/score)

    @property
    def matcher(self) -> Callable[[Any], bool]:
        """``root.matches`` as one closure (see ``compile_matcher``), built once.

        It may raise RecursionError for absurdly deep state; ``matches`` does not.
        """
        fn = self.__dict__.get("_matcher")
        if fn is None:
            fn = compile_matcher(self.root)
            object.__setattr__(self, "_matcher", fn)
        return fn

    def __getstate__(self) -> dict[str, Any]:
        # The closure is derived data (and cannot be pickled): rebuilt on first use.
        return {k: v for k, v in self.__dict__.items() if k != "_matcher"}

    def matches(self, state: Mapping[str, Any]) -> bool:
        """True when ``state`` satisfies the condition; never raises."""
        try:
            return self.matcher(state)
        except RecursionError:  # absurdly deep state; no match rather than a crash
            return False

    def keys(self) -> set[str]:
        """The dotted state keys the condition reads."""
        return {term.key for term in self.root.terms()}

    def terms(self) -> list[Term]:
        """Every ``key op value`` test, in source order (used to guess key types)."""
        return list(self.root.terms())


# --- closures --------------------------------------------------------------------------
#
# A rule is matched on every state message of every session, so the node tree is turned
# into closures once: keys pre-split, operators resolved, and the usual case (a plain
# dict state, JSON scalars) tested inline. Anything unusual (another Mapping type, a str
# or int subclass, an odd value) takes the reference path above, so the closures agree
# with ``Node.matches`` on every input (tests/test_score_conditions.py checks this).


def _path_getter(parts: tuple[str, ...], memo: dict[tuple[str, ...], Any]) -> Any:
    """``_walk(node, parts)`` with the prefixes joined in advance (one closure per suffix)."""
    fn = memo.get(parts)
    if fn is not None:
        return fn
    options = tuple(
        (".".join(parts[:i]), _path_getter(parts[i:], memo) if i < len(parts) else None)
        for i in range(len(parts), 0, -1)
    )
    plist = list(parts)

    def get(node: Any) -> Any:
        if type(node) is not dict:
            return _walk(node, plist)
        for head, below in options:
            value = node.get(head, _MISSING)
            if value is _MISSING:
                continue
            if below is None:
                return value
            found = below(value)
            if found is not _MISSING:
                return found
        return _MISSING

    memo[parts] = get
    return get


def _getter(key: str) -> Callable[[Any], Any]:
    """The value of dotted ``key`` in a state, or ``_MISSING`` (as ``lookup``)."""
    parts = tuple(key.split("."))
    if len(parts) == 1:

        def get(state: Any) -> Any:
            if type(state) is dict:
                return state.get(key, _MISSING)
            return lookup(state, key)

        return get
    walk = _path_getter(parts, {})

    def get_nested(state: Any) -> Any:
        if not isinstance(state, Mapping):
            return _MISSING
        return walk(state)

    return get_nested


_CMP = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def _value_test(op: str, value: Any) -> Callable[[Any], bool]:
    """``found op value`` for a present ``found``, as ``Term.matches`` decides it."""
    if op in ("eq", "ne"):
        if value is None or isinstance(value, bool):
            # One family of singletons: equal means identical.
            eq = lambda found: found is value  # noqa: E731
        elif isinstance(value, str):

            def eq(found: Any) -> bool:
                if type(found) is str:
                    return found == value
                return values_equal(found, value)

        else:  # a number

            def eq(found: Any) -> bool:
                kind = type(found)
                if kind is int or kind is float:
                    return found == value
                return values_equal(found, value)

        if op == "eq":
            return eq
        return lambda found: not eq(found)
    if op in ("in", "not_in"):
        values = tuple(value)
        strs = frozenset(v for v in values if _kind(v) == "str")
        nums = frozenset(v for v in values if _kind(v) == "number")
        bools = frozenset(v for v in values if _kind(v) == "bool")
        has_null = any(v is None for v in values)

        def contains(found: Any) -> bool:
            kind = type(found)
            if kind is str:
                return found in strs
            if kind is int or kind is float:
                return found in nums
            if kind is bool:
                return found in bools
            if found is None:
                return has_null
            return any(values_equal(found, v) for v in values)

        if op == "in":
            return contains
        return lambda found: not contains(found)
    cmp = _CMP[op]
    if isinstance(value, str):

        def ordered_str(found: Any) -> bool:
            if type(found) is str:
                return cmp(found, value)
            return _ordered(found, value, op)

        return ordered_str

    def ordered_num(found: Any) -> bool:
        kind = type(found)
        if kind is int or kind is float:
            return cmp(found, value)
        return _ordered(found, value, op)

    return ordered_num


def _term_matcher(term: Term) -> Callable[[Any], bool]:
    key, op, value = term.key, term.op, term.value
    if op == "exists":
        get = _getter(key)
        if value:
            return lambda state: get(state) is not _MISSING
        return lambda state: get(state) is _MISSING
    test = _value_test(op, value)
    if "." not in key and op == "eq" and (value is None or isinstance(value, bool)):
        # The commonest rule of all (``in_combat: true``), in one step.

        def flag(state: Any) -> bool:
            if type(state) is dict:
                return state.get(key, _MISSING) is value
            found = lookup(state, key)
            return found is not _MISSING and found is value

        return flag
    get = _getter(key)

    def term_matches(state: Any) -> bool:
        found = get(state)
        if found is _MISSING:
            return False
        return test(found)

    return term_matches


def compile_matcher(node: Node) -> Callable[[Any], bool]:
    """``node.matches`` as a closure; the same answer for every state."""
    if isinstance(node, Term):
        return _term_matcher(node)
    if isinstance(node, NotOf):
        child = compile_matcher(node.child)
        return lambda state: not child(state)
    children = tuple(compile_matcher(c) for c in node.children)
    if isinstance(node, AllOf):
        if len(children) == 2:
            first, second = children
            return lambda state: first(state) and second(state)

        def all_of(state: Any) -> bool:
            for child in children:  # noqa: SIM110 - a loop, not all(genexpr): no generator
                if not child(state):
                    return False
            return True

        return all_of

    def any_of(state: Any) -> bool:
        for child in children:  # noqa: SIM110 - a loop, not any(genexpr): no generator
            if child(state):
                return True
        return False

    return any_of


# --- compiling -------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Deep copy of YAML data as plain dicts, lists and scalars."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def describe(value: Any) -> str:
    """``a list``, ``a string``… for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _operator_like(op: Any) -> bool:
    """Whether a key of an operator map is an operator, or a likely misspelling of one."""
    if not isinstance(op, str):
        return False
    # Stricter than suggest(): at its cutoff a state key like "zone" would pass for "ne".
    close = difflib.get_close_matches(op, OPERATORS, n=1, cutoff=0.75)
    return op in OPERATORS or op.lower() in _ALIASES or bool(close)


class _Compiler:
    def __init__(self, odd_keys: Callable[[Mapping[Any, Any], Path], bool] | None) -> None:
        self.errors: list[tuple[Path, str]] = []
        self.odd_keys = odd_keys
        self.reported = False  # the caller's odd_keys reported an error of its own

    def error(self, path: Path, message: str) -> None:
        self.errors.append((path, message))

    def condition(self, raw: Any, path: Path) -> Node | None:
        if not isinstance(raw, Mapping):
            self.error(path, f"must be a mapping of state keys to values, not {describe(raw)}")
            return None
        if not raw:
            self.error(path, "must not be empty (omit `when` for a rule that always applies)")
            return None
        children: list[Node] = []
        odd = self.odd_keys is not None and self.odd_keys(raw, path)
        self.reported |= odd
        for key, value in raw.items():
            if odd and not isinstance(key, str):
                continue  # reported by odd_keys, each at its own line
            child = self.entry(key, value, (*path, key) if isinstance(key, str) else path)
            if child is not None:
                children.append(child)
        if len(children) == 1:
            return children[0]
        return AllOf(tuple(children))

    def entry(self, key: Any, value: Any, path: Path) -> Node | None:
        if not isinstance(key, str):
            self.error(
                path,
                f"state key {key!r} must be a string (quote it: YAML reads yes/no/on/off "
                "and numbers as other types)",
            )
            return None
        if key in ("all", "any"):
            return self.combine(key, value, path)
        if key == "not":
            child = self.condition(value, path)
            return NotOf(child) if child is not None else None
        if not key or any(not part for part in key.split(".")):
            self.error(path, f"state key {key!r} has an empty part")
            return None
        if isinstance(value, Mapping):
            hint = suggest(key, ("not",)) if value and not any(map(_operator_like, value)) else ""
            if hint:
                # `nott: {a: 1}` is a typo of the combinator, not a bad operator `a`.
                self.error(
                    path,
                    f"a mapping value is an operator map and this one holds none{hint}",
                )
                return None
            return self.operators(key, value, path)
        if isinstance(value, list | tuple):
            hint = ""
            if value and all(isinstance(item, Mapping) for item in value):
                hint = suggest(key, ("all", "any"))  # a list of conditions: `anyy: [...]`
            self.error(path, f"a list is not a value to compare with; use {{in: [...]}}{hint}")
            return None
        if not self.scalar(value, path):
            return None
        return Term(key, "eq", value)

    def combine(self, name: str, value: Any, path: Path) -> Node | None:
        if not isinstance(value, list | tuple) or not value:
            self.error(path, f"`{name}` must be a non-empty list of conditions")
            return None
        children = [self.condition(item, (*path, i)) for i, item in enumerate(value)]
        if any(child is None for child in children):
            return None
        nodes = tuple(c for c in children if c is not None)
        return AllOf(nodes) if name == "all" else AnyOf(nodes)

    def operators(self, key: str, ops: Mapping[Any, Any], path: Path) -> Node | None:
        if not ops:
            self.error(path, f"operator map must not be empty (one of: {', '.join(OPERATORS)})")
            return None
        terms: list[Node] = []
        for op, operand in ops.items():
            op_path = (*path, op) if isinstance(op, str) else path
            if not isinstance(op, str) or op not in OPERATORS:
                hint = ""
                if isinstance(op, str):
                    alias = _ALIASES.get(op.lower())
                    hint = f" (did you mean '{alias}'?)" if alias else suggest(op, OPERATORS)
                self.error(
                    op_path,
                    f"unknown operator {op!r}{hint}; a mapping value is an operator map "
                    f"(one of: {', '.join(OPERATORS)})",
                )
                continue
            if self.operand(op, operand, op_path):
                value = tuple(operand) if op in ("in", "not_in") else operand
                terms.append(Term(key, op, value))
        if len(terms) != len(ops):
            return None
        return terms[0] if len(terms) == 1 else AllOf(tuple(terms))

    def scalar(self, value: Any, path: Path) -> bool:
        if _kind(value) is None:
            self.error(path, f"must be a string, number, boolean or null, not {describe(value)}")
            return False
        # Infinity and NaN have no JSON spelling (GET /api/score shows conditions).
        if isinstance(value, float) and not math.isfinite(value):
            self.error(
                path, "must be a finite number" if not math.isnan(value) else "must not be NaN"
            )
            return False
        return True

    def operand(self, op: str, operand: Any, path: Path) -> bool:
        if op == "exists":
            if not isinstance(operand, bool):
                self.error(path, f"`exists` takes true or false, not {describe(operand)}")
                return False
            return True
        if op in ("eq", "ne"):
            return self.scalar(operand, path)
        if op in ("in", "not_in"):
            if not isinstance(operand, list | tuple) or not operand:
                self.error(path, f"`{op}` takes a non-empty list of values")
                return False
            return all(self.scalar(v, (*path, i)) for i, v in enumerate(operand))
        # lt le gt ge
        if _kind(operand) not in ("number", "str"):
            self.error(path, f"`{op}` compares with a number or a string, not {describe(operand)}")
            return False
        return self.scalar(operand, path)


def compile_condition(
    raw: Any,
    path: Sequence[PathPart] = (),
    odd_keys: Callable[[Mapping[Any, Any], Path], bool] | None = None,
) -> Condition:
    """Compile a ``when`` mapping; raise ConditionError with the path of every bad node.

    ``odd_keys(mapping, path)``, when given, reports a condition's keys that are no
    string itself (the score checker: each at its own line, as written) and says whether
    there was one; the error is then the caller's, not in ConditionError's list.
    """
    compiler = _Compiler(odd_keys)
    root = compiler.condition(raw, tuple(path))
    if compiler.errors or compiler.reported:
        raise ConditionError(compiler.errors)
    if root is None:
        raise ConditionError([(tuple(path), "invalid condition")])
    return Condition(root, plain(raw))
