"""Renders an SDK collection as dcgm-exporter's Prometheus text: exact names, no unit suffixes, no
``_total``, no ``otel_scope_*`` labels, no ``target_info``; integers as integers, doubles as ``%f``."""

from __future__ import annotations

import math
from collections.abc import Mapping

from opentelemetry.sdk.metrics.export import Gauge, Metric, MetricsData, Sum

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float | int) -> str:
    """dcgm-exporter prints integers verbatim and doubles with six decimals."""
    if isinstance(value, int):
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


class PrometheusTextRenderer:
    """Turns MetricsData into exposition bytes, caching each attribute set's rendered ``{...}`` text."""

    def __init__(self) -> None:
        self._label_text: dict[tuple[tuple[str, object], ...], str] = {}

    def render(self, data: MetricsData) -> tuple[bytes, int]:
        """The exposition body and the number of series in it."""
        lines: list[str] = []
        series = 0
        seen: dict[tuple[tuple[str, object], ...], str] = {}
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    series += self._render_metric(metric, lines, seen)
        self._label_text = seen  # drop label sets that no longer occur
        return "".join(lines).encode("utf-8"), series

    def _render_metric(self, metric: Metric, lines: list[str], seen: dict[tuple[tuple[str, object], ...], str]) -> int:
        kind = _type_of(metric)
        if kind is None:
            return 0
        name = metric.name
        lines.append(f"# HELP {name} {_escape_help(metric.description or name)}\n# TYPE {name} {kind}\n")
        points = metric.data.data_points
        for point in points:
            labels = self._labels(point.attributes or {}, seen)
            lines.append(f"{name}{labels} {format_value(point.value)}\n")  # type: ignore[union-attr]
        return len(points)

    def _labels(self, attributes: Mapping[str, object], seen: dict[tuple[tuple[str, object], ...], str]) -> str:
        key = tuple(attributes.items())
        text = seen.get(key)
        if text is None:
            text = self._label_text.get(key)
            if text is None:
                pairs = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in key)
                text = f"{{{pairs}}}" if pairs else ""
            seen[key] = text
        return text
