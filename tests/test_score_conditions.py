"""Condition semantics: operators, dotted keys, combinators, type safety, compile errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segue.core.conditions import ConditionError, compile_condition, format_path


def match(when, state) -> bool:
    return compile_condition(when).matches(state)


def compile_errors(when, path=("when",)) -> list[tuple[str, str]]:
    with pytest.raises(ConditionError) as info:
        compile_condition(when, path)
    return [(format_path(p), m) for p, m in info.value.errors]


# --- equality and operators ---------------------------------------------------------


def test_literal_is_equality():
    assert match({"in_combat": True}, {"in_combat": True})
    assert not match({"in_combat": True}, {"in_combat": False})
    assert match({"zone": "crypt"}, {"zone": "crypt"})
    assert not match({"zone": "crypt"}, {"zone": "Crypt"})
    assert match({"n": 1}, {"n": 1.0})


def test_several_entries_all_must_hold():
    when = {"in_combat": True, "enemies": {"gt": 2}}
    assert match(when, {"in_combat": True, "enemies": 3})
    assert not match(when, {"in_combat": True, "enemies": 2})
    assert not match(when, {"in_combat": False, "enemies": 5})


@pytest.mark.parametrize(
    ("op", "operand", "value", "expected"),
    [
        ("eq", 3, 3, True),
        ("eq", 3, 4, False),
        ("ne", 3, 4, True),
        ("ne", 3, 3, False),
        ("lt", 0.3, 0.29, True),
        ("lt", 0.3, 0.3, False),
        ("le", 0.3, 0.3, True),
        ("gt", 0, 1, True),
        ("gt", 0, 0, False),
        ("ge", 0, 0, True),
        ("ge", 0, -1, False),
        ("lt", "m", "a", True),  # strings order lexicographically
        ("in", ["crypt", "catacombs"], "crypt", True),
        ("in", ["crypt", "catacombs"], "town", False),
        ("not_in", ["crypt"], "town", True),
        ("not_in", ["crypt"], "crypt", False),
        ("exists", True, None, True),  # present, even if null
        ("exists", False, None, False),
    ],
)
def test_operators(op, operand, value, expected):
    assert match({"k": {op: operand}}, {"k": value}) is expected


def test_several_operators_in_one_map_all_hold():
    when = {"hp": {"gt": 0, "le": 0.5}}
    assert match(when, {"hp": 0.5})
    assert not match(when, {"hp": 0})
    assert not match(when, {"hp": 0.6})


def test_missing_key_never_matches_except_exists_false():
    for when in (
        {"k": True},
        {"k": {"ne": 1}},
        {"k": {"not_in": [1]}},
        {"k": {"lt": 10}},
        {"k": {"exists": True}},
    ):
        assert not match(when, {}), when
    assert match({"k": {"exists": False}}, {})
    assert not match({"k": {"exists": False}}, {"k": 0})


@pytest.mark.parametrize(
    ("when", "value"),
    [
        ({"k": 1}, True),  # bool is not a number
        ({"k": True}, 1),
        ({"k": 0}, False),
        ({"k": {"gt": 0}}, True),
        ({"k": {"lt": 1}}, False),
        ({"k": {"lt": 5}}, "3"),
        ({"k": {"gt": "a"}}, 3),
        ({"k": {"in": [1, 2]}}, True),
        ({"k": {"lt": 5}}, [1]),
        ({"k": {"lt": 5}}, {"a": 1}),
        ({"k": "3"}, 3),
        ({"k": None}, 0),
        ({"k": {"gt": 0}}, float("nan")),
        ({"k": {"lt": 0}}, float("nan")),
    ],
)
def test_incompatible_types_are_false_not_errors(when, value):
    assert match(when, {"k": value}) is False


def test_ne_and_not_in_hold_for_a_present_value_of_another_type():
    # "not equal" is true of a present value that cannot equal the operand.
    assert match({"k": {"ne": 1}}, {"k": True})
    assert match({"k": {"not_in": ["a"]}}, {"k": 3})


def test_null_literal_matches_present_null_only():
    assert match({"boss": None}, {"boss": None})
    assert not match({"boss": None}, {})


# --- keys ---------------------------------------------------------------------------


def test_dotted_key_reaches_nested_state():
    when = {"player.health": {"lt": 0.3}}
    assert match(when, {"player": {"health": 0.2}})
    assert not match(when, {"player": {"health": 0.9}})
    assert not match(when, {"player": {}})
    assert not match(when, {"player": 0.2})  # not a mapping: missing
    assert not match(when, {"player": None})


def test_literal_dotted_key_in_state_is_accepted():
    when = {"player.health": {"lt": 0.3}}
    assert match(when, {"player.health": 0.1})
    # The literal key wins over the nested path.
    assert match(when, {"player.health": 0.1, "player": {"health": 0.9}})
    # Mixed spellings: a literal dotted key one level down.
    assert match({"a.b.c": 1}, {"a": {"b.c": 1}})
    assert match({"a.b.c": 1}, {"a.b": {"c": 1}})


def test_deeply_nested():
    assert match({"a.b.c.d": "x"}, {"a": {"b": {"c": {"d": "x"}}}})


def test_keys_lists_every_dotted_key_read():
    cond = compile_condition(
        {
            "in_combat": True,
            "any": [{"player.health": {"lt": 0.3}}, {"not": {"boss": {"exists": True}}}],
            "all": [{"zone": {"in": ["a"]}}],
        }
    )
    assert cond.keys() == {"in_combat", "player.health", "boss", "zone"}


def test_source_is_kept_as_plain_data():
    raw = {"player.health": {"lt": 0.3}}
    cond = compile_condition(raw)
    assert cond.source == raw
    assert cond.source is not raw


# --- combinators --------------------------------------------------------------------


def test_all_any_not():
    when = {
        "any": [{"boss": {"exists": True}}, {"enemies": {"ge": 5}}],
        "not": {"zone": "town"},
    }
    assert match(when, {"boss": "wyrm", "zone": "keep"})
    assert match(when, {"enemies": 5, "zone": "keep"})
    assert not match(when, {"enemies": 5, "zone": "town"})
    assert not match(when, {"enemies": 4, "zone": "keep"})
    assert match({"all": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 2})
    assert not match({"all": [{"a": 1}, {"b": 2}]}, {"a": 1})
    assert match({"not": {"a": {"exists": True}}}, {})


def test_nested_combinators():
    when = {"not": {"any": [{"a": True}, {"all": [{"b": 1}, {"c": {"lt": 0}}]}]}}
    assert match(when, {"a": False, "b": 1, "c": 1})
    assert not match(when, {"a": True})
    assert not match(when, {"b": 1, "c": -1})


def test_odd_state_never_raises():
    cond = compile_condition({"a.b": {"gt": 1}, "c": {"in": [1]}})
    for state in (None, [], "x", 3, {"a": [1, 2]}, {"a": {"b": object()}}, {1: 2}):
        assert cond.matches(state) is False  # type: ignore[arg-type]


# --- compile errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "path", "message"),
    [
        ({"hp": {"lte": 1}}, "when.hp.lte", "unknown operator 'lte' (did you mean 'le'?)"),
        ({"hp": {"between": 1}}, "when.hp.between", "unknown operator 'between'"),
        ({"hp": {"in": 3}}, "when.hp.in", "`in` takes a non-empty list of values"),
        ({"hp": {"in": []}}, "when.hp.in", "`in` takes a non-empty list of values"),
        ({"hp": {"lt": True}}, "when.hp.lt", "`lt` compares with a number or a string"),
        ({"hp": {"lt": None}}, "when.hp.lt", "`lt` compares with a number or a string"),
        ({"hp": {"exists": 1}}, "when.hp.exists", "`exists` takes true or false"),
        ({"hp": {"eq": [1]}}, "when.hp.eq", "must be a string, number, boolean or null"),
        ({"hp": {"lt": math.nan}}, "when.hp.lt", "must not be NaN"),
        ({"hp": {"gt": -math.inf}}, "when.hp.gt", "must be a finite number"),
        ({"hp": math.inf}, "when.hp", "must be a finite number"),
        ({"hp": [1, 2]}, "when.hp", "a list is not a value to compare with; use {in: [...]}"),
        # Typos of the combinators are named as such, not as a bad value or operator.
        (
            {"anyy": [{"a": 1}]},
            "when.anyy",
            "a list is not a value to compare with; use {in: [...]} (did you mean 'any'?)",
        ),
        (
            {"al": [{"a": 1}, {"b": 2}]},
            "when.al",
            "a list is not a value to compare with; use {in: [...]} (did you mean 'all'?)",
        ),
        (
            {"nott": {"zone": "village"}},
            "when.nott",
            "a mapping value is an operator map and this one holds none (did you mean 'not'?)",
        ),
        ({"note": {"lte": 1}}, "when.note.lte", "unknown operator 'lte' (did you mean 'le'?)"),
        ({"any_": [1, 2]}, "when.any_", "a list is not a value to compare with; use {in: [...]}"),
        ({"hp": {}}, "when.hp", "operator map must not be empty"),
        ({}, "when", "must not be empty"),
        ([{"a": 1}], "when", "must be a mapping of state keys to values, not a list"),
        ("in_combat", "when", "must be a mapping of state keys to values, not a string"),
        ({"any": {"a": 1}}, "when.any", "`any` must be a non-empty list of conditions"),
        ({"all": []}, "when.all", "`all` must be a non-empty list of conditions"),
        ({"all": [{"a": 1}, 3]}, "when.all[1]", "must be a mapping of state keys to values"),
        ({"not": [1]}, "when.not", "must be a mapping of state keys to values"),
        ({True: 1}, "when", "state key True must be a string"),
        ({"player..hp": 1}, "when.player..hp", "state key 'player..hp' has an empty part"),
        ({"hp": {"in": [1, [2]]}}, "when.hp.in[1]", "must be a string, number, boolean or null"),
    ],
)
def test_compile_errors_carry_the_path(when, path, message):
    errors = compile_errors(when)
    assert len(errors) == 1, errors
    assert errors[0][0] == path
    assert errors[0][1].startswith(message), errors[0][1]


def test_compile_reports_every_error():
    errors = compile_errors({"a": {"lte": 1}, "any": [{"b": {"in": 1}}, {"c": {"gt": []}}]})
    assert [p for p, _ in errors] == ["when.a.lte", "when.any[0].b.in", "when.any[1].c.gt"]


def test_path_prefix_is_kept():
    errors = compile_errors({"x": {"bad": 1}}, ("rules", 2, "when"))
    assert errors[0][0] == "rules[2].when.x.bad"


# --- properties ---------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
operand_scalars = (
    st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)


@given(value=json_values, operand=operand_scalars)
def test_eq_and_ne_are_complements_for_present_keys(value, operand):
    state = {"k": value}
    assert match({"k": {"eq": operand}}, state) != match({"k": {"ne": operand}}, state)


@given(value=json_values, operands=st.lists(operand_scalars, min_size=1, max_size=4))
def test_in_and_not_in_are_complements_for_present_keys(value, operands):
    state = {"k": value}
    assert match({"k": {"in": operands}}, state) != match({"k": {"not_in": operands}}, state)


@given(
    state=st.dictionaries(st.text(max_size=4), json_values, max_size=5),
    op=st.sampled_from(["lt", "le", "gt", "ge"]),
    operand=st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
)
def test_ordering_never_raises_and_bools_never_order(state, op, operand):
    cond = compile_condition({"k": {op: operand}, "any": [{"a.b": {op: operand}}]})
    result = cond.matches(state)
    assert isinstance(result, bool)
    if isinstance(state.get("k"), bool):
        assert not result


@given(
    x=st.floats(allow_nan=False) | st.integers(),
    t=st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
)
def test_numeric_ordering_agrees_with_python(x, t):
    state = {"player": {"hp": x}}
    assert match({"player.hp": {"lt": t}}, state) == (x < t)
    assert match({"player.hp": {"ge": t}}, state) == (x >= t)
    assert match({"not": {"player.hp": {"lt": t}}}, state) == (not x < t)


# --- the compiled closures agree with the reference node tree -------------------------

KEYS = ("a", "b", "a.b", "a.b.c", "b.a")


class _Str(str):
    """A str subclass: takes the reference path in the closures."""


operands = st.sampled_from([0, 1, 1.0, -1, True, False, "a", "b", ""]) | operand_scalars


def _leaf():
    key = st.sampled_from(KEYS)
    op_map = st.dictionaries(
        st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]),
        operands.filter(lambda v: not isinstance(v, bool)),
        min_size=1,
        max_size=2,
    )
    equality = st.dictionaries(
        st.sampled_from(["eq", "ne"]), operands | st.none(), min_size=1, max_size=2
    )
    membership = st.dictionaries(
        st.sampled_from(["in", "not_in"]),
        st.lists(operands | st.none(), min_size=1, max_size=4),
        min_size=1,
        max_size=2,
    )
    exists = st.fixed_dictionaries({"exists": st.booleans()})
    value = operands | st.none() | op_map | equality | membership | exists
    return st.dictionaries(key, value, min_size=1, max_size=3)


conditions = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"all": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"any": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"not": inner}),
    ),
    max_leaves=6,
)
# Values that collide across families (1 == True == 1.0, 0 == False) and odd objects.
odd_scalars = (
    st.sampled_from([0, 1, 0.0, 1.0, -1, True, False, None, "", "a", "b"])
    | scalars
    | st.sampled_from([math.nan, math.inf, -0.0, 10**30, _Str("x"), _Str(""), (1, 2), b"a"])
    | st.text(max_size=2).map(_Str)
)
state_values = st.recursive(
    odd_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "a.b", "b.c"]), inner, max_size=3)
    ),
    max_leaves=10,
)
states = st.dictionaries(st.sampled_from([*KEYS, "c"]), state_values, max_size=5)


@settings(max_examples=400)
@given(when=conditions, state=states, wrap=st.sampled_from(["dict", "proxy", "none"]))
def test_compiled_matcher_agrees_with_the_node_tree(when, state, wrap):
    from types import MappingProxyType

    cond = compile_condition(when)
    subject = {"dict": state, "proxy": MappingProxyType(state), "none": None}[wrap]
    assert cond.matches(subject) is cond.root.matches(subject)


def test_condition_pickles_without_its_closure():
    import pickle

    cond = compile_condition({"a.b": {"gt": 1}, "c": True})
    assert cond.matches({"a": {"b": 2}, "c": True})  # the closure is built
    again = pickle.loads(pickle.dumps(cond))
    assert again == cond
    assert again.matches({"a": {"b": 2}, "c": True})
    assert not again.matches({"a": {"b": 1}, "c": True})
