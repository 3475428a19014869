"""Renders an SDK collection as dcgm-exporter's Prometheus text: exact names, no unit suffixes, no
``_total``, no ``otel_scope_*`` labels, no ``target_info``; integers as integers, doubles as ``%f``.

The same pass yields the OpenMetrics form. OpenMetrics would rename a counter's samples to ``NAME_total``,
and Prometheus asks for OpenMetrics first by default, so a DCGM counter (whose name has no ``_total``) is
declared ``unknown`` there: the stored series keep dcgm-exporter's exact names either way.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.metrics.export import Gauge, Metric, MetricsData, NumberDataPoint, Sum

from otel_fakegpu.telemetry import SCOPE_NAME, FixedAttributes

LabelKey = tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class FamilyText:
    """One rendered family: header lines for each format, and the sample lines they share."""

    prometheus_header: str
    openmetrics_header: str
    samples: str
    series: int


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_text(pairs: Iterable[tuple[str, object]]) -> str:
    joined = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in pairs)
    return f"{{{joined}}}" if joined else ""


def format_value(value: float | int) -> str:
    """dcgm-exporter prints integers verbatim and doubles with six decimals."""
    if type(value) is int:  # nearly every point is an int or a float: no isinstance walk for them
        return str(value)
    if type(value) is float and math.isfinite(value):
        return f"{value:f}"
    if isinstance(value, int):  # an int subclass (a bool never reaches here: callbacks drop them)
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:f}"


def _type_of(metric: Metric) -> str | None:
    data = metric.data
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Sum):
        return "counter" if data.is_monotonic else "gauge"
    return None  # histograms are never produced by this pipeline


@functools.lru_cache(maxsize=4096)
def _headers(name: str, description: str, kind: str) -> tuple[str, str]:
    """A family's HELP and TYPE lines in Prometheus text and in OpenMetrics. One cache for the process, and the
    strings interned: every host of a fleet holds the same strings, and no table of them of its own."""
    help_text = _escape_help(description or name)
    om_kind = "unknown" if kind == "counter" and not name.endswith("_total") else kind
    om_name = name.removesuffix("_total") if om_kind == "counter" else name
    prometheus = f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
    openmetrics = f"# HELP {om_name} {help_text}\n# TYPE {om_name} {om_kind}\n"
    return sys.intern(prometheus), sys.intern(openmetrics)


def join_prometheus(families: Sequence[FamilyText]) -> bytes:
    return "".join(f.prometheus_header + f.samples for f in families).encode("utf-8")


def join_openmetrics(families: Sequence[FamilyText]) -> bytes:
    return ("".join(f.openmetrics_header + f.samples for f in families) + "# EOF\n").encode("utf-8")


class PrometheusTextRenderer:
    """Turns MetricsData into family texts, caching each attribute set's rendered ``{...}`` text.

    Only the DCGM scope is rendered: semantic-convention instruments (dotted names) are for OTLP.
    """

    def __init__(
        self, scopes: tuple[str, ...] = (SCOPE_NAME,), with_timestamps: bool = False, skip_prefix: str | None = None
    ) -> None:
        self._scopes = scopes
        self._skip_prefix = skip_prefix  # families left out (the push leaves out the exporter's own series)
        self._with_timestamps = with_timestamps
        self._label_text: dict[LabelKey, str] = {}
        # Sets that cannot change, by identity: the entry holds the set, so its id is not reused while cached.
        # The SDK hands our sets to the points as they are only when its fast path is installed (sdk_fastpath);
        # otherwise points carry the SDK's own copies, plain dicts, and take the tuple-keyed cache.
        self._frozen_text: dict[int, tuple[FixedAttributes, str]] = {}
        self._frozen_seen: dict[int, tuple[FixedAttributes, str]] = {}

    def render_families(self, data: MetricsData) -> list[FamilyText]:
        families: list[FamilyText] = []
        seen: dict[LabelKey, str] = {}
        self._frozen_seen = {}
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                if scope_metrics.scope.name not in self._scopes:
                    continue
                for metric in scope_metrics.metrics:
                    if self._skip_prefix is not None and metric.name.startswith(self._skip_prefix):
                        continue
                    family = self._render_metric(metric, seen)
                    if family is not None:
                        families.append(family)
        self._label_text, self._frozen_text = seen, self._frozen_seen  # drop label sets that no longer occur
        return families

    def render(self, data: MetricsData) -> tuple[bytes, int]:
        """The Prometheus text body and the number of series in it."""
        families = self.render_families(data)
        return join_prometheus(families), sum(f.series for f in families)

    def _render_metric(self, metric: Metric, seen: dict[LabelKey, str]) -> FamilyText | None:
        kind = _type_of(metric)
        if kind is None:
            return None
        name = metric.name
        headers = _headers(name, metric.description or "", kind)
        points = metric.data.data_points
        labels, value_text = self._labels, format_value
        if self._with_timestamps:
            samples = "".join(
                f"{name}{labels(p.attributes or {}, seen)} {value_text(p.value)} {p.time_unix_nano // 1_000_000}\n"  # type: ignore[union-attr]
                for p in points
            )
        else:
            samples = "".join(self._plain_samples(name, points, seen))  # type: ignore[arg-type]
        return FamilyText(
            prometheus_header=headers[0],
            openmetrics_header=headers[1],
            samples=samples,
            series=len(points),
        )

    def _plain_samples(self, name: str, points: Sequence[NumberDataPoint], seen: dict[LabelKey, str]) -> list[str]:
        """``name{labels} value`` lines; a set already met in this collection found by identity here, without a
        call per point (the renderer's hot loop: 100,000 points at 4096 GPUs)."""
        frozen_seen, labels = self._frozen_seen, self._labels
        lines = []
        for point in points:
            attributes, value = point.attributes, point.value
            entry = frozen_seen.get(id(attributes))
            text = entry[1] if entry is not None and entry[0] is attributes else labels(attributes or {}, seen)
            lines.append(f"{name}{text} {value}\n" if type(value) is int else f"{name}{text} {format_value(value)}\n")
        return lines

    def _labels(self, attributes: Mapping[str, object], seen: dict[LabelKey, str]) -> str:
        if isinstance(attributes, FixedAttributes):  # most points: no tuple of items, no hash over them
            identity = id(attributes)
            entry = self._frozen_seen.get(identity)
            if entry is not None and entry[0] is attributes:  # a set seen before in this collection
                return entry[1]
            entry = self._frozen_text.get(identity)
            if entry is None or entry[0] is not attributes:
                entry = (attributes, _label_text(attributes.items()))
            self._frozen_seen[identity] = entry
            return entry[1]
        key = tuple(attributes.items())
        text = seen.get(key)
        if text is None:
            text = self._label_text.get(key)
            if text is None:
                text = _label_text(key)
            seen[key] = text
        return text
