"""Baseline (b): OpenTelemetry's stock PrometheusMetricReader, with Views keeping the exact DCGM names,
served by prometheus_client's HTTP server: one SDK collection per scrape.
Usage: python -m bench.baseline_otel_reader PORT GPUS"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter, ObservableGauge
from opentelemetry.sdk.metrics.view import View
from prometheus_client import start_http_server

from bench.fleet import Fleet
from otel_fakegpu.fields import MetricKind


def main() -> None:
    port, gpus = int(sys.argv[1]), int(sys.argv[2])
    fleet = Fleet(gpus)
    limit: Any = {ObservableGauge: 10 * gpus + 2000, ObservableCounter: 10 * gpus + 2000}
    reader = PrometheusMetricReader(cardinality_limits=limit)
    views = [View(instrument_name=c.name, name=c.name) for c in fleet.collectors.metrics]
    meter = MeterProvider(metric_readers=[reader], views=views).get_meter("baseline")

    def callback(field_id: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            snapshot, attributes = fleet.read()
            return [
                Observation(v, attributes[i])
                for i, v in enumerate(snapshot.column(field_id))
                if type(v) is int or type(v) is float
            ]

        return observe

    for c in fleet.collectors.metrics:
        create = meter.create_observable_counter if c.kind is MetricKind.COUNTER else meter.create_observable_gauge
        create(c.name, callbacks=[callback(c.field.id)], unit=c.field.unit, description=c.help)
    start_http_server(port, addr="127.0.0.1")
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
