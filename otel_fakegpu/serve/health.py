"""/health that tells the truth: engine state, age of the last cycle, GPU count. 200 only when healthy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_fakegpu.engine import EngineState, EngineStatus
from otel_fakegpu.telemetry import CycleStatsView

STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return 200 if self.healthy else 503


def evaluate(
    engine: EngineStatus,
    engine_reads: int,
    stats: CycleStatsView,
    interval_s: float,
    now: float,
    sdk_collections: int = 0,
    gpus_missing: Sequence[int | str] = (),
    dead_loops: Mapping[str, str] | None = None,
) -> HealthReport:
    """Healthy when the engine answers, every background loop runs and a cycle published within the last three
    intervals.

    GPUs that fell off the bus (``gpus_missing``) make it ``degraded``: the exporter works, the node does not.
    ``dead_loops`` names each background loop that ended, and why: ``loop_failed``.
    """
    age = None if stats.last_ok_at is None else max(0.0, now - stats.last_ok_at)
    if engine.state is EngineState.FAILED:
        status = "engine_failed"
    elif dead_loops:
        status = "loop_failed"
    elif age is None:
        status = "starting"
    elif age > STALE_AFTER_INTERVALS * interval_s:
        status = "stale"
    elif stats.last_error is not None or gpus_missing:
        status = "degraded"  # the last cycle failed, or GPUs are lost, but the published data is still fresh
    else:
        status = "healthy"  # the seed prototype's word, which its users' probes and scripts check for
    body: dict[str, Any] = {
        "status": status,
        "engine": {
            "kind": engine.kind,
            "state": engine.state.value,
            "detail": engine.detail,
            "reads_total": engine_reads,
        },
        "gpus": stats.gpus,
        "gpus_missing": list(gpus_missing),
        "last_cycle": {
            "age_seconds": None if age is None else round(age, 3),
            "duration_seconds": None if stats.last_duration_s is None else round(stats.last_duration_s, 6),
            "series": stats.series,
            "error": stats.last_error,
        },
        "recent_cycle_durations_seconds": [round(d, 6) for d in stats.recent_durations_s],
        "cycles_total": stats.cycles_total,
        "cycle_errors_total": stats.errors_total,
        "sdk_collections_total": sdk_collections,
        "dead_loops": dict(dead_loops or {}),
        "collect_interval_seconds": interval_s,
        "stale_after_seconds": STALE_AFTER_INTERVALS * interval_s,
    }
    return HealthReport(healthy=status in ("healthy", "degraded"), body=body)
