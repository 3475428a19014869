"""Simulated HGX NVSwitches: topology per SKU, entities in the engine beside the GPUs, readings that move."""

from __future__ import annotations

import pytest

from otel_fakegpu.engine import link_entity_id, link_parts
from otel_fakegpu.fields import parse_collectors
from otel_fakegpu.sim import SKUS
from otel_fakegpu.sim.events import parse_event
from otel_fakegpu.sim.nvswitch import build_switches
from tests.conftest import Stack, build_stack


def test_hgx_topologies() -> None:
    h100 = build_switches([SKUS["h100-sxm"]] * 8)
    assert [len(s.link_ids) for s in h100] == [40, 32, 32, 40]  # 18 links per GPU over 4 switches
    a100 = build_switches([SKUS["a100-80gb"]] * 16)  # two boards of six switches
    assert [s.entity_id for s in a100] == list(range(12)) and {len(s.link_ids) for s in a100} == {16}
    assert a100[6].gpu_indexes == tuple(range(8, 16))
    partial = build_switches([SKUS["h100-sxm"]] * 3)  # a partly populated board: only links to present GPUs are up
    assert [len(s.link_ids) for s in partial] == [15, 12, 12, 15]


def test_link_ids_pack_switch_and_port() -> None:
    assert link_parts(link_entity_id(5, 39)) == (5, 39)


SWITCH_FIELDS = parse_collectors(
    "DCGM_FI_DEV_GPU_TEMP, gauge, t.\nDCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT, gauge, s.\n", "switches.csv"
)


def test_switches_are_made_only_once_a_pipeline_reads_a_switch_field() -> None:
    """As a hostengine samples only watched fields: the default set reads none, and a reload that adds one gets the
    boards' switches at once, for its first cycle."""
    stack = build_stack(8, ["stable"])  # the default field set: no switch field
    assert not stack.engine.read_latest([858, 870]).groups
    before = stack.engine.read_latest([150]).column(150)
    stack.host.new_pipeline(SWITCH_FIELDS, stack.pipeline)  # what a reload does
    read = stack.engine.read_latest([150, 858, 870])
    assert read.groups["switch"].entity_ids == (0, 1, 2, 3) and set(read.groups["link"].column(870)) == {2}
    assert all(38 <= t <= 55 for t in read.groups["switch"].column(858))  # type: ignore[operator]
    assert read.column(150) == before  # no GPU moved: the switches take no reading of theirs
    stack.host.new_pipeline(SWITCH_FIELDS, stack.pipeline)  # a second watch makes nothing twice
    assert len(stack.engine.read_latest([870]).groups["link"].entity_ids) == 144


def test_switch_entities_are_read_in_the_same_batch_and_move_with_load() -> None:
    stack = build_stack(8, ["stable"], collectors=SWITCH_FIELDS)
    first = stack.engine.read_latest([150, 858, 861, 870])
    assert len(first.entity_ids) == 8 and first.column(858) == (None,) * 8  # GPU columns untouched
    switches, links = first.groups["switch"], first.groups["link"]
    assert switches.entity_ids == (0, 1, 2, 3) and len(links.entity_ids) == 144
    assert set(links.column(870)) == {2}
    stack.clock.advance(30)
    stack.simulator.step()
    later = stack.engine.read_latest([858, 861]).groups["switch"]
    assert all(b > a for a, b in zip(switches.column(861), later.column(861), strict=True))  # type: ignore[operator]
    assert all(38 <= t <= 55 for t in later.column(858))  # type: ignore[operator]


def _switch_tx_delta(stack: Stack) -> list[int]:
    before = stack.engine.read_latest([861]).groups["switch"].column(861)
    stack.clock.advance(30)
    stack.simulator.step()
    after = stack.engine.read_latest([861]).groups["switch"].column(861)
    return [int(b) - int(a) for a, b in zip(before, after, strict=True)]  # type: ignore[arg-type]


def test_switch_traffic_is_what_the_board_gpus_send_over_nvlink() -> None:
    stack = build_stack(8, ["stable"], collectors=SWITCH_FIELDS)
    for index in range(8):
        stack.simulator.apply_event(index, parse_event({"fault": "fall_off_bus"}))
    stack.simulator.step()
    assert _switch_tx_delta(stack) == [0, 0, 0, 0]  # a board off the bus moves nothing through its switches
    for index in range(8):
        stack.simulator.apply_event(index, parse_event({"fault": "recover"}))
        stack.simulator.apply_event(index, parse_event({"load": 0.0}))
    stack.simulator.step()
    assert _switch_tx_delta(stack) == [0, 0, 0, 0]  # a load override of 0 idles the links too
    for index in range(8):
        stack.simulator.apply_event(index, parse_event({"load": 1.0}))
    stack.simulator.step()
    sent = sum(stack.engine.read_latest([1011]).column(1011))  # type: ignore[arg-type]
    moved = sum(_switch_tx_delta(stack))
    assert moved == pytest.approx(sent * 30 / 1024, rel=0.01)  # the switches carry what the GPUs report sending
