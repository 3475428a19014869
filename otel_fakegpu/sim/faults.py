"""Faults of one simulated GPU: what events did to it, and how that bends its demand and readings.

Counters jump when the event happens (ECC, retired pages, NVLink CRC, PCIe replays), so they never
decrease. Lasting conditions (thermal runaway, power brake, a load override, being off the bus) shape each
update until ``recover``. An XID is stored in field 230 in the update after the event, as DCGM stores one
sample per XID; one XID per GPU per update, more wait for the following updates.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field

from otel_fakegpu.fields import Value
from otel_fakegpu.sim.events import GpuEvent
from otel_fakegpu.sim.physics import GpuPhysics
from otel_fakegpu.sim.profiles import Demand

XID_FIELD = 230
XID_FALLEN_OFF_BUS = 79  # what the driver logs when a GPU falls off the bus
# Clock-event bits a power brake sets (HW slowdown, HW power brake slowdown).
REASON_HW_SLOWDOWN = 0x08
REASON_HW_POWER_BRAKE = 0x80
POWER_VIOLATION_FIELD = 240
# Cooling loss over scenario time: the thermal factor grows by this much per second, up to the cap.
RUNAWAY_GROWTH_PER_S = 1.0 / 300.0
RUNAWAY_MAX_EXTRA = 1.5
NS_PER_S = 1_000_000_000
# Counter fields each burst adds to: ECC volatile + aggregate, NVLink CRC flit, PCIe replays.
_BURST_FIELDS = {
    ("ecc", "sbe"): (310, 312),
    ("ecc", "dbe"): (311, 313),
    ("nvlink_crc", ""): (409,),
    ("pcie_replay", ""): (202,),
}


@dataclass
class GpuFaults:
    """Mutable fault state of one GPU; changed only under the simulator's lock."""

    off_bus: bool = False
    thermal_runaway_since: float | None = None
    power_brake: bool = False
    load_override: float | None = None
    remap_pending: bool = False
    remap_failure: bool = False
    retired: dict[str, int] = field(default_factory=lambda: {"sbe": 0, "dbe": 0, "pending": 0})
    pending_xids: deque[int] = field(default_factory=deque)
    clear_xid: bool = False  # after a recovery: store 0 once, the value of a freshly reset GPU

    def apply(self, event: GpuEvent, physics: GpuPhysics, t: float) -> None:
        """Take the event in at scenario time ``t``; counters jump now, readings follow at the next update."""
        kind = event.kind
        if kind == "xid":
            self.pending_xids.append(event.code)
        elif kind in ("nvlink_crc", "pcie_replay"):
            for fid in _BURST_FIELDS[(kind, "")]:
                physics.counters[fid] += event.code
        elif kind == "ecc":
            for name, count in event.counts:
                for fid in _BURST_FIELDS[(kind, name)]:
                    physics.counters[fid] += count
        elif kind == "retired_pages":
            for name, count in event.counts:
                self.retired[name] += count
        elif kind == "row_remap":
            self.remap_pending = True
            self.remap_failure = self.remap_failure or event.name == "failure"
            physics.counters[393] += 1
        elif kind == "load":
            self.load_override = event.load
        else:
            self._fault(event.name, physics, t)

    def _fault(self, name: str, physics: GpuPhysics, t: float) -> None:
        if name == "fall_off_bus":
            if not self.off_bus:
                self.pending_xids.append(XID_FALLEN_OFF_BUS)
            self.off_bus = True
        elif name == "thermal_runaway":
            self.thermal_runaway_since = t if self.thermal_runaway_since is None else self.thermal_runaway_since
        elif name == "power_brake":
            self.power_brake = True
        else:  # recover: a GPU reset clears every lasting condition; retirement and remapping take effect
            was_off = self.off_bus
            self.off_bus = self.power_brake = False
            self.thermal_runaway_since = self.load_override = None
            self.remap_pending = False
            self.retired["dbe"] += self.retired["pending"]
            self.retired["pending"] = 0
            if was_off:
                self.pending_xids.clear()
                physics.last_xid = 0
                self.clear_xid = True

    def shape_demand(self, demand: Demand, t: float) -> Demand:
        """The profile's (or workload's) demand as the faults leave it."""
        changes: dict[str, object] = {}
        if self.load_override is not None:
            changes["load"] = self.load_override
        if self.thermal_runaway_since is not None:
            extra = min(RUNAWAY_MAX_EXTRA, (t - self.thermal_runaway_since) * RUNAWAY_GROWTH_PER_S)
            changes["thermal_factor"] = demand.thermal_factor * (1.0 + extra)
        if self.pending_xids:
            changes["xid"] = self.pending_xids.popleft()
        return dataclasses.replace(demand, **changes) if changes else demand  # type: ignore[arg-type]

    def shape_readings(self, readings: dict[int, Value | None], physics: GpuPhysics, dt: float) -> None:
        """Overwrite what the faults change in one update's readings (in place)."""
        if self.clear_xid:
            readings[XID_FIELD] = 0
            self.clear_xid = False
        readings[390] = self.retired["sbe"]
        readings[391] = self.retired["dbe"]
        readings[392] = self.retired["pending"]
        if self.remap_pending:
            readings[396] = 1
        if self.remap_failure:
            readings[395] = 1
        if self.power_brake:
            self._brake(readings, physics, dt)
        if self.off_bus:
            # A GPU off the bus answers nothing: every reading blank (no series), the XID of the fall excepted.
            xid = readings.get(XID_FIELD)
            for fid in readings:
                readings[fid] = None
            readings[XID_FIELD] = xid if xid == XID_FALLEN_OFF_BUS else None

    def _brake(self, readings: dict[int, Value | None], physics: GpuPhysics, dt: float) -> None:
        reasons = readings.get(112)
        reasons = reasons if type(reasons) is int else 0
        if not reasons & 0x04:  # the power cap's time is already counted as power violation
            physics.counters[POWER_VIOLATION_FIELD] += round(dt * NS_PER_S)
            readings[POWER_VIOLATION_FIELD] = physics.counters[POWER_VIOLATION_FIELD]
        readings[112] = reasons | REASON_HW_SLOWDOWN | REASON_HW_POWER_BRAKE
        clock = readings.get(100)
        if type(clock) is int:
            readings[100] = max(physics.sku.sm_clock_idle_mhz, clock // 2)

    def state(self) -> dict[str, object]:
        """JSON-able view for the control API."""
        return {
            "off_bus": self.off_bus,
            "thermal_runaway": self.thermal_runaway_since is not None,
            "power_brake": self.power_brake,
            "load_override": self.load_override,
            "row_remap_pending": self.remap_pending,
            "row_remap_failure": self.remap_failure,
            "retired_pages": dict(self.retired),
            "pending_xids": list(self.pending_xids),
        }
