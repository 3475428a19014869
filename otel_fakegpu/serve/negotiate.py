"""Content negotiation for /metrics: OpenMetrics when the client prefers it, gzip when it accepts it."""

from __future__ import annotations

from otel_fakegpu.outputs import Format, Variant

_OPENMETRICS = "application/openmetrics-text"
_TEXT = ("text/plain", "text/*", "*/*")


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


class NegotiationTable:
    """The variant for each pair of raw ``Accept``/``Accept-Encoding`` values, parsed once: a scraper sends the same
    two headers with every scrape, and parsing Prometheus's five media ranges costs more than the rest of a cached
    page's answer. The values are the client's to choose, so the table is bounded in entries and in key length."""

    MAX_ENTRIES = 256
    MAX_KEY_CHARS = 1024

    def __init__(self) -> None:
        self._known: dict[tuple[str | None, str | None], Variant] = {}

    def variant(self, accept: str | None, accept_encoding: str | None) -> Variant:
        key = (accept, accept_encoding)
        known = self._known.get(key)
        if known is not None:
            return known
        variant = (choose_format(accept), accepts_gzip(accept_encoding))
        if len(accept or "") + len(accept_encoding or "") <= self.MAX_KEY_CHARS:
            if len(self._known) >= self.MAX_ENTRIES:
                self._known.clear()  # a client cycling through values: start over rather than grow
            self._known[key] = variant
        return variant

    def __len__(self) -> int:
        return len(self._known)
