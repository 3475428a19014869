"""The three hooks of a fleet (docs/sdk-hooks.md): slim per-series aggregations (telemetry/sdk_aggregation.py), one
MeterProvider for pipelines with alike instruments (telemetry/sdk_shared.py) and its direct collection without a
Measurement per point (telemetry/sdk_collect.py). All install on the SDK we declare; pages through them are byte for
byte the pages through the SDK's own objects and reader (interleaved hosts, MIG, jobs that come and go); on an SDK
they do not fit they install nothing, say so once, and the SDK's own path runs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource

from otel_fakegpu.attribution import HpcJobSource
from otel_fakegpu.telemetry import sdk_aggregation, sdk_collect, sdk_shared
from otel_fakegpu.telemetry.sdk_aggregation import SlimAggregation
from otel_fakegpu.telemetry.sdk_shared import OwnProvider, SdkScope, views_for
from tests.attribution_helpers import attributed_stack
from tests.conftest import Stack, build_stack

TIMED = tuple(
    f"otel_fakegpu_{name} ".encode()
    for name in ("cycle_duration_seconds", "last_cycle_timestamp_seconds", "attribution_age_seconds")
)


def _untimed(body: bytes) -> bytes:
    """A page less the exporter's own timings (a cycle's duration differs run to run)."""
    return b"\n".join(line for line in body.split(b"\n") if not line.startswith(TIMED))


def _hosts(tmp_path: Path) -> tuple[Stack, Stack]:
    """Two hosts alike in instruments: one with jobs on a MIG-partitioned GPU, one plain."""
    jobs = tmp_path / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "0").write_text("1001\n1002\n")
    (jobs / "1").write_text("2001\n")
    partitioned = attributed_stack(HpcJobSource(jobs), count=3, mig="1:3g.40gb*2")
    plain = attributed_stack(HpcJobSource(tmp_path / "none"), count=2)
    return partitioned, plain


def _interleaved(tmp_path: Path) -> list[bytes]:
    """Three cycles of both hosts, taking turns, a job leaving and another coming on the first."""
    partitioned, plain = _hosts(tmp_path)
    pages = [_untimed(plain.cycle()), _untimed(partitioned.cycle())]
    (tmp_path / "jobs" / "0").write_text("1003\n")
    for _ in range(2):
        for stack in (partitioned, plain):
            stack.clock.advance(30)
            stack.simulator.step()
            pages.append(_untimed(stack.cycle()))
    for stack in (partitioned, plain):
        stack.pipeline.shutdown()
    return pages


def test_both_install_on_the_declared_sdk() -> None:
    """Fails when an SDK upgrade no longer fits: every fleet host would quietly cost its own provider again."""
    assert sdk_aggregation.install() and sdk_aggregation.status() == "yes"
    assert sdk_shared.install() and sdk_shared.status() == "yes"
    assert sdk_collect.install() and sdk_collect.status() == "yes"
    assert sdk_aggregation._quick.status == "yes" and sdk_aggregation._Points.make is sdk_aggregation._quick_point
    stack = build_stack(2, ["static"])
    stack.cycle()
    assert isinstance(stack.pipeline._sdk, SdkScope)
    assert stack.pipeline._sdk._shared._direct is not None
    series = [a for held in stack.pipeline._sdk.series for a in held.values()]
    assert series and {type(a).__name__ for a in series} == {"_SlimLastValue", "_SlimSum"}
    assert all(not hasattr(a, "__dict__") for a in series)  # one slotted object per series


def test_alike_pipelines_share_one_provider_and_keep_their_own_series() -> None:
    first, second = build_stack(2, ["static"]), build_stack(3, ["static"], hostname="other-host")
    first.cycle()
    second.cycle()
    assert isinstance(first.pipeline._sdk, SdkScope) and isinstance(second.pipeline._sdk, SdkScope)
    assert first.pipeline._sdk._shared is second.pipeline._sdk._shared
    assert first.pipeline._sdk.series_held() < second.pipeline._sdk.series_held()


def test_pages_equal_those_of_a_provider_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = _interleaved(tmp_path / "shared")
    with monkeypatch.context() as own:
        own.setattr(sdk_shared._install, "status", "refused for this test")
        own.setattr(sdk_aggregation._install, "status", "refused for this test")
        own.setattr(sdk_collect._install, "status", "refused for this test")
        views_for.cache_clear()  # the views carry the aggregation chosen when they were made
        separate = _interleaved(tmp_path / "own")
    views_for.cache_clear()
    assert shared == separate
    assert b'hpc_job="1001"' in shared[1] and b'hpc_job="1003"' in shared[-2] and b'hpc_job="1001"' not in shared[-2]
    assert b'GPU_I_PROFILE="3g.40gb"' in shared[1]


def test_the_page_order_does_not_depend_on_which_host_saw_a_series_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK makes a metric's view match at its first point; a T4 has no NVLink series, so a provider first
    collected for a T4 host would put an H100 host's NVLink family last. A shared provider makes them all up front."""
    sdk_shared._shared.cache_clear()  # a provider new to this test, first collected for the T4 host
    build_stack(2, ["static"], skus=("t4",)).cycle()
    shared = _untimed(build_stack(2, ["static"]).cycle())
    with monkeypatch.context() as own:
        own.setattr(sdk_shared._install, "status", "refused for this test")
        alone = _untimed(build_stack(2, ["static"]).cycle())
    assert b"DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL{" in shared
    assert shared == alone


def test_a_refused_check_gives_each_pipeline_its_own_provider(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sdk_shared._install, "status", None)
    monkeypatch.setattr(sdk_shared, "_collections", lambda shared: [[("a", int(shared))]])
    assert sdk_shared.install() is False and sdk_shared.status() == "a self-check collection differed"
    assert caplog.text.count("providers not shared") == 1
    stack = build_stack(2, ["static"])
    assert isinstance(stack.pipeline._sdk, OwnProvider)
    assert b"DCGM_FI_DEV_GPU_TEMP{" in stack.cycle()


def test_a_refused_aggregation_check_keeps_the_sdks_aggregations(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sdk_aggregation._install, "status", None)
    monkeypatch.setattr(sdk_aggregation, "_points", lambda aggregation: [(aggregation is None,)])
    assert sdk_aggregation.aggregation() is None
    assert caplog.text.count("slim aggregations not used") == 1
    assert isinstance(SlimAggregation(), SlimAggregation)  # still importable; only unused


def test_refused_quick_points_are_made_by_the_sdk_and_pages_stay(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    quick = _untimed(build_stack(2, ["static"], seed=3).cycle())
    monkeypatch.setattr(sdk_aggregation._quick, "status", None)
    monkeypatch.setattr(sdk_aggregation, "_quick_point", lambda *args: None)  # what an unfit SDK could make
    monkeypatch.setattr(sdk_aggregation._Points, "make", sdk_aggregation._Points.make)  # put back afterwards
    assert sdk_aggregation.install() and sdk_aggregation._Points.make is sdk_aggregation._stock_point
    assert caplog.text.count("points made by their constructor (a quick point differed") == 1
    assert _untimed(build_stack(2, ["static"], seed=3).cycle()) == quick


def test_collections_from_two_threads_never_mix_their_series() -> None:
    """A reload answers on the worker's main thread while the cycle thread collects another host."""
    stacks = [build_stack(2, ["static"], hostname=f"host-{i}") for i in range(2)]
    expected = [_untimed(stack.cycle()).count(b"\n") for stack in stacks]
    errors: list[str] = []

    def run(stack: Stack, index: int) -> None:
        for _ in range(20):
            page = stack.cycle()
            if _untimed(page).count(b"\n") != expected[index] or f"host-{1 - index}".encode() in page:
                errors.append(f"host-{index} got a mixed page")

    threads = [threading.Thread(target=run, args=(stack, i)) for i, stack in enumerate(stacks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_refused_direct_collection_leaves_the_sdks_reader_to_collect(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    direct = _untimed(build_stack(2, ["static"], seed=3).cycle())
    monkeypatch.setattr(sdk_collect._install, "status", None)
    monkeypatch.setattr(sdk_collect, "_points", lambda direct: [("usable", direct)])
    sdk_shared._shared.cache_clear()  # a provider made now, under the refused check
    stack = build_stack(2, ["static"], seed=3)
    assert caplog.text.count("direct collection not used") == 1
    assert isinstance(stack.pipeline._sdk, SdkScope) and stack.pipeline._sdk._shared._direct is None
    assert _untimed(stack.cycle()) == direct
    sdk_shared._shared.cache_clear()


def test_a_direct_collection_drops_what_the_sdk_drops(caplog: pytest.LogCaptureFixture) -> None:
    """A non-finite value is left out with the SDK's warning; a failing callback costs its own points only."""
    from opentelemetry.metrics import Observation

    from otel_fakegpu.telemetry.sdk_fastpath import frozen
    from otel_fakegpu.telemetry.sdk_shared import InstrumentSpec, SharedProvider

    shape = (InstrumentSpec("t", "g", "gauge", "1", ""), InstrumentSpec("t", "h", "gauge", "1", ""))
    provider = SharedProvider(shape)
    good, bad = frozen({"gpu": "0"}), frozen({"gpu": "1"})

    def failing(options: object) -> list[Observation]:
        raise RuntimeError("boom")

    scope = SdkScope(provider, [lambda o: [Observation(1.5, good), Observation(float("nan"), bad)], failing],
                     Resource.get_empty())  # fmt: skip
    data = scope.collect(10_000)
    assert data is not None and provider._direct is not None
    metrics = data.resource_metrics[0].scope_metrics[0].metrics
    points = [
        (m.name, [(dict(p.attributes or {}), getattr(p, "value", None)) for p in m.data.data_points]) for m in metrics
    ]
    assert points == [("g", [({"gpu": "0"}, 1.5)])]
    assert "non-finite value nan for instrument g" in caplog.text and "Callback failed for instrument h" in caplog.text
