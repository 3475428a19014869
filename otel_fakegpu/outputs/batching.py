"""Splits one cycle's MetricsData into requests of at most N data points, keeping resource, scope and
metric metadata on every piece, so a 4096-GPU cycle fits a receiver's 4 MiB message limit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics

# About 300 bytes per DCGM point with its seven attributes: 8000 points stay near 2.5 MiB uncompressed.
DEFAULT_MAX_POINTS = 8000


def count_points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
    )


def select_scopes(data: MetricsData, scopes: Iterable[str]) -> MetricsData:
    """Only the instrumentation scopes named (DCGM names, semconv names, or both)."""
    wanted = set(scopes)
    return MetricsData(
        resource_metrics=[
            replace(rm, scope_metrics=[sm for sm in rm.scope_metrics if sm.scope.name in wanted])
            for rm in data.resource_metrics
        ]
    )


def split(data: MetricsData, max_points: int = DEFAULT_MAX_POINTS) -> Iterator[MetricsData]:
    """Pieces of ``data`` in order, each with at most ``max_points`` points (and at least one)."""
    if max_points < 1:
        raise ValueError("max_points must be positive")
    pending: list[ResourceMetrics] = []
    room = max_points
    for rm in data.resource_metrics:
        scopes: list[ScopeMetrics] = []
        for sm in rm.scope_metrics:
            metrics: list[Metric] = []
            for metric in sm.metrics:
                points = list(metric.data.data_points)
                while points:
                    take, points = points[:room], points[room:]
                    metrics.append(replace(metric, data=replace(metric.data, data_points=take)))  # type: ignore[arg-type]
                    room -= len(take)
                    if room == 0:
                        scopes.append(replace(sm, metrics=metrics))
                        pending.append(replace(rm, scope_metrics=scopes))
                        yield MetricsData(resource_metrics=pending)
                        pending, scopes, metrics, room = [], [], [], max_points
            if metrics:
                scopes.append(replace(sm, metrics=metrics))
        if scopes:
            pending.append(replace(rm, scope_metrics=scopes))
    if pending:
        yield MetricsData(resource_metrics=pending)
