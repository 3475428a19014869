"""Workload labels on the pipeline's series: each entity's attribute set once per workload using it, and the
attribution stage's self-metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from otel_fakegpu.attribution import Assignment, AttributionStage, Pairs
from otel_fakegpu.telemetry.labels import Attributes
from otel_fakegpu.telemetry.sdk_fastpath import frozen
from otel_fakegpu.telemetry.selfmetrics import SelfMetric, single

WorkloadCache = dict[tuple[int, Pairs], tuple[Attributes, Attributes]]


def with_workloads(
    bases: Sequence[Attributes], assignment: Assignment, cache: WorkloadCache, rename: Callable[[Pairs], Pairs]
) -> tuple[list[tuple[Attributes, ...]], WorkloadCache]:
    """Per entity its attribute sets with each workload's labels appended, reusing last cycle's dicts while
    entity and workload are unchanged (the SDK then sees the same sets); pods that left are forgotten."""
    kept: WorkloadCache = {}
    expanded: list[tuple[Attributes, ...]] = []
    for i, (base, sets) in enumerate(zip(bases, assignment, strict=True)):
        if not sets:
            expanded.append((base,))
            continue
        merged = []
        for pairs in sets:
            entry = cache.get((i, pairs))
            if entry is None or entry[0] is not base:
                entry = (base, frozen({**base, **dict(rename(pairs))}))
            kept[(i, pairs)] = entry
            merged.append(entry[1])
        expanded.append(tuple(merged))
    return expanded, kept


def attribution_self_metrics(stage: AttributionStage) -> tuple[SelfMetric, ...]:
    def age() -> float | None:
        return stage.status.age_s(time.time())

    return (
        SelfMetric(
            "otel_fakegpu_attribution_errors_total", True, "{fetch}",
            "Attribution fetches that failed (kubelet down or slower than the timeout, malformed file).",
            single(lambda: stage.status.errors_total),
        ),
        SelfMetric(
            "otel_fakegpu_attribution_age_seconds", False, "s",
            "Age of the workload map in use (since the source last answered).", single(age),
        ),
    )  # fmt: skip
