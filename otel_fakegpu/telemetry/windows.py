"""Sliding-window event counts: dcgm-exporter's DCGM_EXP_XID_ERRORS_COUNT and DCGM_EXP_CLOCK_EVENTS_COUNT.

dcgm-exporter asks DCGM for every sample of the event field in the last window on each scrape. Here each
cycle hands over only the samples stored since the previous cycle; the window keeps them until they age
out, with running totals, so a cycle costs the new samples, not the whole window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from otel_fakegpu.engine import SampleBatch
from otel_fakegpu.fields import EventDecoder

DEFAULT_COUNT_WINDOW_MS = 300_000  # dcgm-exporter's --xid-count-window-size / --clock-events-count-window-size

CountKey = tuple[int, str]  # (GPU entity id, code)


class EventWindow:
    """Counts, per GPU and code, the samples of one event field stamped within the last ``window_s``."""

    def __init__(self, decoder: EventDecoder, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError(f"window must be positive, got {window_s} s")
        self.decoder = decoder
        self.window_s = window_s
        self._batches: deque[SampleBatch] = deque()
        self._totals: dict[CountKey, int] = {}

    def add(self, batches: Iterable[SampleBatch]) -> None:
        """Take in newly stored samples (oldest first)."""
        for batch in batches:
            if self._tally(batch, +1):
                self._batches.append(batch)

    def expire(self, now: float) -> None:
        """Forget samples stamped before ``now - window_s``."""
        horizon = now - self.window_s
        while self._batches and self._batches[0].timestamp < horizon:
            self._tally(self._batches.popleft(), -1)

    def counts(self) -> dict[int, list[tuple[str, int]]]:
        """Per GPU entity, its (code, count) pairs in code order; GPUs without events are absent."""
        by_entity: dict[int, list[tuple[str, int]]] = {}
        for (entity_id, code), count in sorted(self._totals.items(), key=_numeric_first):
            by_entity.setdefault(entity_id, []).append((code, count))
        return by_entity

    def _tally(self, batch: SampleBatch, sign: int) -> bool:
        """Add (or remove) a batch's events to the totals; False when it holds none."""
        decode, totals, counted = self.decoder.decode, self._totals, False
        for entity_id, value in zip(batch.entity_ids, batch.values, strict=True):
            if type(value) is not int:  # blank, or not an event code
                continue
            for code in decode(value):
                key = (entity_id, code)
                left = totals.get(key, 0) + sign
                if left > 0:
                    totals[key] = left
                else:
                    totals.pop(key, None)
                counted = True
        return counted


def _numeric_first(item: tuple[CountKey, int]) -> tuple[int, int, str]:
    (entity_id, code), _ = item
    return entity_id, int(code) if code.isdigit() else 1 << 31, code
