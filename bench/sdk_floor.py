"""The SDK floor: the stock OpenTelemetry SDK collecting the same instruments over the same data into its
InMemoryMetricReader. No cycle can cost less than this while going through the SDK."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter, ObservableGauge
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View

from bench.fleet import Fleet
from otel_fakegpu.fields import MetricKind


def sdk_floor_ms(gpus: int, rounds: int) -> float:
    """Median milliseconds of one collection, after one warm-up collection."""
    fleet = Fleet(gpus)
    snapshot, attributes = fleet.read()
    limit = 10 * gpus + 2000
    reader = InMemoryMetricReader(cardinality_limits={ObservableGauge: limit, ObservableCounter: limit})
    views = [View(instrument_name=c.name, name=c.name) for c in fleet.collectors.metrics]
    provider = MeterProvider(metric_readers=[reader], views=views)
    meter = provider.get_meter("floor")

    def callback(field_id: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(v, attributes[i])
                for i, v in enumerate(snapshot.column(field_id))
                if type(v) is int or type(v) is float
            ]

        return observe

    for c in fleet.collectors.metrics:
        create = meter.create_observable_counter if c.kind is MetricKind.COUNTER else meter.create_observable_gauge
        create(c.name, callbacks=[callback(c.field.id)], unit=c.field.unit, description=c.help)
    reader.get_metrics_data()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        reader.get_metrics_data()
        samples.append((time.perf_counter() - started) * 1000.0)
    provider.shutdown()
    return statistics.median(samples)
