"""Reading a configuration file the user names: bounded in size (``/dev/zero`` is not a config), UTF-8 with
an optional byte-order mark, YAML through the safe loader with bounds on nesting and aliases, and every failure
one ConfigError line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from otel_fakegpu.config.errors import ConfigError

DEFAULT_LIMIT_BYTES = 1 << 20  # far above any real collectors file, web config or scenario
MAX_YAML_DEPTH = 16  # the web config nests three deep
MAX_YAML_ALIASES = 32


class FileReadError(ConfigError):
    """A file that cannot be read as text: its ``path``, the 1-based ``line`` of the problem (None when it is
    not on a line) and the ``reason``; its message is ``PATH[:LINE]: reason``."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}")
        self.path, self.line, self.reason = path, line, reason


def read_config_text(path: str | Path, limit: int = DEFAULT_LIMIT_BYTES, what: str = "file") -> str:
    """The file's text; raises FileReadError (``PATH: cannot read WHAT: reason``) when it cannot be read,
    is larger than ``limit`` bytes or is not UTF-8."""
    try:
        with open(path, "rb") as handle:  # a FIFO or device works too, within the limit
            data = handle.read(limit + 1)
    except OSError as exc:
        raise FileReadError(path, None, f"cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FileReadError(path, None, f"cannot read {what}: larger than {limit} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileReadError(path, line, f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing deep nesting (which would exhaust the stack) and many aliases (an alias
    bomb: a few lines that expand to billions of nodes)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, source: str) -> Any:
    """One YAML document, safely and with bounds; raises ConfigError ``SOURCE[:LINE]: invalid YAML: reason``."""
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader checks every character here already
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        reason = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line, whatever the error
        raise ConfigError(f"{where}: invalid YAML: {reason}") from None
    finally:
        if loader is not None:
            loader.dispose()
