"""The callbacks of the pipeline's observable instruments: each reads the running cycle's snapshot and labels.

``CurrentCycle`` is set just before the one SDK collection of a cycle; every callback reads it, none reads an engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation

from otel_fakegpu.attribution import Assignment
from otel_fakegpu.engine import EMPTY_SNAPSHOT, Column, Snapshot
from otel_fakegpu.telemetry.dcgm_health import Point, dcgm_health_points, p2p_points
from otel_fakegpu.telemetry.labels import Attributes
from otel_fakegpu.telemetry.sdk_collect import ColumnPoints
from otel_fakegpu.telemetry.sdk_fastpath import frozen
from otel_fakegpu.telemetry.selfmetrics import SelfMetric
from otel_fakegpu.telemetry.semconv import SemconvInstrument
from otel_fakegpu.telemetry.stats import CycleStatsView
from otel_fakegpu.telemetry.windows import EventWindow

WINDOW_LABEL = "window_size_in_ms"


class CurrentCycle:
    """What the callbacks of the running collection read: set just before ``collect``."""

    def __init__(self) -> None:
        self.snapshot: Snapshot = EMPTY_SNAPSHOT
        self.attributes: list[Attributes] = []
        self.own: list[Attributes] = []  # each entity's own set, before workload labels (shared_gpus.py)
        self.semconv_attributes: list[Attributes] = []
        # With attribution: per entity, one attribute set per workload using it (or just its own).
        self.expanded: list[tuple[Attributes, ...]] | None = None
        self.semconv_expanded: list[tuple[Attributes, ...]] | None = None
        self.assignment: Assignment | None = None
        self.group_attributes: dict[str, list[Attributes]] = {}  # NVSwitch and link series
        # The exporter's own counters, read at one moment for the whole collection, so one page agrees.
        self.stats = CycleStatsView(0, 0, None, None, None, 0)
        self.engine_reads = 0

    def bases(self, i: int) -> tuple[Attributes, ...]:
        """Entity ``i``'s attribute sets: one per workload using it, or just its own."""
        return (self.attributes[i],) if self.expanded is None else self.expanded[i]

    def semconv_bases(self, i: int) -> tuple[Attributes, ...]:
        """The same under semantic-convention names."""
        return (self.semconv_attributes[i],) if self.semconv_expanded is None else self.semconv_expanded[i]


Callback = Callable[[CallbackOptions], Iterable[Observation]]
Label = Callable[[int, int, Attributes], Attributes]


def column_points(
    values: Column,
    flat: list[Attributes] | None,
    bases: Callable[[int], tuple[Attributes, ...]],
    scale: float = 1,
    label: Label | None = None,
) -> Iterable[Observation]:
    """A point per numeric value and attribute set of its entity: ``flat[i]`` when given (one set per entity, the
    fast path of most cycles: a column, read without an Observation per point by a direct collection), else each
    ``bases(i)``, as ``label(i, j, set)`` when given, the value times ``scale``."""
    if flat is not None and scale == 1 and label is None:
        return ColumnPoints(values, flat)
    # bool is an int subclass but never a DCGM reading; text in a numeric field is a bad record.
    points = []
    for i, value in enumerate(values):
        if type(value) is int or type(value) is float:
            for j, base in enumerate(bases(i)):
                points.append(Observation(value * scale, base if label is None else label(i, j, base)))
    return points


def field_callback(current: CurrentCycle, field_id: int) -> Callback:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        flat = current.attributes if current.expanded is None else None
        return column_points(current.snapshot.column(field_id), flat, current.bases)

    return observe


def group_callback(current: CurrentCycle, field_id: int, group: str) -> Callback:
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


class ExtendedAttributes:
    """A GPU's attributes plus a few more labels, built once per (owner, labels) and reused while the GPU's
    own dict is the same object (LabelScheme keeps it while the identity holds): no dict per point per cycle."""

    def __init__(self) -> None:
        self._cache: dict[tuple[object, Pairs], tuple[Attributes, Attributes]] = {}

    def get(self, owner: object, base: Attributes, extra: Pairs) -> Attributes:
        cached = self._cache.get((owner, extra))
        if cached is None or cached[0] is not base:
            cached = self._cache[(owner, extra)] = (base, frozen({**base, **dict(extra)}))
        return cached[1]


def semconv_callback(current: CurrentCycle, instrument: SemconvInstrument) -> Callback:
    extended = ExtendedAttributes()

    def labeller(extra: Pairs) -> Label | None:
        def label(i: int, j: int, base: Attributes) -> Attributes:
            return extended.get((i, j), base, extra)

        return label if extra else None

    labelled = [(series, labeller(series.extra)) for series in instrument.series]

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        flat = current.semconv_attributes if current.semconv_expanded is None else None
        points: list[Observation] = []
        for series, label in labelled:
            column = current.snapshot.column(series.field_id)
            points += column_points(column, flat, current.semconv_bases, series.scale, label)
        return points

    return observe


DERIVED_POINTS: dict[int, Callable[[Snapshot], Iterable[Point]]] = {9003: dcgm_health_points, 9004: p2p_points}


def derived_callback(current: CurrentCycle, points: Callable[[Snapshot], Iterable[Point]]) -> Callback:
    """A status computed from the snapshot (9003, 9004): GPU labels (once per workload using the GPU), then its own
    in dcgm-exporter's sorted order."""
    extended = ExtendedAttributes()

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        snapshot = current.snapshot
        return [
            Observation(value, extended.get((snapshot.entity_ids[row], j), base, extra))
            for row, extra, value in points(snapshot)
            for j, base in enumerate(current.bases(row))
        ]

    return observe


def event_count_callback(current: CurrentCycle, window: EventWindow, window_ms: int) -> Callback:
    """dcgm-exporter's shape: per GPU one series per code seen in the window, or one 0 without the code label."""
    label, window_pair = window.decoder.label, (WINDOW_LABEL, str(window_ms))
    extended = ExtendedAttributes()

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        counts = window.counts()
        points = []
        instances = current.snapshot.instances
        for i, entity_id in enumerate(current.snapshot.entity_ids):
            per_code = counts.get(entity_id)
            if per_code is None and entity_id in instances:
                # Event samples are stored on the parent GPU; its instances repeat its XID field, so its count too.
                per_code = counts.get(instances[entity_id].parent)
            for j, base in enumerate(current.bases(i)):
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


def self_callback(metric: SelfMetric) -> Callback:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attrs) for value, attrs in metric.read()]

    return observe
