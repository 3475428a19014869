"""Baseline (a): a plain prometheus_client custom collector (GaugeMetricFamily / CounterMetricFamily per
field, same labels) behind prometheus_client's own HTTP server. Like most exporters written this way, it
reads and renders on every scrape. Usage: python -m bench.baseline_client_python PORT GPUS"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bench.fleet import Fleet
from otel_fakegpu.fields import MetricKind


class FleetCollector(Collector):
    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def collect(self) -> Iterator[Metric]:
        snapshot, attributes = self._fleet.read()
        keys = list(attributes[0]) if attributes else []
        for collector in self._fleet.collectors.metrics:
            cls = CounterMetricFamily if collector.kind is MetricKind.COUNTER else GaugeMetricFamily
            family = cls(collector.name, collector.help, labels=keys)
            for attrs, value in zip(attributes, snapshot.column(collector.field.id), strict=True):
                if type(value) is int or type(value) is float:
                    family.add_metric([attrs[k] for k in keys], value)
            yield family


def main() -> None:
    port, gpus = int(sys.argv[1]), int(sys.argv[2])
    REGISTRY.register(FleetCollector(Fleet(gpus)))
    start_http_server(port, addr="127.0.0.1")
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
