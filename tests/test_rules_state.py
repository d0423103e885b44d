"""Game state merge: set (deep, dotted), unset, replace, and what bad shapes get."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segue.core.engine.state import StateError, StateLimits, StateUsage, apply_state, measure


def test_set_merges_deeply_and_dotted_keys_reach_nested_state():
    state = {"player": {"health": 1.0, "name": "ada"}, "zone": "keep"}
    out = apply_state(state, set={"player.health": 0.2, "in_combat": True})
    assert out == {"player": {"health": 0.2, "name": "ada"}, "zone": "keep", "in_combat": True}
    assert apply_state(state, set={"player": {"health": 0.2}}) == {
        "player": {"health": 0.2, "name": "ada"},
        "zone": "keep",
    }
    # Dotted keys inside nested objects, and paths created as needed.
    assert apply_state({}, set={"a": {"b.c": 1}, "x.y.z": None}) == {
        "a": {"b": {"c": 1}},
        "x": {"y": {"z": None}},
    }
    # A plain value replaces an object.
    assert apply_state(state, set={"player": 0}) == {"player": 0, "zone": "keep"}


def test_input_is_never_modified():
    state = {"player": {"health": 1.0, "inv": [1, 2]}, "zone": "keep"}
    before = copy.deepcopy(state)
    changes = {"player.health": 0.5, "player.inv": [3], "extra": {"k": [1]}}
    out = apply_state(state, set=changes, unset=["zone"])
    assert state == before
    out["extra"]["k"].append(2)  # the result does not alias the caller's values
    assert changes["extra"] == {"k": [1]}


def test_unset_removes_paths_and_ignores_missing_ones():
    state = {"player": {"health": 1.0, "name": "ada"}, "boss": "wyrm"}
    assert apply_state(state, unset=["boss", "player.name"]) == {"player": {"health": 1.0}}
    assert apply_state(state, unset=["nope", "boss.hp", "player.x.y"]) == state


def test_replace_then_unset_then_set():
    state = {"a": 1, "player": {"health": 1}}
    assert apply_state(state, replace={"b": 2}) == {"b": 2}
    assert apply_state(state, replace={}) == {}
    out = apply_state(state, set={"player.mana": 3}, unset=["player"], replace={"c": 1})
    assert out == {"c": 1, "player": {"mana": 3}}
    assert apply_state(None, set={"a": 1}) == {"a": 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"unset": "boss"}, "unset: must be a list of strings"),
        ({"unset": ["boss", 3]}, "unset: must be a list of strings"),
        ({"unset": ["a..b"]}, "unset: bad key 'a..b'"),
        ({"set": [1, 2]}, "set: must be an object, not a list"),
        ({"set": "x"}, "set: must be an object, not a string"),
        ({"replace": 5}, "replace: must be an object, not a number"),
        (
            {"set": {"zone.name": "x"}},
            "set.zone.name: cannot set below 'zone'",
        ),
        ({"set": {"zone": {"name": "x"}}}, "set.zone: cannot merge an object into 'zone'"),
        ({"set": {"player": {".hp": 1}}}, "set.player: bad key '.hp'"),
        ({"set": {"": 1}}, "set: bad key ''"),
        ({"set": {1: 1}}, "set: keys must be strings, not a number"),
    ],
)
def test_bad_shapes_name_the_field(kwargs, message):
    state = {"zone": "keep"}
    with pytest.raises(StateError) as err:
        apply_state(state, **kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)
    assert state == {"zone": "keep"}


keys = st.sampled_from(["a", "b", "c"])
values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(state=st.dictionaries(keys, values, max_size=3), path=st.lists(keys, min_size=1, max_size=3))
def test_set_then_read_back(state, path):
    # Setting a dotted path either raises StateError (a plain value on the way) or
    # makes that path hold the value while leaving every other top-level key alone.
    try:
        out = apply_state(state, set={".".join(path): "v"})
    except StateError:
        node = state
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is not None and not isinstance(node, dict):
                return
        raise
    node = out
    for part in path:
        node = node[part]
    assert node == "v"
    assert {k: v for k, v in out.items() if k != path[0]} == {
        k: v for k, v in state.items() if k != path[0]
    }


change_keys = st.sampled_from(["a", "b", "c", "a.b", "", "a..b"]) | st.integers(0, 2)
change_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=3),
    lambda inner: st.dictionaries(keys, inner, max_size=3) | st.lists(inner, max_size=2),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    state=st.dictionaries(keys, values, max_size=3),
    changes=st.dictionaries(change_keys, change_values, max_size=3),
    unset=st.sampled_from([None, (), []]),
)
def test_plain_dict_fast_path_agrees_with_the_general_merge(state, changes, unset):
    # A plain dict ``set`` takes a shortcut when it can; a read-only view of the same
    # mapping always takes the general path. Same result, same errors, input unchanged.
    from types import MappingProxyType

    before = copy.deepcopy(state)
    try:
        expected = apply_state(state, set=MappingProxyType(changes), unset=unset)
    except StateError as exc:
        with pytest.raises(StateError) as info:
            apply_state(state, set=changes, unset=unset)
        assert str(info.value) == str(exc)
        return
    out = apply_state(state, set=changes, unset=unset)
    assert out == expected
    assert state == before
    assert out is not state


# --- limits: keys, depth, dotted parts, bytes; usage kept from the change alone -------------

LIMITS = StateLimits(max_keys=50, max_depth=5, max_key_parts=4, max_bytes=2000)


def limited(state, usage, **kwargs):
    return apply_state(state, limits=LIMITS, usage=usage, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"set": {"a.b.c.d.e": 1}}, "set: key 'a.b.c.d.e' of 5 dotted parts, over the limit of 4"),
        ({"set": {"a" + ".a" * 30000: 1}}, "…' of 30001 dotted parts"),
        ({"set": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}, "nested deeper than 5 levels"),
        ({"set": {"a": [[[[[[1]]]]]]}}, "nested deeper than 5 levels"),
        ({"set": {"deep": json.loads("[" * 900 + "]" * 900)}}, "nested deeper than 5 levels"),
        ({"replace": {"a.b.c": {"d": {"e": [1]}}}}, "replace.a.b.c.d.e: nested deeper"),
        ({"set": {f"k{i}": i for i in range(60)}}, "set: 60 keys, over the limit of 50"),
        (
            {"set": {f"k{i}": i for i in range(50)}},
            "51 keys, over the limit of 50 (server.max_state_keys)",
        ),
        ({"set": {"s": "x" * 3000}}, "over the limit of 2000 (server.max_state_bytes)"),
        ({"set": {"n": 10**4000}}, "over the limit of 2000 (server.max_state_bytes)"),
    ],
)
def test_limits_refuse_the_whole_change_and_name_the_limit(kwargs, message):
    usage = StateUsage(0, 2)
    state = limited({}, usage, set={"keep": 1})
    before = (usage.keys, usage.bytes)
    with pytest.raises(StateError) as err:
        limited(state, usage, **kwargs)
    assert message in str(err.value)
    assert "server." in str(err.value) and "\n" not in str(err.value)
    assert (usage.keys, usage.bytes) == before  # nothing counted for a refused change


def test_a_state_at_its_limit_can_still_shrink_and_change_in_place():
    usage = StateUsage(0, 2)
    state = limited({}, usage, set={f"k{i}": i for i in range(50)})
    assert usage.keys == 50
    with pytest.raises(StateError, match="51 keys"):
        limited(state, usage, set={"one_more": 1})
    state = limited(state, usage, set={"k1": 2})
    state = limited(state, usage, unset=["k0"])
    state = limited(state, usage, set={"new": True})
    assert usage.keys == 50 and len(state) == 50


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "d.e"]), inner, max_size=3)
    ),
    max_leaves=8,
)
paths = st.sampled_from(["a", "b", "a.b", "a.c", "b.d.e", "c", "a.b.c"])
changes = st.one_of(
    st.builds(lambda d: {"set": d}, st.dictionaries(paths, values, max_size=3)),
    st.builds(lambda u: {"unset": u}, st.lists(paths, max_size=2)),
    st.builds(lambda d: {"replace": d}, st.dictionaries(paths, values, max_size=2)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(changes, max_size=12))
def test_usage_kept_from_changes_equals_the_state_measured_whole(steps):
    state: dict = {}
    usage = StateUsage(0, 2)
    for change in steps:
        try:
            state = apply_state(state, usage=usage, **change)
        except StateError:
            continue  # refused whole: nothing changed
        whole = measure(state)
        assert (usage.keys, usage.bytes) == (whole.keys, whole.bytes), change
