"""The SDK plumbing of the pipeline: the one reader that keeps each collection, no exemplars, instrument kinds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import (
    Exemplar,
    ExemplarReservoir,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData

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


class NoExemplars(ExemplarReservoir):
    """A reservoir that keeps nothing: collecting it costs nothing."""

    def offer(self, value: float | int, time_unix_nano: int, attributes: Any, context: Any) -> None:
        return None

    def collect(self, point_attributes: Any) -> list[Exemplar]:
        return []


def no_exemplars(aggregation_type: type) -> Callable[..., ExemplarReservoir]:
    return NoExemplars


def creator(meter: Any, kind: str) -> Callable[..., Any]:
    if kind == "counter":
        return meter.create_observable_counter  # type: ignore[no-any-return]
    if kind == "updown":
        return meter.create_observable_up_down_counter  # type: ignore[no-any-return]
    return meter.create_observable_gauge  # type: ignore[no-any-return]
