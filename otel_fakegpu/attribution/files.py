"""Re-reading a file or directory only when it changed, keeping the last good parse when it turns bad."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, TypeVar

from otel_fakegpu.attribution.source import SourceError

T = TypeVar("T")
Stamp = tuple[tuple[str, int, int], ...]


def stamp_of(paths: list[str]) -> Stamp:
    """What changes when any of ``paths`` is rewritten, replaced, added or removed."""
    stamp = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        stamp.append((path, stat.st_mtime_ns, stat.st_size))
    return tuple(stamp)


class Reloading(Generic[T]):
    """Parses again only when ``stamp()`` differs. While the newest version is bad (or missing) it raises
    SourceError with the reason, without parsing again: the stage keeps the last good map and logs the
    outage once. Every exception counts as the version being bad, so the error stays until the file changes."""

    def __init__(self, stamp: Callable[[], Stamp], parse: Callable[[], T]) -> None:
        self._stamp, self._parse = stamp, parse
        self._seen: Stamp | None = None
        self._value: T | None = None
        self._error: str | None = None

    def get(self) -> T:
        stamp = self._stamp()
        if stamp != self._seen:
            self._seen = stamp
            try:
                self._value, self._error = self._parse(), None
            except Exception as exc:
                self._error = str(exc) or type(exc).__name__
        if self._error is not None:
            raise SourceError(self._error)
        assert self._value is not None
        return self._value
