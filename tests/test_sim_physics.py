"""Every shape on every SKU for 10,000 updates through the simulator's own placement and physics, checked
by the invariant checker (tests/physics_checker.py); then the same laws through the engine, with MIG."""

from __future__ import annotations

import random

import pytest

from otel_fakegpu.sim import SHAPE_NAMES, SKUS, GpuSku, MigRef, Workload
from otel_fakegpu.sim.physics import AMBIENT_C, GpuPhysics, power_w
from otel_fakegpu.sim.placement import PlacedWorkload, as_demand, device_demand
from otel_fakegpu.sim.profiles import Demand
from tests.conftest import build_stack
from tests.physics_checker import Run, check_run

UPDATES = 10_000
STEP_S = 30.0  # 10,000 updates cover 83 hours: training checkpoints, degrading wear-out, diurnal inference


def _demands(shape: str, seed: int) -> list[Demand]:
    """A shape's demand at every update. It does not depend on the SKU, so every SKU replays the same list."""
    placed = PlacedWorkload.create(Workload("p", "ns", "c", gpus=(0,), shape=shape), seed)
    if shape in ("faulty", "degrading", "chaos"):
        # Profiles speak their own vocabulary (blanks, glitches, failing cooling): take it as they give it.
        return [placed.demand(step * STEP_S) for step in range(UPDATES)]
    usable = 80_000
    return [as_demand(device_demand([placed], step * STEP_S, usable), usable) for step in range(UPDATES)]


def _run(sku: GpuSku, demands: list[Demand], seed: int) -> Run:
    rng = random.Random(seed)
    physics = GpuPhysics.start(sku, Demand(load=0.5, memory=0.5), 3600.0)
    run = Run(sku, STEP_S, [], [], [], [], [], [])
    c_per_w = sku.thermal_c_per_w
    for demand in demands:
        run.temp_before.append(physics.temp_c)
        readings = physics.step(demand, STEP_S, rng)
        run.readings.append(readings)
        run.temp_after.append(physics.temp_c)
        run.target.append(AMBIENT_C + c_per_w * demand.thermal_factor * readings[155])  # type: ignore[operator]
        run.glitched.append(frozenset(demand.glitches) | demand.blanks if demand.glitches or demand.blanks else _NONE)
        run.brake.append(False)
    return run


_NONE: frozenset[int] = frozenset()


@pytest.mark.slow  # 10,000 updates on every SKU: 12-40 s a shape on the shared 2-core machine
@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_every_shape_keeps_the_laws_on_every_sku_for_10000_updates(shape: str) -> None:
    seed = SHAPE_NAMES.index(shape)
    demands = _demands(shape, seed)
    for sku in SKUS.values():
        reasons = check_run(_run(sku, demands, seed))
        if shape == "idle":
            assert reasons == {1}, sku.key  # idle clocks, nothing else
        if shape == "training":
            assert 0 in reasons and any(r & 4 for r in reasons), sku.key  # runs into the power cap at times
        if shape == "degrading":
            assert any(r & 32 for r in reasons), sku.key  # cooling wore out: the slowdown temperature was reached


def test_power_brake_lifts_power_over_the_limit_and_is_flagged() -> None:
    sku = SKUS["h100-sxm"]
    physics = GpuPhysics.start(sku, Demand(load=1.0, memory=0.5), 0.0)
    physics.conditions.power_brake = True
    readings = physics.step(Demand(load=1.0, memory=0.5), 10.0, random.Random(0))
    assert isinstance(readings[155], float) and readings[155] > sku.tdp_w
    assert readings[112] == 128 and readings[100] < sku.sm_clock_max_mhz  # type: ignore[operator]
    assert power_w(sku, 1.0) == pytest.approx(sku.tdp_w)


def test_fan_follows_temperature_only_on_actively_cooled_boards() -> None:
    fan_skus = [key for key, sku in SKUS.items() if sku.fan is not None]
    assert fan_skus == ["rtx6000-ada"]
    sku = SKUS["rtx6000-ada"]
    physics = GpuPhysics.start(sku, Demand(load=0.0, memory=0.1), 0.0)
    idle = physics.step(Demand(load=0.0, memory=0.1), 30.0, random.Random(0))[191]
    for _ in range(40):
        busy = physics.step(Demand(load=1.0, memory=0.5), 30.0, random.Random(0))[191]
    assert isinstance(idle, int) and isinstance(busy, int) and idle < busy <= 100


def test_mig_instances_stay_consistent_with_their_parent_through_the_engine() -> None:
    stack = build_stack(2, ["static"], seed=3, skus=("a100-80gb", "h100-sxm"), mig="0:1g.10gb*7,1:3g.40gb*2")
    sim = stack.simulator
    for gi, shape in zip(range(7, 14), SHAPE_NAMES, strict=False):
        sim.add_workload(Workload(f"p{gi}", "ns", "c", instances=(MigRef(0, gi),), shape=shape))
    sim.add_workload(Workload("t", "ns", "c", instances=(MigRef(1, 1),), shape="training"))
    fields = (155, 156, 250, 251, 252, 253, 1002, 1004, 1014, 203)
    for _ in range(500):
        stack.clock.advance(STEP_S)
        sim.step()
        snap = stack.engine.read_latest(fields)
        by_parent: dict[int, list[int]] = {}
        for i, entity in enumerate(snap.entity_ids):
            inst = snap.instances[entity]
            by_parent.setdefault(inst.parent, []).append(i)
            total, free, used = (snap.column(f)[i] for f in (250, 251, 252))
            assert isinstance(total, int) and isinstance(free, int) and isinstance(used, int)
            assert free + used == total and used >= 0
            assert snap.column(203)[i] is None  # GPU_UTIL is not available under MIG
            sm, tensor, hmma = (snap.column(f)[i] for f in (1002, 1004, 1014))
            assert isinstance(sm, float) and isinstance(tensor, float) and isinstance(hmma, float)
            assert 0.0 <= hmma <= tensor <= sm <= 1.0
        for parent, rows in by_parent.items():
            sku = sim.gpus[parent].identity.sku
            assert sum(int(snap.column(250)[i] or 0) for i in rows) <= sku.fb_total_mib
            for field_id in (155, 156):  # GPU-scoped fields read the parent's value on every instance
                assert len({snap.column(field_id)[i] for i in rows}) == 1


def test_power_brake_events_within_a_checked_run() -> None:
    """Power may exceed the limit only while a brake is asserted, and then clocks are braked and flagged."""
    sku = SKUS["b200"]
    demands = _demands("training", 1)[:2000]
    rng = random.Random(1)
    physics = GpuPhysics.start(sku, Demand(load=0.5, memory=0.5), 0.0)
    run = Run(sku, STEP_S, [], [], [], [], [], [])
    for step, demand in enumerate(demands):
        physics.conditions.power_brake = (step // 100) % 5 == 4
        run.temp_before.append(physics.temp_c)
        readings = physics.step(demand, STEP_S, rng)
        run.readings.append(readings)
        run.temp_after.append(physics.temp_c)
        run.target.append(AMBIENT_C + sku.thermal_c_per_w * readings[155])  # type: ignore[operator]
        run.glitched.append(_NONE)
        run.brake.append(physics.conditions.power_brake)
    reasons = check_run(run)
    assert 128 in reasons
    assert any(float(r[155] or 0) > sku.tdp_w for r in run.readings)
