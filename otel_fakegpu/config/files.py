"""Reading a file the user names: the one way the package reads a user's file, at start and at reload.

Opened without blocking (a FIFO with no writer would otherwise hang the caller for ever), checked to be a regular
file (``/dev/zero``, a FIFO or a directory is refused, also behind a symlink), read up to a size bound, decoded as
UTF-8 with an optional byte-order mark; YAML through the safe loader with bounds on nesting and aliases. Every
failure is one ConfigError line naming the file. tests/test_file_access.py fails on any other ``open`` of a file.

Its counterpart for a file the exporter writes where the user says (``backfill --out``): written beside the target
and renamed over it only while that is absent or a regular file, so a device, FIFO or symlink is never replaced.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from otel_fakegpu.config.errors import ConfigError

T = TypeVar("T")
DEFAULT_LIMIT_BYTES = 1 << 20  # far above any real collectors file, web config or scenario
MAX_YAML_DEPTH = 16  # the web config nests three deep
MAX_YAML_ALIASES = 32


class FileReadError(ConfigError):
    """A file that cannot be read as text: its ``path``, the 1-based ``line`` of the problem (None when it is
    not on a line) and the ``reason``; its message is ``PATH[:LINE]: reason``."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}")
        self.path, self.line, self.reason = path, line, reason


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def read_bounded(path: str | Path, limit: int = DEFAULT_LIMIT_BYTES, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``; raises FileReadError (``PATH: cannot read WHAT: reason``) when it
    cannot be opened, is not a regular file or is larger than ``limit`` bytes. Never blocks on a FIFO or device."""
    try:
        fd = os.open(path, _OPEN_FLAGS)  # O_NONBLOCK: opening a FIFO returns at once; fstat then refuses it
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise FileReadError(path, None, f"cannot read {what}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileReadError(path, None, f"cannot read {what}: {file_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise FileReadError(path, None, f"cannot read {what}: larger than {limit} bytes")
        chunks, size = [], 0
        while size <= limit:  # the file may grow after fstat: the bound holds on what is read
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileReadError(path, None, f"cannot read {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileReadError(path, None, f"cannot read {what}: larger than {limit} bytes")
    return b"".join(chunks)


def read_config_text(path: str | Path, limit: int = DEFAULT_LIMIT_BYTES, what: str = "file") -> str:
    """The text of the regular file ``path`` (see read_bounded); also FileReadError when it is not UTF-8."""
    data = read_bounded(path, limit, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileReadError(path, line, f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


@functools.cache
def _bounded_loader() -> Any:
    """The safe loader, refusing deep nesting (which would exhaust the stack), many aliases (an alias bomb: a
    few lines that expand to billions of nodes) and ``!!binary`` (bytes, which no setting takes). Made on first
    use: only a YAML file needs PyYAML, and a plain start need not import it."""
    import yaml  # noqa: PLC0415

    class BoundedLoader(yaml.SafeLoader):
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

    def refuse_binary(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(None, None, "!!binary is not accepted", node.start_mark)

    BoundedLoader.add_constructor("tag:yaml.org,2002:binary", refuse_binary)
    return BoundedLoader


def load_yaml(text: str, source: str) -> Any:
    """One YAML document, safely and with bounds; raises ConfigError ``SOURCE[:LINE]: invalid YAML: reason``."""
    import yaml  # noqa: PLC0415 - see _bounded_loader

    loader = None
    try:
        loader = _bounded_loader()(text)  # the reader checks every character here already
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        reason = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line, whatever the error
        raise ConfigError(f"{where}: invalid YAML: {reason}") from None
    finally:
        if loader is not None:
            loader.dispose()


class OutputError(Exception):
    """The output could not be written (a full disk, a closed pipe): one line and exit 1."""


def check_output_path(text: str, what: str) -> Path:
    """``text`` (the option ``what``) as a path to write a new file at or to replace: absent or a regular file,
    never a device, FIFO, directory or symlink (a rename would replace it with a file); ConfigError otherwise."""
    if not text:
        raise ConfigError(f"{what}: give a file name")
    path = Path(text)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ConfigError(f"{what}={text!r}: {exc.strerror or exc}") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a symlink" if stat.S_ISLNK(info.st_mode) else file_kind(info.st_mode)
        raise ConfigError(f"{what}={text!r} is {kind}; only a new file or a regular one is written")
    if not path.parent.is_dir():
        raise ConfigError(f"{what}={text!r}: no such directory {str(path.parent)!r}")
    return path


def replace_file(path: Path, write: Callable[[IO[str]], T], what: str = "output") -> T:
    """``write`` (its result returned) into a new file beside ``path``, renamed over it when whole. The partial
    file is removed on any failure or exit, and never renamed over what stopped being a regular file meanwhile."""
    partial = None
    try:
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(fd, 0o666 & ~mask)  # as open() would have made it, not mkstemp's 0600
            result = write(out)
        check_output_path(str(path), what)
        os.replace(partial, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(partial)  # gone already after the rename
    return result
