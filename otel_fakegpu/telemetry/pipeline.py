"""The OpenTelemetry pipeline: one observable instrument per exported field, one SDK collection per cycle.

A single MetricReader is registered, so callbacks run exactly once per cycle; every output (Prometheus
text, OTLP push) consumes that one ``MetricsData``. Pipelines with alike instruments (a fleet's hosts) share one
MeterProvider, each with its own series (sdk_shared.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource

from otel_fakegpu.attribution import Assignment, AttributionStage, semconv_labels
from otel_fakegpu.engine import EMPTY_SNAPSHOT, Engine, Snapshot
from otel_fakegpu.fields import ENTITY_GPU, EVENT_DECODERS, Collector, CollectorSet, MetricKind
from otel_fakegpu.telemetry.callbacks import (
    DERIVED_POINTS,
    Callback,
    CurrentCycle,
    derived_callback,
    event_count_callback,
    field_callback,
    group_callback,
    self_callback,
    semconv_callback,
)
from otel_fakegpu.telemetry.jobstats import jobstats_metrics
from otel_fakegpu.telemetry.labels import LabelScheme
from otel_fakegpu.telemetry.sdk_fastpath import install as install_sdk_fastpath
from otel_fakegpu.telemetry.sdk_shared import InstrumentSpec, sdk_for
from otel_fakegpu.telemetry.selfmetrics import SelfMetric, merge_by_name, single
from otel_fakegpu.telemetry.semconv import SEMCONV_FIELD_IDS, SEMCONV_INSTRUMENTS
from otel_fakegpu.telemetry.shared_gpus import PER_POD_FIELDS, per_pod_callback
from otel_fakegpu.telemetry.stats import CycleStats
from otel_fakegpu.telemetry.windows import EventWindow
from otel_fakegpu.telemetry.workload_labels import WorkloadCache, attribution_self_metrics, with_workloads

SCOPE_NAME = "otel_fakegpu"
SEMCONV_SCOPE_NAME = "otel_fakegpu.semconv"
DEFAULT_COUNT_WINDOW_MS = 300_000  # dcgm-exporter's --xid-count-window-size / --clock-events-count-window-size
# The SDK gives up on a collection after 10 s by default. A 4096-GPU collection takes about 2 s, but on a loaded
# machine (load 6 on 2 cores) the first one passed 10 s and failed, leaving /metrics at 503 for a whole interval.
COLLECT_TIMEOUT_MS = 120_000


def sample_keep_age_s(collect_interval_s: float) -> float:
    """How long the engine keeps event samples (``watch``): enough for a cycle that runs late or fails once."""
    return max(60.0, 4 * collect_interval_s)


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
        virtual_gpus: bool = False,
    ) -> None:
        """``count_windows_ms`` maps a computed field id (9001, 9002) to its window; 5 minutes if absent.

        ``previous`` (a reload): the pipeline this one replaces; its collection count, its event windows of the same
        field and size, and its place in the engine's samples carry over, so nothing is counted twice or lost.
        ``attribution`` adds each cycle's workload labels (pod, namespace, container, hpc_job ...); ``jobstats``
        adds the jobstats GPU exporter's job-mapping series (``nvidia_gpu_jobId``) for the attributed jobs;
        ``virtual_gpus`` serves GPU_UTIL and FB_USED per pod on devices pods use (telemetry/shared_gpus.py).
        """
        install_sdk_fastpath()  # once per process; the label sets below are FrozenAttributes
        self._labels = labels
        self._attribution = attribution
        self._virtual_gpus = virtual_gpus and attribution is not None
        self._workload_attrs: WorkloadCache = {}
        self._semconv_workload_attrs: WorkloadCache = {}
        self._semconv = semconv
        self._collections = previous.collections_total if previous is not None else 0
        kept_windows = previous.windows() if previous is not None else {}
        self._current = CurrentCycle()
        self._stats, self._engine_reads = stats, engine_reads
        self_metrics = merge_by_name(
            (
                *self._cycle_self_metrics(),
                *(attribution_self_metrics(attribution) if attribution and attribution.source.can_fail else ()),
                *(jobstats_metrics(lambda: (self._current.snapshot, self._current.assignment)) if jobstats else ()),
                *extra_self_metrics,
            )
        )
        self._windows: list[tuple[int, EventWindow]] = []
        specs: list[InstrumentSpec] = []
        callbacks: list[Callback] = []
        for collector in collectors.metrics:
            kind = "counter" if collector.kind is MetricKind.COUNTER else "gauge"
            specs.append(InstrumentSpec(SCOPE_NAME, collector.name, kind, collector.field.unit, collector.help))
            callbacks.append(self._callback_for(collector, count_windows_ms or {}, kept_windows))
        for metric in self_metrics:
            kind = "counter" if metric.counter else "gauge"
            specs.append(InstrumentSpec(SCOPE_NAME, metric.name, kind, metric.unit, metric.help))
            callbacks.append(self_callback(metric))
        field_ids = [*labels.field_ids, *collectors.field_ids, *collectors.derived_field_ids]
        if semconv:
            for instrument in SEMCONV_INSTRUMENTS:
                spec = InstrumentSpec(SEMCONV_SCOPE_NAME, instrument.name, instrument.kind, instrument.unit,
                                      instrument.help)  # fmt: skip
                specs.append(spec)
                callbacks.append(semconv_callback(self._current, instrument))
            field_ids += SEMCONV_FIELD_IDS
        # A fleet's hosts have alike instruments: they share one provider, each keeping its own series.
        self._sdk = sdk_for(tuple(specs), callbacks, resource)
        self.field_ids: tuple[int, ...] = tuple(dict.fromkeys(field_ids))
        self.sample_field_ids: tuple[int, ...] = tuple(dict.fromkeys(source for source, _ in self._windows))
        # Where the next engine read continues the event samples; None when no computed field wants them.
        self.samples_cursor: int | None = 0 if self.sample_field_ids else None
        if previous is not None and self.sample_field_ids and previous.samples_cursor is not None:
            self.samples_cursor = previous.samples_cursor  # a window new in this pipeline starts empty from here

    def windows(self) -> dict[tuple[int, float], EventWindow]:
        """The event windows, by (event field, window seconds): what a reloaded pipeline takes over."""
        return {(source, window.window_s): window for source, window in self._windows}

    def _callback_for(
        self, collector: Collector, windows_ms: Mapping[int, int], kept: Mapping[tuple[int, float], EventWindow]
    ) -> Callback:
        """The collector's callback; a window count takes over ``kept``'s window of the same field and size."""
        source = collector.field.counts_field
        if collector.field.entity != ENTITY_GPU:
            return group_callback(self._current, collector.field.id, collector.field.entity)
        if collector.field.derived_from:
            return derived_callback(self._current, DERIVED_POINTS[collector.field.id])
        if self._virtual_gpus and collector.field.id in PER_POD_FIELDS:
            return per_pod_callback(self._current, collector.field.id)
        if source is None:
            return field_callback(self._current, collector.field.id)
        window_ms = windows_ms.get(collector.field.id, DEFAULT_COUNT_WINDOW_MS)
        window = kept.get((source, window_ms / 1000.0))
        if window is None:
            window = EventWindow(EVENT_DECODERS[source], window_ms / 1000.0)
        self._windows.append((source, window))
        return event_count_callback(self._current, window, window_ms)

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
        self._current.attributes = self._current.own = self._labels.attributes(snapshot)
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
        try:
            data = self._sdk.collect(COLLECT_TIMEOUT_MS)
        finally:  # nothing reads them between collections: a fleet host keeps no copy of its columns
            self._current.snapshot, self._current.assignment = EMPTY_SNAPSHOT, None
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
        self._sdk.shutdown()
