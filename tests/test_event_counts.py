"""DCGM_EXP_XID_ERRORS_COUNT and DCGM_EXP_CLOCK_EVENTS_COUNT: event samples kept by the engine between
reads, counted per GPU and code in a sliding window, exposed in dcgm-exporter's shape."""

from __future__ import annotations

import logging
import re

import pytest

from otel_fakegpu.engine import EmbeddedEngine, SampleBatch
from otel_fakegpu.fields import EVENT_DECODERS, collectors_preset_path, load_collectors, parse_collectors
from otel_fakegpu.fields.events import clock_event_names, xid_codes
from otel_fakegpu.telemetry import EventWindow
from tests.conftest import FakeClock, Stack, build_stack

XID, CLOCK = EVENT_DECODERS[230], EVENT_DECODERS[112]
COUNTS_CSV = """\
DCGM_FI_DEV_XID_ERRORS, gauge, Last XID.
DCGM_EXP_XID_ERRORS_COUNT, gauge, XIDs in the window.
DCGM_EXP_CLOCK_EVENTS_COUNT, gauge, Clock events in the window.
"""


def test_codes_of_a_sample() -> None:
    assert xid_codes(79) == ("79",)
    assert xid_codes(0) == ()  # "no XID yet" is not an XID
    assert clock_event_names(0x1) == ("gpu_idle",)
    assert clock_event_names(0x4 | 0x20 | 0x40) == ("power_cap", "sw_thermal", "hw_thermal")
    assert clock_event_names(0x200) == ()  # a bit DCGM does not name
    assert clock_event_names(0x1FF) == (
        "gpu_idle", "clocks_setting", "power_cap", "hw_slowdown", "sync_boost", "sw_thermal", "hw_thermal",
        "hw_power_brake", "display_clocks",
    )  # fmt: skip


def _batch(t: float, values: dict[int, int | None]) -> SampleBatch:
    return SampleBatch(t, tuple(values), tuple(values.values()))


def test_window_counts_samples_until_they_age_out() -> None:
    window = EventWindow(XID, window_s=15.0)
    window.add([_batch(0.0, {0: 79}), _batch(10.0, {0: 79, 1: 13}), _batch(20.0, {0: 13, 1: None})])
    window.expire(now=15.0)  # the sample at 0.0 is exactly on the edge: still inside
    assert window.counts() == {0: [("13", 1), ("79", 2)], 1: [("13", 1)]}
    window.expire(now=25.0)
    assert window.counts() == {0: [("13", 1), ("79", 1)], 1: [("13", 1)]}
    window.expire(now=25.001)
    assert window.counts() == {0: [("13", 1)]}
    window.expire(now=36.0)
    assert window.counts() == {}


def test_clock_event_bitmask_counts_each_reason_bit() -> None:
    window = EventWindow(CLOCK, window_s=60.0)
    window.add([_batch(1.0, {0: 0x4 | 0x20, 1: 0}), _batch(2.0, {0: 0x4, 1: 0x1})])
    window.expire(now=2.0)
    assert window.counts() == {0: [("power_cap", 2), ("sw_thermal", 1)], 1: [("gpu_idle", 1)]}


def test_engine_keeps_samples_of_watched_fields_between_reads() -> None:
    engine = EmbeddedEngine(lambda: 100.0)
    ids = engine.create_gpus(2)
    engine.watch_samples([230], max_keep_age_s=60.0)
    engine.inject([(ids[0], 230, 0), (ids[1], 230, 0), (ids[0], 150, 40)], timestamp=1.0)
    engine.inject([(ids[1], 230, 48)], timestamp=2.0)
    engine.inject([(ids[0], 150, 41)], timestamp=3.0)  # no watched field: stores no sample
    engine.inject([(ids[1], 230, 79)], timestamp=4.0)
    first = engine.read_latest([230], samples_after=0)
    assert first.column(230) == (0, 79)  # latest values, as ever
    assert [(b.timestamp, b.entity_ids, b.values) for b in first.samples[230]] == [
        (1.0, (0, 1), (0, 0)), (2.0, (1,), (48,)), (4.0, (1,), (79,)),
    ]  # fmt: skip
    engine.inject([(ids[0], 230, 13)], timestamp=5.0)
    second = engine.read_latest([230], samples_after=first.samples_cursor)
    assert [(b.timestamp, b.values) for b in second.samples[230]] == [(5.0, (13,))]
    assert engine.read_latest([230], samples_after=second.samples_cursor).samples[230] == ()
    assert engine.read_latest([230]).samples == {}  # a plain read carries no samples
    assert engine.reads_total == 4


def test_samples_that_age_out_unread_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    engine = EmbeddedEngine()
    (gpu,) = engine.create_gpus(1)
    engine.watch_samples([112], max_keep_age_s=10.0)
    for t in range(0, 30, 5):
        engine.inject([(gpu, 112, 4)], timestamp=float(t))
    with caplog.at_level(logging.WARNING):
        snapshot = engine.read_latest([112], samples_after=0)
    assert [b.timestamp for b in snapshot.samples[112]] == [15.0, 20.0, 25.0]
    assert "samples of field 112 aged out before they were read" in caplog.text


def _series(body: bytes, name: str) -> dict[str, float]:
    """``{labels that differ from the GPU's identity: value}`` of one family, e.g. ``gpu=1,xid=79``."""
    found = {}
    for line in body.decode().splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            key = ",".join(f"{k}={pairs[k]}" for k in ("gpu", "window_size_in_ms", "xid", "clock_event") if k in pairs)
            found[key] = float(value)
    return found


def _inject_xids(stack: Stack, gpu: int, *codes: int) -> None:
    for code in codes:
        stack.clock.advance(1.0)
        stack.engine.inject([(gpu, 230, code)], stack.clock())


def test_xid_count_shape_matches_dcgm_exporter() -> None:
    stack = build_stack(
        3, ["static"], collectors=parse_collectors(COUNTS_CSV, "c.csv"), count_windows_ms={9001: 60_000}
    )
    body = stack.cycle()
    assert _series(body, "DCGM_EXP_XID_ERRORS_COUNT") == {
        "gpu=0,window_size_in_ms=60000": 0, "gpu=1,window_size_in_ms=60000": 0, "gpu=2,window_size_in_ms=60000": 0,
    }  # fmt: skip
    assert "# TYPE DCGM_EXP_XID_ERRORS_COUNT gauge\n" in body.decode()
    _inject_xids(stack, 1, 79, 79, 13)
    body = stack.cycle()
    assert _series(body, "DCGM_EXP_XID_ERRORS_COUNT") == {
        "gpu=0,window_size_in_ms=60000": 0,
        "gpu=1,window_size_in_ms=60000,xid=13": 1,
        "gpu=1,window_size_in_ms=60000,xid=79": 2,
        "gpu=2,window_size_in_ms=60000": 0,
    }
    assert _series(body, "DCGM_FI_DEV_XID_ERRORS")["gpu=1"] == 13  # the gauge still holds the last one
    line = next(x for x in body.decode().splitlines() if 'xid="13"' in x)
    assert line.startswith('DCGM_EXP_XID_ERRORS_COUNT{gpu="1",UUID="GPU-')  # identity labels first, as every series
    assert line.endswith(',Hostname="golden-host",window_size_in_ms="60000",xid="13"} 1')
    stack.clock.advance(59.0)  # the first 79 (t+1) leaves the window, the others are still in it
    assert _series(stack.cycle(), "DCGM_EXP_XID_ERRORS_COUNT")["gpu=1,window_size_in_ms=60000,xid=79"] == 1
    stack.clock.advance(10.0)
    assert _series(stack.cycle(), "DCGM_EXP_XID_ERRORS_COUNT")["gpu=1,window_size_in_ms=60000"] == 0


def test_events_between_cycles_are_all_counted_once() -> None:
    """Many updates between two cycles: each sample counts once, none is lost, none is counted again."""
    stack = build_stack(2, ["static"], collectors=parse_collectors(COUNTS_CSV, "c.csv"))
    stack.cycle()
    _inject_xids(stack, 0, *([43] * 25))
    assert _series(stack.cycle(), "DCGM_EXP_XID_ERRORS_COUNT")["gpu=0,window_size_in_ms=300000,xid=43"] == 25
    assert _series(stack.cycle(), "DCGM_EXP_XID_ERRORS_COUNT")["gpu=0,window_size_in_ms=300000,xid=43"] == 25


def test_simulated_clock_events_match_the_injected_bitmasks() -> None:
    """The window's counts equal a count made independently from every stored bitmask."""
    collectors = parse_collectors(COUNTS_CSV, "c.csv")
    stack = build_stack(4, ["spike", "chaos", "degrading", "faulty"], collectors=collectors,
                        count_windows_ms={9002: 40_000})  # fmt: skip
    history: list[tuple[float, tuple[int | float | str | None, ...]]] = []
    for _ in range(60):
        stack.clock.advance(1.0)
        stack.simulator.step()
        history.append((stack.clock(), stack.engine.read_latest([112]).column(112)))
        if len(history) % 7 == 0:
            stack.cycle()  # cycles at their own pace in between
    body = stack.cycle()
    expected: dict[str, float] = {}
    for t, bitmasks in history:
        if t >= stack.clock() - 40.0:
            for gpu, mask in enumerate(bitmasks):
                assert isinstance(mask, int)
                for name in clock_event_names(mask):
                    key = f"gpu={gpu},window_size_in_ms=40000,clock_event={name}"
                    expected[key] = expected.get(key, 0) + 1
    for gpu in range(4):
        if not any(k.startswith(f"gpu={gpu},") for k in expected):
            expected[f"gpu={gpu},window_size_in_ms=40000"] = 0
    assert _series(body, "DCGM_EXP_CLOCK_EVENTS_COUNT") == expected
    assert any(v > 0 for v in expected.values())


def test_simulator_stores_an_xid_sample_only_when_an_xid_fires() -> None:
    clock = FakeClock()
    stack = build_stack(8, ["faulty"], clock=clock)
    stack.engine.watch_samples([230], max_keep_age_s=1e9)  # after start: only the steps' samples
    for _ in range(200):
        clock.advance(1.0)
        stack.simulator.step()
    samples = stack.engine.read_latest([230], samples_after=0).samples[230]
    values = [v for batch in samples for v in batch.values]
    assert values, "a faulty fleet raises XIDs in 200 steps"
    assert all(isinstance(v, int) and v > 0 for v in values)


def test_digitalocean_set_counts_with_one_engine_read_per_cycle() -> None:
    stack = build_stack(3, ["chaos"], collectors=load_collectors(collectors_preset_path("digitalocean")))
    for _ in range(5):
        stack.clock.advance(1.0)
        stack.simulator.step()
        stack.cycle()
    assert stack.engine.reads_total == 5
    body = stack.cycle().decode()
    assert "# TYPE DCGM_EXP_XID_ERRORS_COUNT gauge" in body and "# TYPE DCGM_EXP_CLOCK_EVENTS_COUNT gauge" in body
