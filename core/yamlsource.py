"""YAML that remembers where everything came from.

``load_yaml(text)`` parses with a ``SafeLoader`` subclass whose mappings and lists
(``LineDict``, ``LineList``) record the line of every key, value and item, so that a
validator can report ``FILE:LINE`` for any path. Duplicate keys are recorded (not
silently overwritten) for the validator to report. Merge keys (``<<: *base``) work;
recursive aliases and alias bombs are refused.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MERGE_TAG = "tag:yaml.org,2002:merge"
# A score has hundreds of nodes; an alias "billion laughs" has billions once expanded.
MAX_EXPANDED_NODES = 200_000


class YamlSourceError(Exception):
    """The text is not YAML we accept; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"{line}: {message}")


class LineDict(dict):
    """A dict that knows the line of itself, of each key and of each value."""

    line: int
    key_lines: dict[Any, int]
    value_lines: dict[Any, int]
    duplicates: list[tuple[Any, int, int]]  # (key, line of the repeat, line of the first)
    # Every key YAML read as no string (`yes:`, `1:`, `~:`): (key, its line, as written).
    # Python takes some of them for one key (1 == True == 1.0), so each is listed here.
    odd_keys: list[tuple[Any, int, str]]

    def __init__(self, line: int = 1) -> None:
        super().__init__()
        self.line = line
        self.key_lines = {}
        self.value_lines = {}
        self.duplicates = []
        self.odd_keys = []


class LineList(list):
    """A list that knows the line of itself and of each item."""

    line: int
    item_lines: list[int]

    def __init__(self, line: int = 1) -> None:
        super().__init__()
        self.line = line
        self.item_lines = []


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class LineLoader(yaml.SafeLoader):
    """SafeLoader building LineDict/LineList, recording duplicate keys."""

    def flatten_mapping(self, node: MappingNode) -> None:
        # Remember how many pairs are the mapping's own before merges are prepended, so
        # that a key overriding a merged one is not taken for a duplicate.
        if not hasattr(node, "segue_own"):
            node.segue_own = sum(1 for key, _ in node.value if key.tag != MERGE_TAG)  # type: ignore[attr-defined]
        super().flatten_mapping(node)

    def construct_line_map(self, node: MappingNode) -> Iterator[LineDict]:
        data = LineDict(_line(node))
        yield data
        self.flatten_mapping(node)
        own = node.segue_own  # type: ignore[attr-defined]
        pairs = node.value
        split = len(pairs) - own
        own_lines: dict[Any, int] = {}
        for index, (key_node, value_node) in enumerate(pairs):
            key = self.construct_object(key_node, deep=False)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                )
            line = _line(key_node)
            if not isinstance(key, str):
                data.odd_keys.append((key, line, str(key_node.value)))
                if key in data:
                    # `1:` and `yes:` are one key to Python but not to the writer: no
                    # duplicate; each is reported as no string, at its own line.
                    continue
            # Merged pairs come first; the mapping's own keys override them silently.
            if index >= split:
                if key in own_lines:
                    data.duplicates.append((key, line, own_lines[key]))
                    continue  # keep the first; the repeat is reported
                own_lines[key] = line
            data[key] = self.construct_object(value_node, deep=False)
            data.key_lines[key] = line
            data.value_lines[key] = _line(value_node)

    def construct_line_seq(self, node: SequenceNode) -> Iterator[LineList]:
        data = LineList(_line(node))
        yield data
        for child in node.value:
            data.append(self.construct_object(child, deep=False))
            data.item_lines.append(_line(child))

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            # e.g. a date like 2024-13-45, or an integer with thousands of digits
            raise yaml.constructor.ConstructorError(
                None, None, f"bad value: {exc}", node.start_mark
            ) from None


LineLoader.add_constructor("tag:yaml.org,2002:map", LineLoader.construct_line_map)
LineLoader.add_constructor("tag:yaml.org,2002:seq", LineLoader.construct_line_seq)


def _check_size(root: Node) -> None:
    """Refuse recursive aliases and documents that explode once aliases are expanded."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        ident = id(node)
        if ident in sizes:
            return sizes[ident]
        if ident in active:
            raise YamlSourceError(_line(node), "invalid YAML: recursive aliases are not allowed")
        active.add(ident)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(ident)
        sizes[ident] = total
        if total > MAX_EXPANDED_NODES:
            raise YamlSourceError(
                _line(node), f"invalid YAML: more than {MAX_EXPANDED_NODES} nodes once expanded"
            )
        return total

    size(root)


def _mark_line(exc: yaml.MarkedYAMLError) -> int:
    mark = exc.problem_mark or exc.context_mark
    # "could not find expected ':'" is noticed a line late; the key's line is better.
    if exc.context and "simple key" in exc.context and exc.context_mark is not None:
        mark = exc.context_mark
    return mark.line + 1 if mark is not None else 1


def load_yaml(text: str) -> Any:
    """Parse one YAML document into LineDict/LineList/scalars; raise YamlSourceError."""
    try:
        loader = LineLoader(text)
    except yaml.reader.ReaderError as exc:
        # The reader refuses control characters (a NUL, an escape) before parsing starts.
        line = text.count("\n", 0, exc.position) + 1
        raise YamlSourceError(
            line, f"invalid YAML: control character U+{exc.character:04X} is not allowed"
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "cannot parse"
        if problem.startswith("but found") and exc.context:
            problem = f"{exc.context}, {problem}"
        if "<block end>" in problem or "<block mapping start>" in problem:
            problem += " (check the indentation)"
        if problem == "mapping values are not allowed here":
            # `prompt: Fanfare: brass and drums`: the second ": " starts a mapping.
            problem += ' (quote a value that contains ": ")'
        if exc.context == "while scanning an alias":
            # `from: *` in a transition: YAML takes a bare * for an alias.
            problem += ' (a bare * starts a YAML alias: write "*" in quotes)'
        raise YamlSourceError(_mark_line(exc), f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise YamlSourceError(1, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def line_of(root: Any, path: Sequence[Any]) -> int:
    """The line of the node at ``path`` (keys and indexes), or of its deepest ancestor.

    A scalar value reports its own line; a mapping or list reports the line of the key
    or item that holds it, which is where a reader looks for it.
    """
    node = root
    line = getattr(root, "line", 1)
    for part in path:
        if isinstance(node, LineDict):
            try:
                if part not in node:
                    break
            except TypeError:
                break
            value = node[part]
            line = node.value_lines[part] if _is_scalar(value) else node.key_lines[part]
            node = value
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def duplicates(root: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], int, int]]:
    """Every duplicate key in the tree: (path of the key, its line, line of the first)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, path)]
    seen: set[int] = set()
    while stack:
        node, where = stack.pop()
        if id(node) in seen:  # an alias shares its target: report it once
            continue
        seen.add(id(node))
        if isinstance(node, LineDict):
            for key, line, first in node.duplicates:
                yield (*where, key), line, first
            stack.extend((value, (*where, key)) for key, value in reversed(node.items()))
        elif isinstance(node, LineList):
            stack.extend((item, (*where, i)) for i, item in reversed(list(enumerate(node))))


__all__ = [
    "LineDict",
    "LineList",
    "LineLoader",
    "YamlSourceError",
    "duplicates",
    "line_of",
    "load_yaml",
]
