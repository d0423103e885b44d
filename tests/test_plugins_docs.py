"""docs/plugins.md documents every hook (with its exact arguments) and every interface method."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from segue.core import hookspecs
from segue.core.cache import Cache
from segue.core.generator import Generator
from segue.core.plugins import DEFAULT_PLUGINS
from segue.core.storage import StorageSink

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "plugins.md"

HEADING = re.compile(r"^#+\s+`(segue_\w+)\(([^)]*)\)`\s*$", re.MULTILINE)


def hookspec_signatures() -> dict[str, list[str]]:
    """Every hookspec in core/hookspecs.py and its argument names."""
    out = {}
    for name, fn in vars(hookspecs).items():
        if callable(fn) and hasattr(fn, "segue_spec"):
            out[name] = list(inspect.signature(fn).parameters)
    return out


def documented_hooks(text: str) -> dict[str, list[str]]:
    """Hooks with a heading like ### `segue_x(a, b)`, and their documented arguments."""
    return {
        m.group(1): [a.strip() for a in m.group(2).split(",") if a.strip()]
        for m in HEADING.finditer(text)
    }


def undocumented(specs: dict[str, list[str]], text: str) -> list[str]:
    """Problems: hooks with no heading, headings with other arguments, headings of no hook."""
    docs = documented_hooks(text)
    problems = [f"{name}: no heading `{name}(...)`" for name in specs if name not in docs]
    problems += [
        f"{name}: documented as ({', '.join(docs[name])}), spec is ({', '.join(args)})"
        for name, args in specs.items()
        if name in docs and docs[name] != args
    ]
    problems += [f"{name}: documented but no such hookspec" for name in docs if name not in specs]
    return problems


def test_there_are_hookspecs() -> None:
    specs = hookspec_signatures()
    assert "segue_transform_prompt" in specs and len(specs) >= 10


def test_every_hookspec_is_documented_with_its_arguments() -> None:
    assert undocumented(hookspec_signatures(), DOC.read_text()) == []


def test_the_check_fails_for_a_missing_or_wrong_hook() -> None:
    specs = {"segue_a": ["x"], "segue_b": ["y", "z"]}
    text = "## Hooks\n\n### `segue_a(x)`\n\ntext\n\n### `segue_b(y)`\n\n### `segue_c()`\n"
    assert undocumented(specs, text) == [
        "segue_b: documented as (y), spec is (y, z)",
        "segue_c: documented but no such hookspec",
    ]
    assert undocumented(specs, "nothing") == [
        "segue_a: no heading `segue_a(...)`",
        "segue_b: no heading `segue_b(...)`",
    ]


def test_every_hook_has_an_example() -> None:
    """Each hook's section shows an implementation: ``def <hook>(`` in a code block."""
    text = DOC.read_text()
    for name in hookspec_signatures():
        start = text.index(f"`{name}(")
        following = text[start:]
        nxt = HEADING.search(following, 1)
        section = following[: nxt.start()] if nxt else following
        assert f"def {name}(" in section, f"{name}: no example implementation"


def test_every_interface_member_is_documented() -> None:
    text = DOC.read_text()
    for proto in (Generator, Cache, StorageSink):
        assert f"class {proto.__name__}(Protocol)" in text
        members = {n for n in vars(proto) if not n.startswith("_")}
        members |= set(getattr(proto, "__annotations__", {}))
        for member in sorted(members):
            pattern = rf"(def {member}\(|^\s+{member}: )"
            assert re.search(pattern, text, re.MULTILINE), f"{proto.__name__}.{member}"


def test_every_builtin_plugin_is_listed() -> None:
    text = DOC.read_text()
    for dotted in DEFAULT_PLUGINS:
        assert f"`{dotted}`" in text, dotted


IMPORT_LINE = re.compile(r"^\s*from (segue\.[\w.]+) import ([\w, ]+?)\s*(#.*)?$", re.MULTILINE)
DOTTED_NAME = re.compile(r"`(segue\.core(?:\.\w+)+)")


def test_every_import_path_shown_to_plugin_authors_works() -> None:
    """Each ``from segue... import ...`` in the examples, and each dotted name, resolves."""
    text = DOC.read_text()
    imports = IMPORT_LINE.findall(text)
    assert ("segue.core.audio", "TrackAudio", "") in imports  # the hook's argument
    for module, names, _comment in imports:
        loaded = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(loaded, name), f"from {module} import {name}"
    dotted = set(DOTTED_NAME.findall(text))
    assert "segue.core.seams.measure_seam" in dotted
    for path in sorted(dotted):
        parts = path.split(".")
        # The longest importable prefix, then attributes (a class's method, a module's name).
        for cut in range(len(parts), 1, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                assert hasattr(obj, attr), path
                obj = getattr(obj, attr)
            break
        else:
            raise AssertionError(f"{path}: no such module")
