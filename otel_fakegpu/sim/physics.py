"""Physics of one simulated GPU: turns a demand into power, temperature, clocks and counters that hang together.

Invariants kept for every shape and SKU (tests/test_sim_physics.py checks them): FB used + free + reserved =
total; energy is the integral of the reported power (piecewise constant over each step) and never
decreases; power stays at or below the power limit except during a power-brake event; temperature moves
toward the steady state of the power (first-order lag); clock-event bits are set exactly when the SM clock
is below its maximum; each *_VIOLATION counter advances by the time its reason held; running totals never
decrease; rates stay within the SKU's physical bounds; utilisations lie in 0..100, ratios in 0..1.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from otel_fakegpu.fields import Value
from otel_fakegpu.sim.board import BoardState, board_readings
from otel_fakegpu.sim.load import EngineLoad, clamp, combine
from otel_fakegpu.sim.mig import MigInstance
from otel_fakegpu.sim.placement import DeviceDemand
from otel_fakegpu.sim.profiles import Demand
from otel_fakegpu.sim.readings import activity, framebuffer, instance_readings, nvlink_bandwidth_total
from otel_fakegpu.sim.skus import GpuSku

AMBIENT_C = 28.0
THERMAL_TAU_S = 45.0
NS_PER_S = 1_000_000_000
POWER_CAP_SHARE = 0.97  # the power controller starts pulling clocks just below the limit
POWER_BRAKE_OVERSHOOT = 1.1  # an external power-brake event: the board overshoots its limit

# Clock-event reason bits (DCGM_FI_DEV_CLOCK_THROTTLE_REASONS / CLOCKS_EVENT_REASONS).
REASON_IDLE = 1
REASON_SW_POWER_CAP = 4
REASON_SW_THERMAL = 32
REASON_HW_THERMAL = 64
REASON_HW_POWER_BRAKE = 128

# Running totals (never decrease): violations in ns, ECC/remap/replay/CRC error counts. Energy (156) too.
RUNNING_TOTALS = (202, 240, 241, 242, 243, 244, 245, 310, 311, 312, 313, 393, 394, 409, 419, 429, 439)

__all__ = ["GpuConditions", "GpuPhysics", "instance_readings"]


@dataclass
class GpuConditions:
    """External conditions a scenario or the control API sets on a GPU; the defaults are a healthy GPU."""

    power_brake: bool = False  # HW power brake asserted (a PSU or rack power event)
    thermal_factor: float = 1.0  # multiplies the cooling resistance: > 1 is failing cooling
    load_override: float | None = None  # forces the scalar load (0..1), whatever the workloads do
    fabric: str = "healthy"  # NVSwitch-fabric health (sim.board.FABRIC_STATES), on boards with NVSwitches


@dataclass
class GpuPhysics:
    """Mutable state of one GPU; ``step`` advances it by ``dt`` seconds under a demand."""

    sku: GpuSku
    temp_c: float
    energy_mj: float
    counters: dict[int, int] = field(default_factory=lambda: dict.fromkeys(RUNNING_TOTALS, 0))
    conditions: GpuConditions = field(default_factory=GpuConditions)
    last_xid: int = 0
    xid_reported: bool = False  # whether field 230 has been stored at all yet
    load: float = 0.0  # the scalar load of the last step, a load override included
    # Made by __post_init__ from the state above (not defaults made and then replaced: 4096 GPUs start at once).
    _fixed: dict[int, Value | None] = field(init=False, repr=False)  # readings that never change
    board: BoardState = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sku = self.sku
        # The raw-power noise stream's seed: from the GPU's own starting state, so reproducible under --seed.
        self.board = BoardState(int(self.energy_mj * 1000) ^ int(self.temp_c * 1e6))
        self._fixed = {101: sku.mem_clock_mhz, 158: sku.slowdown_temp_c, 159: sku.shutdown_c, 390: 0, 391: 0, 392: 0}
        self._fixed[526] = 0

    @classmethod
    def start(cls, sku: GpuSku, first: Demand, uptime_s: float) -> GpuPhysics:
        """A GPU already at thermal equilibrium for its first demand, with ``uptime_s`` of idle energy."""
        power = power_w(sku, first.load)
        temp = AMBIENT_C + sku.thermal_c_per_w * first.thermal_factor * power
        return cls(sku=sku, temp_c=temp, energy_mj=sku.idle_w * uptime_s * 1000.0)

    def step(self, demand: Demand, dt: float, rng: random.Random) -> dict[int, Value | None]:
        """Advance by ``dt`` seconds and return every simulated field's reading."""
        sku, cond = self.sku, self.conditions
        load = clamp(cond.load_override) if cond.load_override is not None else demand.load
        engines = demand.engine_load() if cond.load_override is None else EngineLoad.from_scalar(load)
        self.load = load
        power = power_w(sku, load)
        if cond.power_brake:
            power *= POWER_BRAKE_OVERSHOOT
        power = round(power, 3)
        self.energy_mj += power * dt * 1000.0
        target = AMBIENT_C + sku.thermal_c_per_w * demand.thermal_factor * cond.thermal_factor * power
        self.temp_c += (target - self.temp_c) * (1.0 - math.exp(-dt / THERMAL_TAU_S))
        sm_clock, reasons = self._clocks(load, power)
        self._accumulate(demand, reasons, dt, rng)
        xid = demand.xid
        readings = activity(sku, engines)
        tx, rx = readings[1011], readings[1012]
        readings.update(self._fixed)
        readings[100] = sm_clock
        readings[112] = reasons
        readings[140] = round(self.temp_c + 4.0 + 3.0 * load)
        readings[150] = round(self.temp_c)
        readings[155] = power
        readings[156] = math.floor(self.energy_mj)
        readings[190] = 8 if load < 0.02 else 0
        readings[191] = sku.fan.percent(self.temp_c) if sku.fan is not None else None
        readings[395] = 1 if self.counters[393] > 8 else 0
        readings[396] = 1 if self.counters[393] > 0 else 0
        readings[449] = nvlink_bandwidth_total(float(tx or 0), float(rx or 0)) if sku.nvlink_links else None
        if xid is not None or not self.xid_reported:
            # An event field: stored when an XID happens (and once, as 0, at start), like DCGM does, so every
            # stored sample is one XID for DCGM_EXP_XID_ERRORS_COUNT.
            readings[230] = self.last_xid
            self.xid_reported = True
        readings.update(self.counters)
        usable = sku.fb_total_mib - sku.fb_reserved_mib
        readings.update(framebuffer(sku.fb_total_mib, sku.fb_reserved_mib, round(usable * clamp(demand.memory))))
        self.board.advance_cycles(readings, sku, sm_clock, dt)
        readings.update(board_readings(self.board, sku, power, cond.fabric))
        if demand.glitches:
            readings.update(demand.glitches)
        for fid in demand.blanks:
            readings[fid] = None
        return readings

    def step_mig(
        self, instances: Sequence[tuple[MigInstance, DeviceDemand]], dt: float, rng: random.Random
    ) -> dict[int, Value | None]:
        """A MIG-enabled GPU: its load is the instances' loads weighted by their share of the SMs."""
        loads = [demand.engines.scaled(inst.compute_fraction) for inst, demand in instances]
        engines = combine(loads) or EngineLoad(sm=0.0, tensor=0.0)
        usable = self.sku.fb_total_mib - self.sku.fb_reserved_mib
        used = sum(demand.fb_used_mib for _, demand in instances)
        xids = [demand.xid for _, demand in instances if demand.xid is not None]
        demand = Demand(
            load=engines.busy,
            memory=clamp(used / usable),
            errors_per_hour=sum(d.errors_per_hour for _, d in instances),
            xid=xids[-1] if xids else None,
            engines=engines,
        )
        return self.step(demand, dt, rng)

    def _clocks(self, load: float, power: float) -> tuple[int, int]:
        """SM clock and reason bits: a bit is set exactly when it holds the clock below its maximum."""
        sku = self.sku
        if self.conditions.power_brake:
            return round(sku.sm_clock_max_mhz * 0.5), REASON_HW_POWER_BRAKE
        if load < 0.02:
            return sku.sm_clock_idle_mhz, REASON_IDLE
        clock, reasons = float(sku.sm_clock_max_mhz), 0
        if power >= sku.tdp_w * POWER_CAP_SHARE:
            reasons |= REASON_SW_POWER_CAP
            clock *= 0.93
        over = self.temp_c - sku.slowdown_temp_c
        if over >= 0:
            reasons |= REASON_SW_THERMAL | (REASON_HW_THERMAL if over >= 5 else 0)
            clock *= max(0.5, 1.0 - 0.04 * (over + 1.0))
        return min(sku.sm_clock_max_mhz - 1, round(clock)) if reasons else sku.sm_clock_max_mhz, reasons

    def _accumulate(self, demand: Demand, reasons: int, dt: float, rng: random.Random) -> None:
        c = self.counters
        ns = round(dt * NS_PER_S)
        if reasons & (REASON_SW_POWER_CAP | REASON_HW_POWER_BRAKE):
            c[240] += ns
        if reasons & (REASON_SW_THERMAL | REASON_HW_THERMAL):
            c[241] += ns
        if reasons & REASON_IDLE:
            c[244] += ns
        events = _poisson(rng, demand.errors_per_hour * dt / 3600.0)
        if events:
            c[310] += events
            c[312] += events
            c[202] += rng.randint(0, events)
            c[394] += sum(1 for _ in range(events) if rng.random() < 0.2)
            if self.sku.nvlink_links:
                c[409] += sum(1 for _ in range(events) if rng.random() < 0.1)
            if rng.random() < 0.02 * events:
                c[311] += 1
                c[313] += 1
                c[393] += 1
        if demand.xid is not None:
            self.last_xid = demand.xid


def power_w(sku: GpuSku, load: float) -> float:
    """Board power at scalar ``load``: idle power plus a slightly concave share of the headroom to the limit."""
    return sku.idle_w + (sku.tdp_w - sku.idle_w) * math.pow(clamp(load), 0.9)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; ``mean`` here is small)."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-min(mean, 30.0)), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
