"""The Prometheus output: renders each cycle once and keeps the bytes that every scrape is served from."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from otel_fakegpu.outputs.prometheus_text import CONTENT_TYPE, PrometheusTextRenderer
from otel_fakegpu.telemetry import CycleResult


@dataclass(frozen=True)
class Exposition:
    """One cycle's rendered body; immutable so handlers can serve it without a lock."""

    cycle: int
    collected_at: float
    body: bytes
    series: int
    content_type: str = CONTENT_TYPE


class ExpositionCache:
    """Holds the latest Exposition. Publishing swaps one reference; readers never block the cycle."""

    def __init__(self) -> None:
        self._latest: Exposition | None = None
        self._lock = threading.Lock()

    def publish(self, exposition: Exposition) -> None:
        with self._lock:
            self._latest = exposition

    def latest(self) -> Exposition | None:
        return self._latest


class PrometheusOutput:
    """A cycle consumer: render the collection as dcgm-exporter text into the cache."""

    def __init__(self, cache: ExpositionCache) -> None:
        self._cache = cache
        self._renderer = PrometheusTextRenderer()

    def __call__(self, result: CycleResult) -> int:
        body, series = self._renderer.render(result.metrics)
        self._cache.publish(Exposition(result.number, result.started_at, body, series))
        return series

    def __repr__(self) -> str:
        return "PrometheusOutput()"
