"""Series of workloads that left do not stay in the SDK (otel_fakegpu/telemetry/sdk_prune.py): with jobs changing
every cycle, the SDK's aggregations stay at one cycle's worth and the page carries only the current jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_fakegpu.attribution import HpcJobSource
from otel_fakegpu.telemetry.sdk_prune import StaleSetPruner, _view_matches
from tests.attribution_helpers import attributed_stack
from tests.conftest import Stack


def _aggregations(stack: Stack) -> int:
    return sum(len(match._attributes_aggregation) for match in _view_matches(stack.pipeline._provider))


def _jobs_on_page(body: bytes) -> set[str]:
    return {line.split('hpc_job="')[1].split('"')[0] for line in body.decode().splitlines() if 'hpc_job="' in line}


def _churn(tmp_path: Path, generations: int) -> tuple[Stack, list[int], bytes]:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    stack = attributed_stack(HpcJobSource(jobs), count=2)
    counts, body = [], b""
    for generation in range(generations):
        for gpu in range(2):
            (jobs / str(gpu)).write_text(f"{generation}{gpu}\n")
        stack.clock.advance(30)
        stack.simulator.step()
        body = stack.cycle()
        counts.append(_aggregations(stack))
    return stack, counts, body


def test_jobs_that_left_leave_no_aggregations_behind(tmp_path: Path) -> None:
    stack, counts, body = _churn(tmp_path, 12)
    assert counts[2:] == [counts[1]] * 10, counts  # one cycle's worth, whatever the number of jobs seen
    assert _jobs_on_page(body) == {"110", "111"}
    assert stack.pipeline._pruner.pruned_total >= 10 * counts[1] // 2
    stack.pipeline.shutdown()


def test_nothing_is_walked_while_no_set_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "0").write_text("7\n")
    stack = attributed_stack(HpcJobSource(jobs), count=2)
    stack.cycle()
    walked: list[int] = []

    def prune(self: StaleSetPruner, observed: set[int]) -> int:
        walked.append(len(observed))
        return 0

    monkeypatch.setattr(StaleSetPruner, "_prune", prune)
    for _ in range(3):
        stack.clock.advance(30)
        stack.simulator.step()
        stack.cycle()
    assert walked == []
    stack.pipeline.shutdown()


def test_an_sdk_without_those_internals_keeps_its_own_behaviour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def missing(self: StaleSetPruner, observed: set[int]) -> int:
        raise AttributeError("'MetricReaderStorage' object has no attribute '_instrument_view_instrument_matches'")

    monkeypatch.setattr(StaleSetPruner, "_prune", missing)
    stack, counts, body = _churn(tmp_path, 3)
    assert not stack.pipeline._pruner.enabled and _jobs_on_page(body) == {"20", "21"}
    assert counts[2] > counts[1]  # the SDK's own growth, as before
    assert caplog.text.count("stale attribute sets are not pruned") == 1
    stack.pipeline.shutdown()
