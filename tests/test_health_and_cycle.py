"""/health's verdicts, and a cycle that fails: counted, logged, and the last good bytes kept."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from otel_fakegpu.engine import EmbeddedEngine, EngineState, EngineStatus, Snapshot
from otel_fakegpu.outputs import ExpositionCache, PrometheusOutput
from otel_fakegpu.serve import evaluate
from otel_fakegpu.telemetry import CycleRunner, CycleStats, CycleStatsView
from tests.conftest import build_stack

OK_ENGINE = EngineStatus("embedded", EngineState.OK, "4 GPU entities")


def _stats(last_ok_at: float | None, error: str | None = None) -> CycleStatsView:
    return CycleStatsView(3, 1 if error else 0, last_ok_at, 0.004, error, 100, gpus=4)


@pytest.mark.parametrize(
    ("engine", "stats", "code", "status"),
    [
        (OK_ENGINE, _stats(99.0), 200, "healthy"),
        (OK_ENGINE, _stats(70.5), 200, "healthy"),  # 29.5 s old with a 10 s interval: under 3 intervals
        (OK_ENGINE, _stats(69.0), 503, "stale"),  # 31 s old
        (OK_ENGINE, _stats(None), 503, "starting"),
        (OK_ENGINE, _stats(95.0, "EngineError: lost"), 200, "degraded"),
        (EngineStatus("dcgm", EngineState.FAILED, "hostengine gone"), _stats(99.0), 503, "engine_failed"),
    ],
)
def test_health_verdicts(engine: EngineStatus, stats: CycleStatsView, code: int, status: str) -> None:
    report = evaluate(engine, 5, stats, interval_s=10.0, now=100.0)
    assert (report.status_code, report.body["status"]) == (code, status)
    assert report.body["stale_after_seconds"] == 30.0
    assert report.body["engine"]["reads_total"] == 5


class FlakyEngine(EmbeddedEngine):
    """The embedded engine made to fail on demand, standing in for a hostengine that drops out."""

    fail = False

    def read_latest(self, field_ids: Sequence[int], samples_after: int | None = None) -> Snapshot:
        if self.fail:
            raise RuntimeError("hostengine connection lost")
        return super().read_latest(field_ids, samples_after)


def test_failed_cycle_is_counted_and_last_good_exposition_kept() -> None:
    stack = build_stack(2, ["stable"])
    engine = FlakyEngine()
    engine.create_gpus(2)
    snapshot = stack.engine.read_latest(range(1, 1100))
    engine.inject([(e, f, v) for f, col in snapshot.columns.items() for e, v in enumerate(col) if v is not None], 1.0)
    stats, cache = CycleStats(), ExpositionCache()
    runner = CycleRunner(engine, stack.pipeline, [PrometheusOutput(cache)], stats)
    assert runner.run_once()
    good = cache.latest()
    assert good is not None and b"DCGM_FI_DEV_GPU_TEMP" in good.body
    engine.fail = True
    assert not runner.run_once()
    view = stats.view()
    assert (view.cycles_total, view.errors_total) == (2, 1)
    assert view.last_error == "RuntimeError: hostengine connection lost"
    assert cache.latest() is good
    engine.fail = False
    assert runner.run_once() and stats.view().last_error is None


def test_a_failing_output_does_not_starve_the_others() -> None:
    stack = build_stack(1, ["static"])
    cache, stats = ExpositionCache(), CycleStats()

    def broken(_: object) -> int:
        raise ValueError("disk full")

    runner = CycleRunner(stack.engine, stack.pipeline, [broken, PrometheusOutput(cache)], stats)
    assert not runner.run_once()
    assert cache.latest() is not None
    assert stats.view().last_error == "ValueError: disk full"


def test_health_lists_recent_cycle_durations() -> None:
    stack = build_stack(1, ["static"])
    stats = CycleStats()
    runner = CycleRunner(stack.engine, stack.pipeline, [PrometheusOutput(ExpositionCache())], stats)
    for _ in range(40):
        assert runner.run_once()
    view = stats.view()
    assert len(view.recent_durations_s) == 32 and view.recent_durations_s[-1] == view.last_duration_s
    report = evaluate(OK_ENGINE, 40, view, interval_s=10.0, now=view.last_ok_at or 0.0)
    assert len(report.body["recent_cycle_durations_seconds"]) == 32
