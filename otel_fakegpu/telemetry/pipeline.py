"""The OpenTelemetry pipeline: one observable instrument per exported field, one SDK collection per cycle.

A single MetricReader is registered, so callbacks run exactly once per cycle; every output (Prometheus
text, OTLP push) consumes that one ``MetricsData``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    Exemplar,
    ExemplarReservoir,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from otel_fakegpu import __version__
from otel_fakegpu.attribution import Assignment, AttributionStage, semconv_labels
from otel_fakegpu.engine import EMPTY_SNAPSHOT, Engine, Snapshot
from otel_fakegpu.fields import ENTITY_GPU, EVENT_DECODERS, Collector, CollectorSet, MetricKind
from otel_fakegpu.telemetry.health import Point, health_points, p2p_points
from otel_fakegpu.telemetry.jobstats import jobstats_metrics
from otel_fakegpu.telemetry.labels import Attributes, LabelScheme
from otel_fakegpu.telemetry.selfmetrics import SelfMetric, merge_by_name, single
from otel_fakegpu.telemetry.semconv import SEMCONV_FIELD_IDS, SEMCONV_INSTRUMENTS, SemconvInstrument
from otel_fakegpu.telemetry.stats import CycleStats, CycleStatsView
from otel_fakegpu.telemetry.windows import EventWindow
from otel_fakegpu.telemetry.workloads import WorkloadCache, attribution_self_metrics, with_workloads

SCOPE_NAME = "otel_fakegpu"
SEMCONV_SCOPE_NAME = "otel_fakegpu.semconv"
# The SDK's default of 2000 points per instrument would silently fold a large fleet into one overflow
# point; a million leaves room for 4096 GPUs times per-job or per-pod repetition.
CARDINALITY_LIMIT = 1_000_000
DEFAULT_COUNT_WINDOW_MS = 300_000  # dcgm-exporter's --xid-count-window-size / --clock-events-count-window-size
WINDOW_LABEL = "window_size_in_ms"
# The SDK gives up on a collection after 10 s by default. A 4096-GPU collection takes about 2 s, but on a loaded
# machine (load 6 on 2 cores) the first one passed 10 s and failed, leaving /metrics at 503 for a whole interval.
COLLECT_TIMEOUT_MS = 120_000


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


class _NoExemplars(ExemplarReservoir):
    """A reservoir that keeps nothing: collecting it costs nothing."""

    def offer(self, value: float | int, time_unix_nano: int, attributes: Any, context: Any) -> None:
        return None

    def collect(self, point_attributes: Any) -> list[Exemplar]:
        return []


def _no_exemplars(aggregation_type: type) -> Callable[..., ExemplarReservoir]:
    return _NoExemplars


class _CurrentCycle:
    """What the callbacks of the running collection read: set just before ``collect``."""

    def __init__(self) -> None:
        self.snapshot: Snapshot = EMPTY_SNAPSHOT
        self.attributes: list[Attributes] = []
        self.semconv_attributes: list[Attributes] = []
        # With attribution: per entity, one attribute set per workload using it (or just its own).
        self.expanded: list[tuple[Attributes, ...]] | None = None
        self.semconv_expanded: list[tuple[Attributes, ...]] | None = None
        self.assignment: Assignment | None = None
        self.group_attributes: dict[str, list[Attributes]] = {}  # NVSwitch and link series
        # The exporter's own counters, read at one moment for the whole collection, so one page agrees.
        self.stats = CycleStatsView(0, 0, None, None, None, 0)
        self.engine_reads = 0


Callback = Callable[[CallbackOptions], Iterable[Observation]]


def _field_callback(current: _CurrentCycle, field_id: int) -> Callback:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        attrs, expanded = current.attributes, current.expanded
        # bool is an int subclass but never a DCGM reading; text in a numeric field is a bad record.
        if expanded is not None:  # some GPU is used by several workloads: one series per workload
            return [
                Observation(value, one)
                for i, value in enumerate(current.snapshot.column(field_id))
                if type(value) is int or type(value) is float
                for one in expanded[i]
            ]
        return [
            Observation(value, attrs[i])
            for i, value in enumerate(current.snapshot.column(field_id))
            if type(value) is int or type(value) is float
        ]

    return observe


def _group_callback(current: _CurrentCycle, field_id: int, group: str) -> Callback:
    """A field of NVSwitches or their links: one point per entity of that group that has a value."""

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        entities = current.snapshot.groups.get(group)
        if entities is None:
            return []
        attrs = current.group_attributes[group]
        return [
            Observation(value, attrs[i])
            for i, value in enumerate(entities.column(field_id))
            if type(value) is int or type(value) is float
        ]

    return observe


Pairs = tuple[tuple[str, str], ...]


class _ExtendedAttributes:
    """A GPU's attributes plus a few more labels, built once per (owner, labels) and reused while the GPU's
    own dict is the same object (LabelScheme keeps it while the identity holds): no dict per point per cycle."""

    def __init__(self) -> None:
        self._cache: dict[tuple[object, Pairs], tuple[Attributes, Attributes]] = {}

    def get(self, owner: object, base: Attributes, extra: Pairs) -> Attributes:
        cached = self._cache.get((owner, extra))
        if cached is None or cached[0] is not base:
            cached = self._cache[(owner, extra)] = (base, {**base, **dict(extra)})
        return cached[1]


def _semconv_callback(current: _CurrentCycle, instrument: SemconvInstrument) -> Callback:
    extended = _ExtendedAttributes()

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        points = []
        for series in instrument.series:
            expanded = current.semconv_expanded
            for i, value in enumerate(current.snapshot.column(series.field_id)):
                if type(value) is int or type(value) is float:
                    bases = (current.semconv_attributes[i],) if expanded is None else expanded[i]
                    for j, base in enumerate(bases):
                        attrs = extended.get((i, j), base, series.extra) if series.extra else base
                        points.append(Observation(value * series.scale, attrs))
        return points

    return observe


DERIVED_POINTS: dict[int, Callable[[Snapshot], Iterable[Point]]] = {9003: health_points, 9004: p2p_points}


def _derived_callback(current: _CurrentCycle, points: Callable[[Snapshot], Iterable[Point]]) -> Callback:
    """A status computed from the snapshot (9003, 9004): GPU labels, then its own in dcgm-exporter's sorted order."""
    extended = _ExtendedAttributes()

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        snapshot, attrs = current.snapshot, current.attributes
        return [
            Observation(value, extended.get(snapshot.entity_ids[row], attrs[row], extra))
            for row, extra, value in points(snapshot)
        ]

    return observe


def _event_count_callback(current: _CurrentCycle, window: EventWindow, window_ms: int) -> Callback:
    """dcgm-exporter's shape: per GPU one series per code seen in the window, or one 0 without the code label."""
    label, window_pair = window.decoder.label, (WINDOW_LABEL, str(window_ms))
    extended = _ExtendedAttributes()

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        counts = window.counts()
        points = []
        expanded = current.expanded
        for i, entity_id in enumerate(current.snapshot.entity_ids):
            per_code = counts.get(entity_id)
            bases = (current.attributes[i],) if expanded is None else expanded[i]
            for j, base in enumerate(bases):
                owner = (entity_id, j)
                if per_code is None:
                    points.append(Observation(0, extended.get(owner, base, (window_pair,))))
                else:
                    points.extend(
                        Observation(count, extended.get(owner, base, (window_pair, (label, code))))
                        for code, count in per_code
                    )
        return points

    return observe


def _self_callback(metric: SelfMetric) -> Callback:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attrs) for value, attrs in metric.read()]

    return observe


def default_resource(service_name: str, host_name: str | None, extra: Mapping[str, str] | None = None) -> Resource:
    """``service.*`` and ``host.name``, plus ``extra`` (OTEL_RESOURCE_ATTRIBUTES).

    ``service.instance.id`` defaults to the host name rather than the SDK's random per-process id: every
    restart would otherwise start new series in the receiving TSDB.
    """
    host = host_name or socket.gethostname()
    attributes: dict[str, str] = {"service.instance.id": host, **(extra or {})}
    attributes.update({"service.name": service_name, "service.version": __version__, "host.name": host})
    return Resource.create(attributes)


class TelemetryPipeline:
    """Owns the MeterProvider; ``collect(snapshot)`` is one SDK collection over that snapshot.

    DCGM-named instruments and the self-metrics live in scope ``otel_fakegpu``; semantic-convention
    instruments (when asked for) in ``otel_fakegpu.semconv``, so each output can pick what it carries.
    """

    def __init__(
        self,
        collectors: CollectorSet,
        labels: LabelScheme,
        resource: Resource,
        stats: CycleStats,
        engine_reads: Callable[[], int],
        extra_self_metrics: Sequence[SelfMetric] = (),
        semconv: bool = False,
        count_windows_ms: Mapping[int, int] | None = None,
        previous: TelemetryPipeline | None = None,
        attribution: AttributionStage | None = None,
        jobstats: bool = False,
    ) -> None:
        """``count_windows_ms`` maps a computed field id (9001, 9002) to its window; 5 minutes if absent.

        ``previous`` (a reload): the pipeline this one replaces; its collection count, its event windows of the same
        field and size, and its place in the engine's samples carry over, so nothing is counted twice or lost.
        ``attribution`` adds each cycle's workload labels (pod, namespace, container, hpc_job ...); ``jobstats``
        adds the jobstats GPU exporter's job-mapping series (``nvidia_gpu_jobId``) for the attributed jobs.
        """
        self._labels = labels
        self._attribution = attribution
        self._workload_attrs: WorkloadCache = {}
        self._semconv_workload_attrs: WorkloadCache = {}
        self._semconv = semconv
        self._collections = previous.collections_total if previous is not None else 0
        self._kept_windows = previous.windows() if previous is not None else {}
        self._current = _CurrentCycle()
        self._reader = CycleReader()
        self._stats, self._engine_reads = stats, engine_reads
        self_metrics = merge_by_name(
            (
                *self._cycle_self_metrics(),
                *(attribution_self_metrics(attribution) if attribution and attribution.source.can_fail else ()),
                *(jobstats_metrics(lambda: (self._current.snapshot, self._current.assignment)) if jobstats else ()),
                *extra_self_metrics,
            )
        )
        names = [
            *(c.name for c in collectors.metrics),
            *(m.name for m in self_metrics),
            *(i.name for i in SEMCONV_INSTRUMENTS if semconv),
        ]
        # One View per instrument: it keeps the exact (upper-case) DCGM name, which the SDK would lower-case,
        # and drops exemplars, which observable instruments never have (no trace context) but would still
        # pay for at every collection. A wildcard View cannot do this: it would duplicate the named streams.
        views = [View(instrument_name=n, name=n, exemplar_reservoir_factory=_no_exemplars) for n in names]
        self._provider = MeterProvider(
            resource=resource,
            metric_readers=[self._reader],
            views=views,
            exemplar_filter=AlwaysOffExemplarFilter(),
        )
        meter = self._provider.get_meter(SCOPE_NAME, __version__)
        self._windows: list[tuple[int, EventWindow]] = []
        for collector in collectors.metrics:
            create = _creator(meter, "counter" if collector.kind is MetricKind.COUNTER else "gauge")
            create(
                collector.name,
                callbacks=[self._callback_for(collector, count_windows_ms or {})],
                unit=collector.field.unit,
                description=collector.help,
            )
        for metric in self_metrics:
            create = _creator(meter, "counter" if metric.counter else "gauge")
            create(metric.name, callbacks=[_self_callback(metric)], unit=metric.unit, description=metric.help)
        field_ids = [*labels.field_ids, *collectors.field_ids, *collectors.derived_field_ids]
        if semconv:
            semconv_meter = self._provider.get_meter(SEMCONV_SCOPE_NAME, __version__)
            for instrument in SEMCONV_INSTRUMENTS:
                _creator(semconv_meter, instrument.kind)(
                    instrument.name,
                    callbacks=[_semconv_callback(self._current, instrument)],
                    unit=instrument.unit,
                    description=instrument.help,
                )
            field_ids += SEMCONV_FIELD_IDS
        self.field_ids: tuple[int, ...] = tuple(dict.fromkeys(field_ids))
        self.sample_field_ids: tuple[int, ...] = tuple(dict.fromkeys(source for source, _ in self._windows))
        # Where the next engine read continues the event samples; None when no computed field wants them.
        self.samples_cursor: int | None = 0 if self.sample_field_ids else None
        if previous is not None and self.sample_field_ids and previous.samples_cursor is not None:
            self.samples_cursor = previous.samples_cursor  # a window new in this pipeline starts empty from here
        self._kept_windows = {}

    def windows(self) -> dict[tuple[int, float], EventWindow]:
        """The event windows, by (event field, window seconds): what a reloaded pipeline takes over."""
        return {(source, window.window_s): window for source, window in self._windows}

    def _callback_for(self, collector: Collector, windows_ms: Mapping[int, int]) -> Callback:
        source = collector.field.counts_field
        if collector.field.entity != ENTITY_GPU:
            return _group_callback(self._current, collector.field.id, collector.field.entity)
        if collector.field.derived_from:
            return _derived_callback(self._current, DERIVED_POINTS[collector.field.id])
        if source is None:
            return _field_callback(self._current, collector.field.id)
        window_ms = windows_ms.get(collector.field.id, DEFAULT_COUNT_WINDOW_MS)
        window = self._kept_windows.get((source, window_ms / 1000.0))
        if window is None:
            window = EventWindow(EVENT_DECODERS[source], window_ms / 1000.0)
        self._windows.append((source, window))
        return _event_count_callback(self._current, window, window_ms)

    def _cycle_self_metrics(self) -> tuple[SelfMetric, ...]:
        now = self._current
        return (
            SelfMetric(
                "otel_fakegpu_cycles_total", True, "{cycle}",
                "Collection cycles run, counting the one whose collection this is.",
                single(lambda: now.stats.cycles_total + 1),
            ),
            SelfMetric(
                "otel_fakegpu_cycle_errors_total", True, "{cycle}",
                "Collection cycles that failed (engine read, SDK collection or an output).",
                single(lambda: now.stats.errors_total),
            ),
            SelfMetric(
                "otel_fakegpu_cycle_duration_seconds", False, "s", "Duration of the last completed collection cycle.",
                single(lambda: now.stats.last_duration_s),
            ),
            SelfMetric(
                "otel_fakegpu_last_cycle_timestamp_seconds", False, "s",
                "Unix time at which the last successful cycle published.",
                single(lambda: now.stats.last_ok_at),
            ),
            SelfMetric(
                "otel_fakegpu_engine_reads_total", True, "{read}", "Batch reads of the engine.",
                single(lambda: now.engine_reads),
            ),
            SelfMetric(
                "otel_fakegpu_gpus", False, "{gpu}", "GPU entities in this cycle.", single(self._observe_gpus)
            ),
            SelfMetric(
                "otel_fakegpu_sdk_collections_total", True, "{collection}",
                "OpenTelemetry SDK collections (callbacks runs): one per cycle, whatever the outputs.",
                single(lambda: self._collections),
            ),
        )  # fmt: skip

    def _observe_gpus(self) -> int:
        # Every SDK collection, by any reader, runs this callback once: counting here proves there is one.
        self._collections += 1
        return len(self._current.snapshot)

    @property
    def collections_total(self) -> int:
        return self._collections

    def watch(self, engine: Engine, max_keep_age_s: float) -> None:
        """Have ``engine`` keep the samples the window counts need; call before its first update."""
        if self.sample_field_ids:
            engine.watch_samples(self.sample_field_ids, max_keep_age_s)

    def read(self, engine: Engine) -> Snapshot:
        """The cycle's one engine read: latest values of every needed field, and new event samples.
        The attribution fetch is asked for first: a no-op when it ran ahead of the cycle, else it overlaps the read."""
        if self._attribution is not None:
            self._attribution.begin()
        return engine.read_latest(self.field_ids, self.samples_cursor)

    def collect(self, snapshot: Snapshot) -> MetricsData:
        """Run one SDK collection over ``snapshot``."""
        self._count_events(snapshot)
        self._current.attributes = self._labels.attributes(snapshot)
        if self._semconv:
            self._current.semconv_attributes = self._labels.semconv_attributes(snapshot)
        if self._attribution is not None:
            self._current.assignment = self._attribution.assign(snapshot)
            self._expand(self._current.assignment)
        self._current.group_attributes = {
            group: self._labels.entity_attributes(group, entities, snapshot)
            for group, entities in snapshot.groups.items()
        }
        self._current.snapshot = snapshot
        self._current.stats, self._current.engine_reads = self._stats.view(), self._engine_reads()
        self._reader.collect(timeout_millis=COLLECT_TIMEOUT_MS)
        data = self._reader.take()
        if data is None:
            raise RuntimeError("the SDK collection returned nothing")
        return data

    def _expand(self, assignment: Assignment) -> None:
        """Each entity's attribute set once per workload using it; an unused entity keeps its own set."""
        current = self._current
        if not any(assignment):
            current.expanded = current.semconv_expanded = None
            self._workload_attrs, self._semconv_workload_attrs = {}, {}
            return
        expanded, self._workload_attrs = with_workloads(
            current.attributes, assignment, self._workload_attrs, lambda pairs: pairs
        )
        if all(len(sets) == 1 for sets in expanded):  # one series per entity: the flat path, fewer loops
            current.attributes, current.expanded = [sets[0] for sets in expanded], None
        else:
            current.expanded = expanded
        if self._semconv:
            current.semconv_expanded, self._semconv_workload_attrs = with_workloads(
                current.semconv_attributes, assignment, self._semconv_workload_attrs, semconv_labels
            )

    def _count_events(self, snapshot: Snapshot) -> None:
        for source, window in self._windows:
            window.add(snapshot.samples.get(source, ()))
            window.expire(snapshot.taken_at)
        if self.sample_field_ids and snapshot.samples_cursor is not None:
            self.samples_cursor = snapshot.samples_cursor

    def shutdown(self) -> None:
        self._provider.shutdown()


def _creator(meter: Any, kind: str) -> Callable[..., Any]:
    if kind == "counter":
        return meter.create_observable_counter  # type: ignore[no-any-return]
    if kind == "updown":
        return meter.create_observable_up_down_counter  # type: ignore[no-any-return]
    return meter.create_observable_gauge  # type: ignore[no-any-return]
