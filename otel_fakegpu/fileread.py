"""Reading a configuration file the user names: bounded in size (``/dev/zero`` is not a config), UTF-8 with
an optional byte-order mark, and every failure one ConfigError line naming the file."""

from __future__ import annotations

from pathlib import Path

from otel_fakegpu.settings import ConfigError

DEFAULT_LIMIT_BYTES = 1 << 20  # far above any real collectors file, web config or scenario


def read_config_text(path: str | Path, limit: int = DEFAULT_LIMIT_BYTES, what: str = "file") -> str:
    """The file's text; raises ConfigError (``PATH: cannot read WHAT: reason``) when it cannot be read,
    is larger than ``limit`` bytes or is not UTF-8."""
    try:
        with open(path, "rb") as handle:  # a FIFO or device works too, within the limit
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigError(f"{path}: cannot read {what}: larger than {limit} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
