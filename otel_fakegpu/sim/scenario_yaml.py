"""Reads a YAML file into plain data plus the line of every value, safely and within bounds.

PyYAML's safe composer gives nodes with positions; the tree is turned into dicts, lists and scalars while
each path (``("events", 2, "xid")``) remembers its 1-based line. Aliases, duplicate keys, non-scalar keys
and too many values are refused, so a hostile file (read within config.files' size bound) costs a bounded parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_NODES = 100_000
Path_ = tuple[str | int, ...]
_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class YamlError(ValueError):
    """Unreadable or unsafe YAML; ``line`` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class LinedData:
    """The document as plain data, and where each part of it is written."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def load_lined(text: str) -> LinedData:
    """Parse one YAML document; raises YamlError with the line of the problem."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = (exc.problem or exc.context or "invalid YAML").strip()
        raise YamlError(f"invalid YAML: {reason}", mark.line + 1 if mark else 0) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    except RecursionError:
        raise YamlError("nested too deeply") from None
    result = LinedData(None)
    if node is None:
        return result
    builder = _Builder(result.lines)
    try:
        result.data = builder.build(node, ())
    except RecursionError:
        raise YamlError("nested too deeply") from None
    return result


class _Builder:
    def __init__(self, lines: dict[Path_, int]) -> None:
        self._lines = lines
        self._seen: set[int] = set()
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_, used_at: int = 0) -> Any:
        """``used_at``: the line that refers to ``node`` (an alias' own line is not kept by the composer)."""
        line = node.start_mark.line + 1
        if id(node) in self._seen:
            raise YamlError("aliases (*name) are not supported", used_at or line)
        self._seen.add(id(node))
        if len(self._seen) > MAX_NODES:
            raise YamlError(f"more than {MAX_NODES} values", line)
        self._lines[path] = line
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
            raise YamlError(f"tags such as {node.tag} are not supported", line)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), line) for i, item in enumerate(node.value)]
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            raise YamlError(f"bad value {node.value!r}: {str(exc).splitlines()[0]}", line) from None

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError("keys must be plain words (no <<, lists or mappings as keys)", line)
            key = str(key_node.value)
            if key in result:
                raise YamlError(f"duplicate key {key!r}", line)
            key_path: Path_ = (*path, key)
            result[key] = self.build(value_node, key_path, line)
            self._lines[key_path] = line
        return result
