"""One MeterProvider for every pipeline of a process whose instruments are alike: a fleet worker's hosts.

A MeterProvider with its reader storage, ~35 instruments, their view matches and meters cost a host about 50 KB
(tracemalloc, 8 GPUs) and most of its start-up (matching views per instrument); a fleet worker has thousands of
hosts with the same instruments. So the pipelines of one shape (scopes, names, kinds, units, descriptions of their
instruments) share one provider, and take turns collecting: each pipeline (``SdkScope``) keeps only what is its
own, its callbacks and, per view match, its dictionary of series (attribute set -> aggregation). A collection swaps
the pipeline's dictionaries into the view matches, runs the one SDK collection, and takes them back, under a lock:
every host's points, start times and pruning are what a provider of its own would give.

This reaches into SDK 1.45 internals: the reader storage's view matches and their ``_attributes_aggregation``
dictionary (sdk_prune.py relies on the same two), and the storage's making of an instrument's view match (done for
every instrument up front, so that the order of metrics is the instruments' order whatever the history).
``install`` runs two pipelines of one shape through a shared provider and through a provider each and compares
their points; when they differ, or a name is missing, every
pipeline gets a provider of its own (``OwnProvider``: the SDK's plain use), with one warning.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from otel_fakegpu import __version__
from otel_fakegpu.telemetry import sdk_collect
from otel_fakegpu.telemetry.reader import CycleReader, creator, no_exemplars
from otel_fakegpu.telemetry.sdk_aggregation import aggregation as slim_aggregation
from otel_fakegpu.telemetry.sdk_check import SelfCheck
from otel_fakegpu.telemetry.sdk_collect import DirectCollection
from otel_fakegpu.telemetry.sdk_prune import StaleSetPruner, view_matches

log = logging.getLogger(__name__)

Callback = Callable[[CallbackOptions], Iterable[Observation]]


@dataclass(frozen=True)
class InstrumentSpec:
    """One observable instrument of a pipeline: what makes two pipelines alike, and its callback."""

    scope: str
    name: str
    kind: str  # "gauge", "counter" or "updown"
    unit: str
    description: str

    def create(self, provider: MeterProvider, callback: Callback) -> None:
        meter = provider.get_meter(self.scope, __version__)
        creator(meter, self.kind)(self.name, callbacks=[callback], unit=self.unit, description=self.description)


Shape = tuple[InstrumentSpec, ...]


@functools.lru_cache(maxsize=16)
def views_for(names: tuple[str, ...]) -> tuple[View, ...]:
    """One View per instrument: it keeps the exact (upper-case) DCGM name, which the SDK would lower-case, and
    drops exemplars, which observable instruments never have (no trace context) but would still pay for at every
    collection. A wildcard View cannot do this: it would duplicate the named streams. Each series is a slim object
    when the SDK passed sdk_aggregation's check. Views never change: pipelines share them."""
    per_series = slim_aggregation()
    return tuple(
        View(instrument_name=n, name=n, exemplar_reservoir_factory=no_exemplars, aggregation=per_series) for n in names
    )


def _provider(shape: Shape, reader: CycleReader, resource: Resource) -> MeterProvider:
    return MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=views_for(tuple(spec.name for spec in shape)),
        exemplar_filter=AlwaysOffExemplarFilter(),
        shutdown_on_exit=False,  # nothing to flush: a pull reader; a provider per host must not pile up at exit
    )


class OwnProvider:
    """A pipeline's own MeterProvider: the SDK's plain use, when sharing is off."""

    def __init__(self, shape: Shape, callbacks: Sequence[Callback], resource: Resource) -> None:
        self._reader = CycleReader()
        self._provider = _provider(shape, self._reader, resource)
        self.pruner = StaleSetPruner(self._provider)  # pods come and go: their series must not stay in the SDK
        for spec, callback in zip(shape, callbacks, strict=True):
            spec.create(self._provider, callback)

    def collect(self, timeout_millis: float) -> MetricsData | None:
        self._reader.collect(timeout_millis=timeout_millis)
        data = self._reader.take()
        if data is not None:
            self.pruner.after_collection(data)
        return data

    def series_held(self) -> int:
        return sum(len(match._attributes_aggregation) for match in view_matches(self._provider))

    def shutdown(self) -> None:
        self._provider.shutdown()


class SharedProvider:
    """The provider, reader and instruments of one shape; pipelines collect through it one at a time."""

    def __init__(self, shape: Shape) -> None:
        self._reader = CycleReader()
        self.provider = _provider(shape, self._reader, Resource.get_empty())
        self._lock = threading.Lock()
        self._active: SdkScope | None = None
        for index, spec in enumerate(shape):
            spec.create(self.provider, self._dispatch(index))
        # Every view match made now, in instrument order: the SDK makes one at an instrument's first point, so the
        # order of a page's families would otherwise depend on which host's collection saw a point first.
        consumer = self.provider._measurement_consumer
        for storage in consumer._reader_storages.values():
            for instrument in consumer._async_instruments:
                storage._get_or_init_view_instrument_match(instrument)
        self._matches = tuple(view_matches(self.provider))  # all of them: its instruments are only ever these
        direct = DirectCollection(self.provider, self._reader)  # no Measurement per point, where it applies
        self._direct = direct if sdk_collect.install() and direct.usable() else None

    def _dispatch(self, index: int) -> Callback:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            assert self._active is not None, "a shared instrument observed outside a pipeline's collection"
            return self._active.callbacks[index](options)

        return observe

    def collect(self, scope: SdkScope, timeout_millis: float) -> MetricsData | None:
        """One SDK collection of ``scope``'s series with its callbacks; pruned as its own provider would be."""
        with self._lock:
            if not scope.series:  # its first collection
                scope.series = [{} for _ in self._matches]
            for match, series in zip(self._matches, scope.series, strict=True):
                match._attributes_aggregation = series
            self._active = scope
            try:
                if self._direct is not None:
                    data = self._direct.collect()
                else:
                    self._reader.collect(timeout_millis=timeout_millis)
                    data = self._reader.take()
                if data is not None:
                    scope.pruner.after_collection(data)
            finally:
                self._active = None
                # Pruning replaces a match's dictionary: take back what the matches hold now.
                scope.series = [match._attributes_aggregation for match in self._matches]
            return data


class SdkScope:
    """One pipeline's part of a shared provider: its callbacks and its series, per view match."""

    def __init__(self, shared: SharedProvider, callbacks: Sequence[Callback], resource: Resource) -> None:
        self._shared = shared
        self.callbacks = tuple(callbacks)
        self.series: list[dict[Any, Any]] = []
        self._resource = resource
        self.pruner = StaleSetPruner(shared.provider)

    def collect(self, timeout_millis: float) -> MetricsData | None:
        data = self._shared.collect(self, timeout_millis)
        if data is None:
            return None
        return MetricsData(
            [ResourceMetrics(self._resource, list(rm.scope_metrics), self._resource.schema_url)
             for rm in data.resource_metrics]
        )  # fmt: skip

    def series_held(self) -> int:
        return sum(len(series) for series in self.series)

    def shutdown(self) -> None:
        self.series = []  # the shared provider lives on for the other pipelines of its shape


@functools.lru_cache(maxsize=8)
def _shared(shape: Shape) -> SharedProvider:
    return SharedProvider(shape)


def sdk_for(shape: Shape, callbacks: Sequence[Callback], resource: Resource) -> SdkScope | OwnProvider:
    """Where a pipeline collects: its part of the shared provider of its shape, or (sharing off) its own."""
    if install():
        return SdkScope(_shared(shape), callbacks, resource)
    return OwnProvider(shape, callbacks, resource)


def _collections(shared: bool) -> list[list[tuple[Any, ...]]]:
    """Two pipelines of one shape (a gauge, a counter; the same set in both, one set each that changes) over three
    interleaved collections; per pipeline, its points as comparable tuples."""
    from otel_fakegpu.telemetry.sdk_fastpath import frozen  # noqa: PLC0415 (only the self-check needs it)

    shape = (InstrumentSpec("otel_fakegpu.selfcheck", "g", "gauge", "1", ""),
             InstrumentSpec("otel_fakegpu.selfcheck", "c", "counter", "1", ""))  # fmt: skip
    common = frozen({"gpu": "0"})
    now = [0]

    def callback(pipeline: int, scale: int) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            # A set made anew each time (pruning looks only after sets were made); another from the third on.
            mine = frozen({"pod": f"{pipeline}-{now[0] // 2}"})
            return [Observation(scale * (now[0] + 1), common), Observation(pipeline + 5, mine)]

        return observe

    empty = Resource.get_empty()
    callbacks = ([callback(0, 1), callback(0, 10)], [callback(1, 2), callback(1, 20)])
    made: list[SdkScope | OwnProvider]
    if shared:
        provider = SharedProvider(shape)
        made = [SdkScope(provider, c, empty) for c in callbacks]
    else:
        made = [OwnProvider(shape, c, empty) for c in callbacks]
    found: list[list[tuple[Any, ...]]] = [[], []]
    starts: dict[tuple[int, str, str], int] = {}
    for now[0] in range(4):
        for index, sdk in enumerate(made):
            data = sdk.collect(10_000)
            for metric in data.resource_metrics[0].scope_metrics[0].metrics if data else ():
                for p in metric.data.data_points:
                    key = (index, metric.name, str(dict(p.attributes or {})))
                    first = starts.setdefault(key, p.start_time_unix_nano)
                    found[index].append((now[0], *key[1:], getattr(p, "value", None), p.start_time_unix_nano == first))
            found[index].append(("held", sdk.series_held()))
    return found


def _check() -> str | None:
    return None if _collections(shared=True) == _collections(shared=False) else "a self-check collection differed"


_install = SelfCheck(_check, "OpenTelemetry SDK providers not shared by alike pipelines (%s): one per pipeline", log)


def install() -> bool:
    """Check once per process that pipelines sharing a provider collect what a provider each would give."""
    return _install.passed()


def status() -> str | None:
    """``"yes"`` once installed, the reason when refused, None before ``install``."""
    return _install.status
