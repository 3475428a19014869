"""Physics of one simulated GPU: turns a profile's demand into readings that hang together.

Invariants kept for every profile: FB used + free + reserved = total; energy is the integral of the
reported power (piecewise constant over each step) and never decreases; utilisations lie in 0..100;
profiling ratios in 0..1; counters never decrease.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from otel_fakegpu.fields import Value
from otel_fakegpu.sim.profiles import Demand
from otel_fakegpu.sim.skus import GpuSku

AMBIENT_C = 28.0
THERMAL_TAU_S = 45.0
NS_PER_S = 1_000_000_000

# Clock-event reason bits (DCGM_FI_DEV_CLOCK_THROTTLE_REASONS).
REASON_IDLE = 1
REASON_SW_POWER_CAP = 4
REASON_SW_THERMAL = 32
REASON_HW_THERMAL = 64

# Counter fields kept as running totals.
_COUNTERS = (202, 240, 241, 242, 243, 244, 245, 310, 311, 312, 313, 393, 394, 409, 419, 429, 439, 449)


@dataclass
class GpuPhysics:
    """Mutable state of one GPU; ``step`` advances it by ``dt`` seconds under a demand."""

    sku: GpuSku
    temp_c: float
    energy_mj: float
    counters: dict[int, int] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))
    last_xid: int = 0
    xid_reported: bool = False  # whether field 230 has been stored at all yet

    @classmethod
    def start(cls, sku: GpuSku, first: Demand, uptime_s: float) -> GpuPhysics:
        """A GPU already at thermal equilibrium for its first demand, with ``uptime_s`` of idle energy."""
        power = _power_w(sku, first.load)
        temp = AMBIENT_C + sku.thermal_c_per_w * first.thermal_factor * power
        return cls(sku=sku, temp_c=temp, energy_mj=sku.idle_w * uptime_s * 1000.0)

    def step(self, demand: Demand, dt: float, rng: random.Random) -> dict[int, Value | None]:
        """Advance by ``dt`` seconds and return every simulated field's reading."""
        sku = self.sku
        power = round(_power_w(sku, demand.load), 3)
        self.energy_mj += power * dt * 1000.0
        target = AMBIENT_C + sku.thermal_c_per_w * demand.thermal_factor * power
        self.temp_c += (target - self.temp_c) * (1.0 - math.exp(-dt / THERMAL_TAU_S))
        sm_clock, reasons = self._clocks(demand.load, power)
        self._accumulate(demand, reasons, dt, rng)

        readings: dict[int, Value | None] = {
            100: sm_clock,
            101: sku.mem_clock_mhz,
            112: reasons,
            140: round(self.temp_c + 4.0 + 3.0 * demand.load),
            150: round(self.temp_c),
            158: sku.slowdown_temp_c,
            159: sku.slowdown_temp_c + 5,
            190: 8 if demand.load < 0.02 else 0,
            191: None,  # SXM modules have no fan of their own: DCGM reports the field as not supported
            155: power,
            156: math.floor(self.energy_mj),
            203: round(100 * demand.load),
            206: round(100 * demand.media),
            207: round(100 * demand.media * 0.8),
            392: 0,
            390: 0,
            391: 0,
            395: 1 if self.counters[393] > 8 else 0,
            396: 1 if self.counters[393] > 0 else 0,
            526: 0,
        }
        if demand.xid is not None or not self.xid_reported:
            # An event field: stored when an XID happens (and once, as 0, at start), like DCGM does, so every
            # stored sample is one XID for DCGM_EXP_XID_ERRORS_COUNT.
            readings[230] = self.last_xid
            self.xid_reported = True
        readings.update({fid: total for fid, total in self.counters.items()})
        readings.update(_framebuffer(sku, demand.memory))
        readings.update(_activity(sku, demand.load, demand.memory))
        readings[204] = round(100 * float(readings[1005] or 0.0) * 0.9)
        readings.update(demand.glitches)
        for fid in demand.blanks:
            readings[fid] = None
        return readings

    def _clocks(self, load: float, power: float) -> tuple[int, int]:
        sku = self.sku
        if load < 0.02:
            return sku.sm_clock_idle_mhz, REASON_IDLE
        clock, reasons = float(sku.sm_clock_max_mhz), 0
        if power >= sku.tdp_w * 0.97:
            reasons |= REASON_SW_POWER_CAP
            clock *= 0.93
        over = self.temp_c - sku.slowdown_temp_c
        if over >= 0:
            reasons |= REASON_SW_THERMAL | (REASON_HW_THERMAL if over >= 5 else 0)
            clock *= max(0.5, 1.0 - 0.04 * (over + 1.0))
        return round(clock), reasons

    def _accumulate(self, demand: Demand, reasons: int, dt: float, rng: random.Random) -> None:
        c = self.counters
        ns = round(dt * NS_PER_S)
        if reasons & REASON_SW_POWER_CAP:
            c[240] += ns
        if reasons & (REASON_SW_THERMAL | REASON_HW_THERMAL):
            c[241] += ns
        if reasons & REASON_IDLE:
            c[244] += ns
        nvlink_rate = sku_nvlink_rate(self.sku, demand.load)
        c[449] += round(2 * nvlink_rate * dt / 1024)  # KiB moved in both directions
        events = _poisson(rng, demand.errors_per_hour * dt / 3600.0)
        if events:
            c[310] += events
            c[312] += events
            c[202] += rng.randint(0, events)
            c[394] += sum(1 for _ in range(events) if rng.random() < 0.2)
            c[409] += sum(1 for _ in range(events) if rng.random() < 0.1)
            if rng.random() < 0.02 * events:
                c[311] += 1
                c[313] += 1
                c[393] += 1
        if demand.xid is not None:
            self.last_xid = demand.xid


def _power_w(sku: GpuSku, load: float) -> float:
    return sku.idle_w + (sku.tdp_w - sku.idle_w) * math.pow(load, 0.9)


def sku_nvlink_rate(sku: GpuSku, load: float) -> int:
    """NVLink bytes per second in one direction at ``load``."""
    return round(sku.nvlink_bytes_per_s / 2 * 0.4 * load)


def _framebuffer(sku: GpuSku, memory: float) -> dict[int, Value | None]:
    usable = sku.fb_total_mib - sku.fb_reserved_mib
    used = round(usable * min(1.0, max(0.0, memory)))
    return {
        250: sku.fb_total_mib,
        251: usable - used,
        252: used,
        253: sku.fb_reserved_mib,
        254: round(used / usable, 6),
    }


def _activity(sku: GpuSku, load: float, memory: float) -> dict[int, Value | None]:
    gr = min(1.0, load * 0.98)
    dram = min(1.0, gr * 0.5 + memory * 0.05)
    nvlink = sku_nvlink_rate(sku, load)
    return {
        1001: round(gr, 6),
        1002: round(gr * 0.9, 6),
        1003: round(gr * 0.9 * 0.55, 6),
        1004: round(gr * 0.45, 6),
        1005: round(dram, 6),
        1006: round(gr * 0.02, 6),
        1007: round(gr * 0.25, 6),
        1008: round(gr * 0.2, 6),
        1009: round(sku.pcie_bytes_per_s * (0.02 + 0.25 * load)),
        1010: round(sku.pcie_bytes_per_s * (0.03 + 0.3 * load)),
        1011: nvlink,
        1012: nvlink,
    }


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; ``mean`` here is small)."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-min(mean, 30.0)), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
