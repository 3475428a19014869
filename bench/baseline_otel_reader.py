"""Baseline (b): OpenTelemetry's stock PrometheusMetricReader, with Views keeping the exact DCGM names,
served by prometheus_client's HTTP server: one SDK collection per scrape.
Usage: python -m bench.baseline_otel_reader PORT GPUS"""

from __future__ import annotations

import sys
import threading
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter, ObservableGauge
from opentelemetry.sdk.metrics.view import View
from prometheus_client import start_http_server

from bench.fleet import Fleet, add_instruments


def main() -> None:
    port, gpus = int(sys.argv[1]), int(sys.argv[2])
    fleet = Fleet(gpus)
    limit: Any = {ObservableGauge: 10 * gpus + 2000, ObservableCounter: 10 * gpus + 2000}
    reader = PrometheusMetricReader(cardinality_limits=limit)
    views = [View(instrument_name=c.name, name=c.name) for c in fleet.collectors.metrics]
    meter = MeterProvider(metric_readers=[reader], views=views).get_meter("baseline")

    add_instruments(meter, fleet, fleet.read)
    start_http_server(port, addr="127.0.0.1")
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
