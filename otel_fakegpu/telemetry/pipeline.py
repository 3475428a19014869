"""The OpenTelemetry pipeline: one observable instrument per exported field, one SDK collection per cycle.

A single MetricReader is registered, so callbacks run exactly once per cycle; every output (Prometheus
text, OTLP push) consumes that one ``MetricsData``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from otel_fakegpu import __version__
from otel_fakegpu.engine import EMPTY_SNAPSHOT, Snapshot
from otel_fakegpu.fields import Collector, CollectorSet, MetricKind
from otel_fakegpu.telemetry.labels import Attributes, LabelScheme
from otel_fakegpu.telemetry.stats import CycleStats

SCOPE_NAME = "otel_fakegpu"
# The SDK's default of 2000 points per instrument would silently fold a large fleet into one overflow
# point; a million leaves room for 4096 GPUs times per-job or per-pod repetition.
CARDINALITY_LIMIT = 1_000_000


class CycleReader(MetricReader):
    """A reader that keeps what it collected, for the cycle to hand to every output."""

    def __init__(self) -> None:
        super().__init__(
            preferred_temporality={
                ObservableCounter: AggregationTemporality.CUMULATIVE,
                ObservableGauge: AggregationTemporality.CUMULATIVE,
            },
            cardinality_limits={
                ObservableGauge: CARDINALITY_LIMIT,
                ObservableCounter: CARDINALITY_LIMIT,
                ObservableUpDownCounter: CARDINALITY_LIMIT,
            },
        )
        self._received: MetricsData | None = None

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        self._received = metrics_data

    def take(self) -> MetricsData | None:
        received, self._received = self._received, None
        return received

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._received = None


class _CurrentCycle:
    """What the callbacks of the running collection read: set just before ``collect``."""

    def __init__(self) -> None:
        self.snapshot: Snapshot = EMPTY_SNAPSHOT
        self.attributes: list[Attributes] = []


def _field_callback(current: _CurrentCycle, field_id: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        attrs = current.attributes
        # bool is an int subclass but never a DCGM reading; text in a numeric field is a bad record.
        return [
            Observation(value, attrs[i])
            for i, value in enumerate(current.snapshot.column(field_id))
            if type(value) is int or type(value) is float
        ]

    return observe


def _value_callback(
    read: Callable[[], float | int | None],
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        value = read()
        return [] if value is None else [Observation(value)]

    return observe


def default_resource(service_name: str, host_name: str | None) -> Resource:
    return Resource.create(
        {
            "service.name": service_name,
            "service.version": __version__,
            "host.name": host_name or socket.gethostname(),
        }
    )


class TelemetryPipeline:
    """Owns the MeterProvider; ``collect(snapshot)`` is one SDK collection over that snapshot."""

    def __init__(
        self,
        collectors: CollectorSet,
        labels: LabelScheme,
        resource: Resource,
        stats: CycleStats,
        engine_reads: Callable[[], int],
    ) -> None:
        self._labels = labels
        self._current = _CurrentCycle()
        self._reader = CycleReader()
        views = [View(instrument_name=c.name, name=c.name) for c in collectors.metrics]
        self._provider = MeterProvider(resource=resource, metric_readers=[self._reader], views=views)
        meter = self._provider.get_meter(SCOPE_NAME, __version__)
        for collector in collectors.metrics:
            self._add_field_instrument(meter, collector)
        self._add_self_instruments(meter, stats, engine_reads)
        self.field_ids: tuple[int, ...] = tuple(dict.fromkeys((*labels.field_ids, *collectors.field_ids)))

    def _add_field_instrument(self, meter: Any, collector: Collector) -> None:
        callback = _field_callback(self._current, collector.field.id)
        create = (
            meter.create_observable_counter if collector.kind is MetricKind.COUNTER else meter.create_observable_gauge
        )
        create(collector.name, callbacks=[callback], unit=collector.field.unit, description=collector.help)

    def _add_self_instruments(self, meter: Any, stats: CycleStats, engine_reads: Callable[[], int]) -> None:
        own: Sequence[tuple[str, bool, str, str, Callable[[], float | int | None]]] = (
            (
                "otel_fakegpu_cycles_total",
                True,
                "{cycle}",
                "Collection cycles run.",
                lambda: stats.view().cycles_total,
            ),
            (
                "otel_fakegpu_cycle_errors_total",
                True,
                "{cycle}",
                "Collection cycles that failed (engine read, SDK collection or an output).",
                lambda: stats.view().errors_total,
            ),
            (
                "otel_fakegpu_cycle_duration_seconds",
                False,
                "s",
                "Duration of the last completed collection cycle.",
                lambda: stats.view().last_duration_s,
            ),
            (
                "otel_fakegpu_last_cycle_timestamp_seconds",
                False,
                "s",
                "Unix time at which the last successful cycle published.",
                lambda: stats.view().last_ok_at,
            ),
            ("otel_fakegpu_engine_reads_total", True, "{read}", "Batch reads of the engine.", engine_reads),
            (
                "otel_fakegpu_gpus",
                False,
                "{gpu}",
                "GPU entities in this cycle.",
                lambda: len(self._current.snapshot),
            ),
        )
        for name, is_counter, unit, help_text, read in own:
            create = meter.create_observable_counter if is_counter else meter.create_observable_gauge
            create(name, callbacks=[_value_callback(read)], unit=unit, description=help_text)

    def collect(self, snapshot: Snapshot) -> MetricsData:
        """Run one SDK collection over ``snapshot``."""
        self._current.attributes = self._labels.attributes(snapshot)
        self._current.snapshot = snapshot
        self._reader.collect()
        data = self._reader.take()
        if data is None:
            raise RuntimeError("the SDK collection returned nothing")
        return data

    def shutdown(self) -> None:
        self._provider.shutdown()
