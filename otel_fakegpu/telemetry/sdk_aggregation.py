"""Slim per-series aggregations for observable instruments: one small object per series instead of six.

The SDK (1.45) keeps, per attribute set of every instrument, an ``_Aggregation`` with a lock, an exemplar reservoir
and an instance dict: about 330 bytes and 7 objects per series, measured (tracemalloc) as 70 KB of an 8-GPU host's
290 KB in a fleet worker. An observable instrument's measurements are only ever made and collected under the
measurement consumer's one lock, inside a collection, and ours keep no exemplars, so a series needs only its
attribute set, its value and (counters) its start time. ``SlimAggregation`` is a View aggregation that gives
observable gauges and counters such a slotted object per series and leaves every other instrument to the SDK.

The SDK decides a metric's data type (Gauge or Sum) from the class of the aggregation a view match builds with no
attributes, so that one is the SDK's own; only the per-series ones are slim. ``install`` runs a small collection
(a gauge, a counter, an up-down counter, two cycles, a set that changes, one set observed twice) through the stock
and the slim aggregation and compares every point; when anything differs or the SDK lacks a name, ``aggregation``
returns None (the views keep the SDK's default) and one warning says why. docs/sdk-hooks.md lists the hooks.

A slim series makes its ``NumberDataPoint`` as a quick point: the frozen dataclass's instance dict set at once,
instead of its constructor's ``object.__setattr__`` per field (~0.9 -> ~0.3 us; a 4096-GPU cycle makes 100,000).
``install`` first compares quick points with the constructor's; when they differ, the constructor makes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import ObservableCounter, ObservableGauge, ObservableUpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.metrics.view import Aggregation, DefaultAggregation, View

from otel_fakegpu.telemetry.sdk_check import SelfCheck, selfcheck_meter

log = logging.getLogger(__name__)

_DEFAULT = DefaultAggregation()
_CUMULATIVE = AggregationTemporality.CUMULATIVE


_NEW = object.__new__
_SET = object.__setattr__


def _stock_point(attributes: Any, start_nano: int | None, time_nano: int, value: float | int) -> NumberDataPoint:
    no_start: Any = start_nano  # a gauge point has no start time: the SDK's own says None where its type says int
    return NumberDataPoint(attributes, start_time_unix_nano=no_start, time_unix_nano=time_nano, value=value)


def _quick_point(attributes: Any, start_nano: int | None, time_nano: int, value: float | int) -> NumberDataPoint:
    """The same point without the frozen dataclass's per-field ``object.__setattr__`` (~0.9 -> ~0.3 us a point)."""
    point: NumberDataPoint = _NEW(NumberDataPoint)
    fields = {"attributes": attributes, "start_time_unix_nano": start_nano, "time_unix_nano": time_nano}
    fields["value"], fields["exemplars"] = value, []
    _SET(point, "__dict__", fields)
    return point


class _Points:
    """How slim series make their points: the SDK's constructor, or quick points once ``install`` found them equal
    to its points on this SDK (a 4096-GPU cycle makes 100,000)."""

    make: Callable[[Any, int | None, int, float | int], NumberDataPoint] = _stock_point


class _SlimLastValue:
    """An observable gauge's series: the SDK's ``_LastValueAggregation`` for an asynchronous instrument."""

    __slots__ = ("_attributes", "_value")

    def __init__(self, attributes: Any, start_nano: int = 0) -> None:  # a gauge point has no start time
        self._attributes = attributes
        self._value: float | int | None = None

    def aggregate(self, measurement: Any, should_sample_exemplar: bool = True) -> None:
        self._value = measurement.value

    def observe(self, value: float | int) -> None:
        """``aggregate`` for a value alone (sdk_collect.py's direct collection)."""
        self._value = value

    def collect(self, temporality: AggregationTemporality, start_nano: int) -> NumberDataPoint | None:
        value, self._value = self._value, None
        if value is None:
            return None
        return _Points.make(self._attributes, None, start_nano, value)  # a gauge point has no start time


class _SlimSum:
    """An observable counter's series: the SDK's ``_SumAggregation`` for an asynchronous (cumulative) instrument."""

    __slots__ = ("_attributes", "_previous_start_nano", "_previous_value", "_start_nano", "_value")

    def __init__(self, attributes: Any, start_nano: int) -> None:
        self._attributes = attributes
        self._value: float | int | None = None
        self._start_nano = self._previous_start_nano = start_nano
        self._previous_value: Any = 0

    def aggregate(self, measurement: Any, should_sample_exemplar: bool = True) -> None:
        self.observe(measurement.value)

    def observe(self, value: float | int) -> None:
        self._value = value if self._value is None else self._value + value

    def collect(self, temporality: AggregationTemporality, start_nano: int) -> NumberDataPoint | None:
        value, self._value = self._value, None
        if value is None:
            return None
        if temporality is _CUMULATIVE:
            return _Points.make(self._attributes, self._start_nano, start_nano, value)
        delta, self._previous_value = value - self._previous_value, value
        since, self._previous_start_nano = self._previous_start_nano, start_nano
        return _Points.make(self._attributes, since, start_nano, delta)


class SlimAggregation(Aggregation):
    """The SDK's default aggregation, with a slim object per series of an observable gauge or counter.

    The aggregation a view match builds with no attributes is never aggregated into: the SDK reads only its class
    and (a sum) its monotonicity and temporality, which depend on the instrument's class alone. One per class is
    shared by every view match (a fleet worker has thousands)."""

    def __init__(self) -> None:
        self._templates: dict[type, Any] = {}
        self._slim: dict[type, str | None] = {}  # an instrument class's kind: isinstance on the SDK's ABCs is slow

    def _kind(self, instrument: Any) -> str | None:
        cls = type(instrument)
        if cls not in self._slim:
            gauge = issubclass(cls, ObservableGauge)
            self._slim[cls] = (
                "gauge" if gauge else "sum" if issubclass(cls, (ObservableCounter, ObservableUpDownCounter)) else None
            )
        return self._slim[cls]

    def series_class(self, instrument: Any) -> Callable[[Any, int], Any] | None:
        """What a series of ``instrument`` is, made from (attribute set, start time); None: the SDK's own."""
        kind = self._kind(instrument)
        return _SlimLastValue if kind == "gauge" else _SlimSum if kind == "sum" else None

    def _create_aggregation(
        self, instrument: Any, attributes: Any, reservoir_factory: Callable[..., Any], start_time_unix_nano: int
    ) -> Any:
        if attributes is None:  # the view match's own: the SDK reads the metric's data type from its class
            template = self._templates.get(type(instrument))
            if template is None:
                template = _DEFAULT._create_aggregation(instrument, None, reservoir_factory, 0)
                self._templates[type(instrument)] = template
            return template
        series = self.series_class(instrument)
        if series is not None:
            return series(attributes, start_time_unix_nano)
        return _DEFAULT._create_aggregation(instrument, attributes, reservoir_factory, start_time_unix_nano)


def _points(aggregation: Aggregation | None) -> list[tuple[Any, ...]]:
    """Three collections of a gauge, a counter and an up-down counter (a set that changes, one observed twice) as
    comparable tuples; start times as "same as the first collection's" flags, the clock being different per run."""
    sets = [{"gpu": "0"}, {"gpu": "1"}, {"gpu": "2"}]
    cycle = [0]

    def observe(_: CallbackOptions) -> Iterable[Observation]:
        cycle[0] += 1
        live = sets[:2] if cycle[0] < 3 else sets[1:]
        return [Observation(cycle[0] * 10 + i, s) for i, s in enumerate(live)] + [Observation(7, sets[1])]

    reader = InMemoryMetricReader()
    views = [View(instrument_name="*", aggregation=aggregation)] if aggregation is not None else []
    provider, meter = selfcheck_meter(reader, views)
    meter.create_observable_gauge("g", callbacks=[observe])
    meter.create_observable_counter("c", callbacks=[observe])
    meter.create_observable_up_down_counter("u", callbacks=[observe])
    found: list[tuple[Any, ...]] = []
    starts: dict[tuple[str, str], int | None] = {}
    for collection in range(3):
        data = reader.get_metrics_data()
        for metric in data.resource_metrics[0].scope_metrics[0].metrics if data else ():
            kind = (type(metric.data).__name__, getattr(metric.data, "is_monotonic", None))
            for p in metric.data.data_points:
                key = (metric.name, str(dict(p.attributes or {})))
                first = starts.setdefault(key, p.start_time_unix_nano)
                found.append(
                    (collection, metric.name, kind, key[1], getattr(p, "value", None), p.start_time_unix_nano == first)
                )
    provider.shutdown()
    return sorted(found, key=repr)


def _check() -> str | None:
    return (
        None if _points(SlimAggregation()) == _points(None) else "a self-check collection differed from the SDK's own"
    )


def _check_quick_points() -> str | None:
    """Quick points of gauges and counters (int and float values, a start time and none) against the SDK's."""
    samples: list[tuple[Any, int | None, int, float | int]] = [({"gpu": "0"}, None, 2, 7), ({}, 1, 2, 0.5)]
    for attributes, start, time_nano, value in [*samples, ({"a": "b", "c": "d"}, 3, 4, 2**70)]:
        quick = _quick_point(attributes, start, time_nano, value)
        stock = _stock_point(attributes, start, time_nano, value)
        same = type(quick) is type(stock) and quick == stock and quick.to_json() == stock.to_json()
        if not same or list(vars(quick).items()) != list(vars(stock).items()):  # no field more, none fewer
            return "a quick point differed from the SDK's own"
    return None


_install = SelfCheck(_check, "OpenTelemetry SDK slim aggregations not used (%s): each series takes the SDK's own", log)
_quick = SelfCheck(_check_quick_points, "OpenTelemetry SDK points made by their constructor (%s)", log)


def install() -> bool:
    """Check once per process that slim aggregations collect exactly what the SDK's own do (with quick points where
    those are the SDK's own points)."""
    _Points.make = _quick_point if _quick.passed() else _stock_point
    return _install.passed()


_SHARED = SlimAggregation()


def aggregation() -> Aggregation | None:
    """The aggregation for our views: slim once the check passed, None (the SDK's default) when it did not."""
    return _SHARED if install() else None


def status() -> str | None:
    """``"yes"`` once installed, the reason when refused, None before ``install``."""
    return _install.status


def quick_points_status() -> str | None:
    """Quick points: ``"yes"`` once checked, why not when refused, None before ``install``."""
    return _quick.status
