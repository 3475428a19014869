"""The SDK floor: the stock OpenTelemetry SDK collecting the same instruments over the same data into its
InMemoryMetricReader. No cycle can cost less than this while going through the SDK."""

from __future__ import annotations

import statistics
import time

from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter, ObservableGauge
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View

from bench.fleet import Fleet, add_instruments

COLLECT_TIMEOUT_MS = 300_000


def sdk_floor_ms(gpus: int, rounds: int) -> float:
    """Median milliseconds of one collection, after one warm-up collection."""
    fleet = Fleet(gpus)
    snapshot, attributes = fleet.read()
    limit = 10 * gpus + 2000
    reader = InMemoryMetricReader(cardinality_limits={ObservableGauge: limit, ObservableCounter: limit})
    views = [View(instrument_name=c.name, name=c.name) for c in fleet.collectors.metrics]
    provider = MeterProvider(metric_readers=[reader], views=views)
    meter = provider.get_meter("floor")

    add_instruments(meter, fleet, lambda: (snapshot, attributes))
    # The SDK gives up on callbacks after 10 s by default; a 4096-GPU collection on a busy machine can take longer.
    reader.collect(timeout_millis=COLLECT_TIMEOUT_MS)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        reader.collect(timeout_millis=COLLECT_TIMEOUT_MS)
        samples.append((time.perf_counter() - started) * 1000.0)
    provider.shutdown()
    return statistics.median(samples)
