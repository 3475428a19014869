"""Content negotiation for /metrics: OpenMetrics when the client prefers it, gzip when it accepts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from otel_fakegpu.outputs import Format, Variant

_OPENMETRICS = "application/openmetrics-text"
_TEXT = ("text/plain", "text/*", "*/*")
K = TypeVar("K")
V = TypeVar("V")


def _media_ranges(header: str) -> list[tuple[str, float]]:
    """``Accept``/``Accept-Encoding`` entries with their q-values; malformed q-values count as 0."""
    ranges = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def choose_format(accept: str | None) -> Format:
    """OpenMetrics only when the client ranks it above (or without) plain text, as Prometheus does."""
    if not accept:
        return Format.PROMETHEUS
    ranges = _media_ranges(accept)
    openmetrics = max((q for m, q in ranges if m == _OPENMETRICS), default=0.0)
    text = max((q for m, q in ranges if m in _TEXT), default=0.0)
    return Format.OPENMETRICS if openmetrics > 0 and openmetrics >= text else Format.PROMETHEUS


def accepts_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    return any(coding in ("gzip", "x-gzip", "*") and q > 0 for coding, q in _media_ranges(accept_encoding))


class BoundedMemo(Generic[K, V]):
    """``compute(key)`` remembered per key, for what a scraper repeats with every scrape (its headers, its request
    head). The keys are the client's to choose, so the memo is bounded in entries (full, it starts over rather than
    grow) and in key size (a longer key is computed every time, not kept)."""

    def __init__(
        self, compute: Callable[[K], V], max_entries: int, max_key_size: int, size: Callable[[K], int]
    ) -> None:
        self._compute, self._max_entries, self._max_key_size, self._size = compute, max_entries, max_key_size, size
        self._known: dict[K, V] = {}

    def __call__(self, key: K) -> V:
        try:
            return self._known[key]
        except KeyError:
            pass
        value = self._compute(key)
        if self._size(key) <= self._max_key_size:
            if len(self._known) >= self._max_entries:
                self._known.clear()
            self._known[key] = value
        return value

    def __len__(self) -> int:
        return len(self._known)


def _negotiate(headers: tuple[str | None, str | None]) -> Variant:
    return choose_format(headers[0]), accepts_gzip(headers[1])


class NegotiationTable:
    """The variant for each pair of raw ``Accept``/``Accept-Encoding`` values, parsed once: a scraper sends the same
    two headers with every scrape, and parsing Prometheus's five media ranges costs more than the rest of a cached
    page's answer (a BoundedMemo: at most 256 pairs, a pair over 1 KiB parsed every time)."""

    MAX_ENTRIES = 256
    MAX_KEY_CHARS = 1024

    def __init__(self) -> None:
        self._known = BoundedMemo(
            _negotiate, self.MAX_ENTRIES, self.MAX_KEY_CHARS, lambda key: len(key[0] or "") + len(key[1] or "")
        )

    def variant(self, accept: str | None, accept_encoding: str | None) -> Variant:
        return self._known((accept, accept_encoding))

    def __len__(self) -> int:
        return len(self._known)
