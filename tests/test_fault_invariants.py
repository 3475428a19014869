"""Faults bend the physics without breaking its laws: a GPU through ECC bursts, replays, CRC errors, XIDs,
a thermal runaway, a degraded then unhealthy NVSwitch fabric and a power brake, each recovered, passes the invariant checker on every SKU."""

from __future__ import annotations

import random

import pytest

from otel_fakegpu.sim import SKUS, Demand, GpuPhysics, GpuSku, Workload
from otel_fakegpu.sim.events import parse_event
from otel_fakegpu.sim.faults import GpuFaults
from otel_fakegpu.sim.physics import AMBIENT_C
from otel_fakegpu.sim.placement import PlacedWorkload, as_demand, device_demand
from tests.physics_checker import Run, check_run

STEP_S = 30.0
UPDATES = 3000
EVENTS: dict[int, dict[str, object]] = {
    100: {"ecc": {"sbe": 12, "dbe": 1}},
    150: {"xid": 48},
    200: {"pcie_replay": 40},
    300: {"nvlink_crc": 7},
    400: {"row_remap": "pending"},
    500: {"fault": "thermal_runaway"},
    600: {"fabric": "degraded"},
    900: {"fabric": "unhealthy"},
    1500: {"fault": "recover"},
    2000: {"fault": "power_brake"},
    2300: {"fault": "recover"},
    2500: {"load": 1.0},
    2700: {"load": None},
    2800: {"retired_pages": {"sbe": 2, "pending": 1}},
}


def _faulted_run(sku: GpuSku) -> tuple[Run, list[int]]:
    placed = PlacedWorkload.create(Workload("p", "ns", "c", gpus=(0,), shape="training"), 3)
    rng = random.Random(3)
    physics = GpuPhysics.start(sku, Demand(load=0.5, memory=0.5), 3600.0)
    faults = GpuFaults()
    run = Run(sku, STEP_S, [], [], [], [], [], [])
    xids = []
    for step in range(UPDATES):
        t = step * STEP_S
        if step in EVENTS:
            faults.apply(parse_event(EVENTS[step]), physics, t)
        faults.prepare(physics, t)
        demand = as_demand(device_demand([placed], t, 80_000), 80_000)
        run.temp_before.append(physics.temp_c)
        readings = physics.step(demand, STEP_S, rng)
        faults.shape_readings(readings, physics)
        run.readings.append(readings)
        run.temp_after.append(physics.temp_c)
        factor = demand.thermal_factor * physics.conditions.thermal_factor
        run.target.append(AMBIENT_C + sku.thermal_c_per_w * factor * readings[155])  # type: ignore[operator]
        run.glitched.append(frozenset())
        run.brake.append(physics.conditions.power_brake)
        run.fabric.append(physics.conditions.fabric)
        if readings.get(230):
            xids.append(step)
    return run, xids


@pytest.mark.parametrize("sku", SKUS.values(), ids=lambda sku: sku.key)
def test_faults_keep_the_laws(sku: GpuSku) -> None:
    run, xids = _faulted_run(sku)
    reasons = check_run(run)
    assert xids == [150]
    assert any(r & 128 for r in reasons)  # the power brake was flagged
    hot = [int(r[150] or 0) for r in run.readings[500:1500]]
    assert max(hot) >= sku.slowdown_temp_c, (sku.key, max(hot))  # the runaway reaches the slowdown temperature
    assert run.readings[-1][311] == run.readings[99][311] + 1  # type: ignore[operator]
    assert run.readings[-1][390] == 2 and run.readings[-1][392] == 1
    fabric = [run.readings[step][175] for step in (599, 600, 900, 1500)]
    assert fabric == ([1, 3, 2, 1] if sku.nvswitch_links else [None] * 4), sku.key  # recover heals the fabric
