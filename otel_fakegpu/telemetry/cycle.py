"""The collection cycle: one engine read, one SDK collection, then every output gets the same result."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.metrics.export import MetricsData

from otel_fakegpu.engine import Engine, EngineError
from otel_fakegpu.telemetry.pipeline import TelemetryPipeline
from otel_fakegpu.telemetry.stats import CycleStats
from otel_fakegpu.telemetry.tracing import CycleTracing, span_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CycleResult:
    number: int
    started_at: float  # wall-clock seconds
    metrics: MetricsData


Consumer = Callable[[CycleResult], int]
"""An output: takes a cycle's result, returns how many series it published."""


class CycleRunner:
    """Runs cycles on a fixed cadence; a failing cycle is counted and logged, and the last good output stays."""

    def __init__(
        self,
        engine: Engine,
        pipeline: TelemetryPipeline,
        consumers: Sequence[Consumer],
        stats: CycleStats,
        tracing: CycleTracing | None = None,
    ) -> None:
        self._engine = engine
        self._pipeline = pipeline
        self._consumers = tuple(consumers)
        self._stats = stats
        self._tracing = tracing or CycleTracing()
        self._number = 0
        self._lock = threading.Lock()  # a cycle and a pipeline swap (reload) never overlap

    def replace_pipeline(self, pipeline: TelemetryPipeline) -> TelemetryPipeline:
        """Use ``pipeline`` from the next cycle on (a reload); returns the one it replaces, after any running cycle."""
        with self._lock:
            previous, self._pipeline = self._pipeline, pipeline
            return previous

    def run_once(self) -> bool:
        """One cycle; True when every stage and output succeeded."""
        with self._lock:
            self._number += 1
            with self._tracing.cycle(self._number):
                return self._run_once()

    def _run_once(self) -> bool:
        started_wall, started = time.time(), time.perf_counter()
        try:
            with self._tracing.stage("engine read"):
                snapshot = self._pipeline.read(self._engine)
            with self._tracing.stage("sdk collection", {"otel_fakegpu.gpus": len(snapshot)}):
                metrics = self._pipeline.collect(snapshot)
        except EngineError as exc:  # the engine logged the cause once; no traceback every cycle it is away
            log.warning("collection cycle %d failed: %s", self._number, exc)
            self._stats.record_error(f"{type(exc).__name__}: {exc}")
            return False
        except Exception as exc:
            log.exception("collection cycle %d failed", self._number)
            self._stats.record_error(f"{type(exc).__name__}: {exc}")
            return False
        result = CycleResult(self._number, started_wall, metrics)
        series, failed = 0, []
        for consumer in self._consumers:
            try:
                with self._tracing.stage(span_name(consumer)):
                    series = max(series, consumer(result))
            except Exception as exc:  # one broken output must not starve the others
                log.exception("output %r failed in cycle %d", consumer, self._number)
                failed.append(f"{type(exc).__name__}: {exc}")
        if failed:
            self._stats.record_error("; ".join(failed))
            return False
        self._stats.record_ok(time.time(), time.perf_counter() - started, series, len(snapshot))
        return True
