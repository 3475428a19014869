"""dcgm-exporter's collectors CSV: ``DCGM field name, type, help text`` per line, ``#`` comments.

The same files users feed dcgm-exporter with ``-f`` work here unchanged. Every mistake is reported as
``FILE:LINE: reason`` so a bad file is fixed in one look.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.config.files import read_config_text
from otel_fakegpu.fields.catalog import (
    CATALOG,
    FieldCatalog,
    FieldSpec,
    MetricKind,
    UnknownFieldError,
    ValueType,
)
from otel_fakegpu.fields.legacy import legacy_field_id
from otel_fakegpu.fields.spec import ENTITY_GPU

log = logging.getLogger(__name__)

_PARSER_ONLY_TYPES = ("histogram", "summary")
MAX_COLLECTORS_BYTES = 1 << 20  # dcgm-exporter's largest shipped file is under 10 kB


class CollectorsError(ValueError):
    """A collectors file that cannot be used; the message starts with ``FILE:LINE:``."""


@dataclass(frozen=True)
class Collector:
    """One exported field: ``name`` is the spelling the file used, which is the exported metric name."""

    field: FieldSpec
    name: str
    kind: MetricKind
    help: str
    line: int = 0


@dataclass(frozen=True)
class CollectorSet:
    """The parsed file: metrics (gauges and counters) and label-type fields, each in file order."""

    source: str
    metrics: tuple[Collector, ...]
    labels: tuple[Collector, ...]

    @property
    def field_ids(self) -> tuple[int, ...]:
        """Every field id whose latest value the engine must read each cycle for this set."""
        return tuple(c.field.id for c in (*self.metrics, *self.labels) if not c.field.is_computed)

    @property
    def reads_switches(self) -> bool:
        """Whether any field of the set is read from NVSwitches or their NVLinks rather than from GPUs."""
        return any(c.field.entity != ENTITY_GPU for c in (*self.metrics, *self.labels))

    @property
    def derived_field_ids(self) -> tuple[int, ...]:
        """Fields the engine must read for the computed status fields (9003, 9004)."""
        return tuple(fid for c in self.metrics for fid in c.field.derived_from)

    @property
    def computed(self) -> tuple[Collector, ...]:
        """Metrics counted by the exporter from an event field's samples (DCGM_EXP_*_COUNT)."""
        return tuple(c for c in self.metrics if c.field.is_computed)


def default_collectors_path() -> Path:
    """The shipped default set: the same 26 fields as dcgm-exporter's stock ``default-counters.csv``."""
    return Path(str(resources.files("otel_fakegpu.fields").joinpath("default-counters.csv")))


def collectors_preset_path(name: str) -> Path:
    """A shipped field set named after the exporter it mirrors (``digitalocean``)."""
    return Path(str(resources.files("otel_fakegpu.fields").joinpath(f"{name}-counters.csv")))


def load_collectors(path: str | Path, catalog: FieldCatalog = CATALOG) -> CollectorSet:
    """Read and validate a collectors file; raises CollectorsError naming the file (and line)."""
    try:
        text = read_config_text(path, MAX_COLLECTORS_BYTES, "collectors file")  # a UTF-8 BOM is fine
    except ConfigError as exc:
        raise CollectorsError(str(exc)) from None
    return parse_collectors(text, str(path), catalog)


def parse_collectors(text: str, source: str = "<collectors>", catalog: FieldCatalog = CATALOG) -> CollectorSet:
    """Parse collectors CSV text; ``source`` names it in errors."""
    metrics: list[Collector] = []
    labels: list[Collector] = []
    first_seen: dict[int, tuple[int, str]] = {}  # field id -> the line and name that export it
    first_names: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        collector = _parse_line(line, f"{source}:{lineno}", lineno, catalog)
        if collector is None:
            continue
        if collector.name in first_names:
            # dcgm-exporter's own 1.x compatibility file lists its two PCIe byte fields twice: accept the file, and
            # keep the first (dcgm-exporter would print the family twice, which Prometheus rejects).
            log.warning("%s:%d: %s is listed again (first on line %d); kept the first", source, lineno,
                        collector.name, first_names[collector.name])  # fmt: skip
            continue
        if collector.field.id in first_seen:
            # One field under two names (DCGM_FI_DEV_GPU_TEMP and DCGM_FI_DEV_GPU_TEMP_CELSIUS): dcgm-exporter accepts
            # the file and files every value of the id under the first line's name (collector.findCounterField), so
            # the later name never has a series. Same here, said once at load.
            first_line, first_name = first_seen[collector.field.id]
            log.warning("%s:%d: %s names field %d, which line %d already exports as %s; only %s is served",
                        source, lineno, collector.name, collector.field.id, first_line, first_name,
                        first_name)  # fmt: skip
            continue
        first_seen[collector.field.id] = (lineno, collector.name)
        first_names[collector.name] = lineno
        (labels if collector.kind is MetricKind.LABEL else metrics).append(collector)
    if not metrics:
        raise CollectorsError(f"{source}: no gauge or counter fields: nothing to export")
    return CollectorSet(source=source, metrics=tuple(metrics), labels=tuple(labels))


def _parse_line(line: str, where: str, lineno: int, catalog: FieldCatalog) -> Collector | None:
    try:
        row = next(csv.reader([line], skipinitialspace=True, strict=True))
    except csv.Error as exc:
        raise CollectorsError(f"{where}: malformed CSV: {exc}") from None
    cells = [cell.strip() for cell in row]
    if len(cells) != 3:
        raise CollectorsError(f"{where}: expected 3 comma-separated columns (field name, type, help), got {len(cells)}")
    name, type_name, help_text = cells
    spec = _resolve_name(name, where, catalog)
    kind = _parse_kind(type_name.lower(), where)
    if spec.value_type is ValueType.STRING and kind is not MetricKind.LABEL:
        raise CollectorsError(f"{where}: {name} holds text; its type can only be 'label', not {type_name!r}")
    if spec.counts_field is not None:
        _check_computed_kind(name, kind, where)
    elif spec.is_computed and kind is MetricKind.LABEL:
        raise CollectorsError(f"{where}: {name} is a status; its type can be 'gauge' or 'counter', not 'label'")
    return Collector(field=spec, name=name, kind=kind, help=help_text, line=lineno)


def merge_collectors(base: CollectorSet, extra: CollectorSet) -> CollectorSet:
    """``base`` plus the fields of ``extra`` it lacks, as DigitalOcean's wrapper adds ``--collectors`` to its own
    set: a field already in ``base`` keeps base's name, type and help."""
    known = {c.field.id for c in (*base.metrics, *base.labels)}
    metrics = [c for c in extra.metrics if c.field.id not in known]
    labels = [c for c in extra.labels if c.field.id not in known]
    return CollectorSet(
        source=f"{base.source} + {extra.source}",
        metrics=(*base.metrics, *metrics),
        labels=(*base.labels, *labels),
    )


def _resolve_name(name: str, where: str, catalog: FieldCatalog) -> FieldSpec:
    """A field by its DCGM name (any spelling in the catalog) or by an older name (go-dcgm's legacy names)."""
    try:
        return catalog.by_name(name)
    except UnknownFieldError:
        pass
    field_id = legacy_field_id(name)
    if field_id is None:
        raise CollectorsError(f"{where}: unknown DCGM field {name!r}")
    try:
        return catalog.by_id(field_id)
    except UnknownFieldError:
        raise CollectorsError(f"{where}: {name} is an older name of DCGM field {field_id}, not produced here") from None


def _parse_kind(type_name: str, where: str) -> MetricKind:
    if type_name in _PARSER_ONLY_TYPES:
        raise CollectorsError(f"{where}: type {type_name!r} is never produced for DCGM fields; use gauge or counter")
    try:
        return MetricKind(type_name)
    except ValueError:
        raise CollectorsError(f"{where}: unknown type {type_name!r} (expected gauge, counter or label)") from None


def _check_computed_kind(name: str, kind: MetricKind, where: str) -> None:
    if kind is MetricKind.LABEL:
        raise CollectorsError(f"{where}: {name} is a count; its type can be 'gauge' or 'counter', not 'label'")
    if kind is MetricKind.COUNTER:
        # Kept as declared (the exposition must match dcgm-exporter's), but rate() would read drops as resets.
        log.warning(
            "%s: %s is a sliding-window count that falls as events age out; declared 'counter' as asked, "
            "but 'gauge' describes it (dcgm-exporter's own files say gauge)",
            where,
            name,
        )
