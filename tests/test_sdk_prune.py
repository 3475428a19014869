"""Series of workloads that left do not stay in the SDK (otel_fakegpu/telemetry/sdk_prune.py): with jobs changing
every cycle, the SDK's aggregations stay at one cycle's worth and the page carries only the current jobs; a counter
that stays keeps its value and start time; on an SDK whose internals are not as pruning needs, pruning stays off
with one warning and counters keep counting."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics._internal import _view_instrument_match as vim
from opentelemetry.sdk.metrics.export import MetricsData

from otel_fakegpu.attribution import HpcJobSource
from otel_fakegpu.telemetry import sdk_prune
from tests.attribution_helpers import attributed_stack
from tests.conftest import Stack


def _aggregations(stack: Stack) -> int:
    return stack.pipeline._sdk.series_held()


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
    assert stack.pipeline._sdk.pruner.pruned_total >= 10 * counts[1] // 2
    stack.pipeline.shutdown()


def test_nothing_is_walked_while_no_set_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "0").write_text("7\n")
    stack = attributed_stack(HpcJobSource(jobs), count=2)
    stack.cycle()
    walked: list[int] = []

    def prune(provider: Any, observed: set[int]) -> int:
        walked.append(len(observed))
        return 0

    monkeypatch.setattr(sdk_prune, "prune", prune)
    for _ in range(3):
        stack.clock.advance(30)
        stack.simulator.step()
        stack.cycle()
    assert walked == []
    stack.pipeline.shutdown()


def test_internals_that_change_after_the_check_turn_pruning_off_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def missing(provider: Any, observed: set[int]) -> int:
        raise AttributeError("'MetricReaderStorage' object has no attribute '_instrument_view_instrument_matches'")

    monkeypatch.setattr(sdk_prune, "prune", missing)
    stack, counts, body = _churn(tmp_path, 3)
    assert not stack.pipeline._sdk.pruner.enabled and _jobs_on_page(body) == {"20", "21"}
    assert counts[2] > counts[1]  # the SDK's own growth, as before
    assert caplog.text.count("stale attribute sets are no longer pruned") == 1
    stack.pipeline.shutdown()


CounterPoints = dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, float]]


def _counters(data: MetricsData) -> CounterPoints:
    """Every counter point: (name, attributes) -> (start time, value)."""
    return {
        (metric.name, tuple(sorted((k, str(v)) for k, v in (point.attributes or {}).items()))): (
            point.start_time_unix_nano,
            point.value,  # type: ignore[union-attr]
        )
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if getattr(metric.data, "is_monotonic", False)
        for point in metric.data.data_points
    }


def _pod_change(tmp_path: Path) -> tuple[Stack, list[CounterPoints]]:
    """Three cycles on two GPUs: GPU 1 runs job 21 throughout, GPU 0's job 10 leaves after the first for job 11."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "0").write_text("10\n")
    (jobs / "1").write_text("21\n")
    stack = attributed_stack(HpcJobSource(jobs), count=2)
    cycles = []
    for number in range(3):
        if number == 1:
            (jobs / "0").write_text("11\n")
        stack.clock.advance(30)
        stack.simulator.step()
        cycles.append(_counters(stack.pipeline.collect(stack.pipeline.read(stack.engine))))
    return stack, cycles


def _assert_counters_kept_counting(cycles: list[CounterPoints]) -> None:
    """Every counter of the first cycle whose labels did not change keeps its start time, and its value never falls;
    the energy counter of the GPU whose job stayed and the exporter's own collection counter among them."""
    stayed = [key for key in cycles[0] if ("hpc_job", "10") not in key[1]]
    assert any(
        name == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" and ("hpc_job", "21") in labels for name, labels in stayed
    )
    assert ("otel_fakegpu_sdk_collections_total", ()) in stayed
    for key in stayed:
        starts = {cycle[key][0] for cycle in cycles}
        values = [cycle[key][1] for cycle in cycles]
        assert len(starts) == 1 and values == sorted(values), (key, starts, values)
    energy = [key for key in stayed if key[0] == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
    assert all(cycles[2][key][1] > cycles[0][key][1] for key in energy)
    collections = ("otel_fakegpu_sdk_collections_total", ())
    assert [cycle[collections][1] for cycle in cycles] == [1, 2, 3]
    assert not any(("hpc_job", "10") in labels for _, labels in cycles[2])  # the job that left: its series went


def test_a_counter_keeps_its_start_time_and_value_across_a_pod_change(tmp_path: Path) -> None:
    stack, cycles = _pod_change(tmp_path)
    assert sdk_prune.status() == "yes" and stack.pipeline._sdk.pruner.enabled
    assert stack.pipeline._sdk.pruner.pruned_total > 0  # the job that left was pruned, the rest kept
    _assert_counters_kept_counting(cycles)
    stack.pipeline.shutdown()


def _copying_collect(stock: Any) -> Any:
    """``_ViewInstrumentMatch.collect`` as an SDK would have it that gives each point a copy of its attributes."""

    def collect(self: Any, *args: Any, **kwargs: Any) -> Any:
        points = stock(self, *args, **kwargs)
        return [dataclasses.replace(p, attributes=dict(p.attributes or {})) for p in points] if points else points

    return collect


def test_an_sdk_that_copies_attribute_sets_leaves_pruning_off_and_counters_counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the check, pruning on this SDK would drop every aggregation after the change: counters restart."""
    monkeypatch.setattr(vim._ViewInstrumentMatch, "collect", _copying_collect(vim._ViewInstrumentMatch.collect))
    monkeypatch.setattr(sdk_prune._install, "status", None)
    stack, cycles = _pod_change(tmp_path)
    assert not stack.pipeline._sdk.pruner.enabled and stack.pipeline._sdk.pruner.pruned_total == 0
    assert sdk_prune.status() == "a prune that should drop 1 aggregation dropped 3"
    assert caplog.text.count("stale attribute sets are not pruned") == 1
    _assert_counters_kept_counting(cycles)
    stack.pipeline.shutdown()


def test_the_check_turns_pruning_off_when_the_sdk_shape_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk_prune._install, "status", None)
    # A storage whose view matches have no _lock or _attributes_aggregation: another release's shape.
    monkeypatch.setattr(sdk_prune, "view_matches", lambda provider: iter([object()]))
    assert sdk_prune.install() is False
    assert str(sdk_prune.status()).startswith("AttributeError")
