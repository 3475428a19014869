"""Faults of one simulated GPU: what events did to it, and how that bends its physics and readings.

Counters jump when the event happens (ECC, retired pages, NVLink CRC, PCIe replays), so they never
decrease. Lasting conditions (thermal runaway, power brake, a load override) are the physics' own
``GpuConditions``; being off the bus blanks every reading. All last until ``recover``. An XID is stored in
field 230 by the next update (one sample per XID, as DCGM stores them); one XID per GPU per update, more
wait for the following updates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from otel_fakegpu.fields import Value
from otel_fakegpu.sim.events import GpuEvent
from otel_fakegpu.sim.physics import AMBIENT_C, GpuPhysics

XID_FIELD = 230
XID_FALLEN_OFF_BUS = 79  # what the driver logs when a GPU falls off the bus
XID_NVLINK_ERROR = 74  # what the driver logs when NVLink fails
FABRIC_CRC_BURST = 1000  # CRC flit errors a failing fabric adds to each GPU's counters
NVLINK_THROUGHPUT_FIELDS = (449, 1011, 1012)  # zero while the fabric is down
# Counters that live in the InfoROM and survive a power cycle (aggregate ECC, row remaps); the others restart.
AGGREGATE_COUNTERS = (312, 313, 393, 394)
# Lasting conditions an undo can put back as they were: the event's key and its fault name.
UNDOABLE = ("fall_off_bus", "thermal_runaway", "power_brake", "load", "fabric")
# Cooling loss over scenario time: the thermal factor grows by this much per second, up to the cap.
RUNAWAY_GROWTH_PER_S = 1.0 / 300.0
RUNAWAY_MAX_EXTRA = 0.8  # enough to pass the slowdown temperature of a loaded GPU
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
    remap_pending: bool = False
    remap_failure: bool = False
    retired: dict[str, int] = field(default_factory=lambda: {"sbe": 0, "dbe": 0, "pending": 0})
    pending_xids: deque[int] = field(default_factory=deque)
    clear_xid: bool = False  # after a recovery: store 0 once, the value of a freshly reset GPU
    fabric_down: bool = False  # its HGX board's NVLink fabric failed: no NVLink traffic
    powered_off: bool = False  # its host has no power: no reading at all

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
            physics.conditions.load_override = event.load
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
            physics.conditions.power_brake = True
        else:  # recover: a GPU reset clears every lasting condition; retirement and remapping take effect
            was_off = self.off_bus
            self.off_bus = self.fabric_down = physics.conditions.power_brake = False
            self.thermal_runaway_since = physics.conditions.load_override = None
            physics.conditions.thermal_factor = 1.0
            self.remap_pending = False
            self.retired["dbe"] += self.retired["pending"]
            self.retired["pending"] = 0
            if was_off:
                self.pending_xids.clear()
                physics.last_xid = 0
                self.clear_xid = True

    def undo_token(self, kind: str, physics: GpuPhysics) -> dict[str, object] | None:
        """What ``undo`` needs to put lasting condition ``kind`` (UNDOABLE) back as it is now; None: not undoable."""
        now: dict[str, object] = {
            "fall_off_bus": self.off_bus,
            "thermal_runaway": self.thermal_runaway_since,
            "power_brake": physics.conditions.power_brake,
            "load": physics.conditions.load_override,
            "fabric": self.fabric_down,
        }
        return {"kind": kind, "was": now[kind]} if kind in now else None

    def undo(self, token: dict[str, object], physics: GpuPhysics) -> None:
        """Put one lasting condition back as ``undo_token`` saw it (the counters it bumped stay: they never go back)."""
        kind, was = token["kind"], token["was"]
        if kind == "fall_off_bus" and self.off_bus and not was:
            self.off_bus = False
            if XID_FALLEN_OFF_BUS in self.pending_xids:
                self.pending_xids.remove(XID_FALLEN_OFF_BUS)
            physics.last_xid, self.clear_xid = 0, True
        elif kind == "thermal_runaway":
            self.thermal_runaway_since = None if was is None else float(was)  # type: ignore[arg-type]
            if was is None:
                physics.conditions.thermal_factor = 1.0
        elif kind == "power_brake":
            physics.conditions.power_brake = bool(was)
        elif kind == "load":
            physics.conditions.load_override = None if was is None else float(was)  # type: ignore[arg-type]
        elif kind == "fabric":
            self.fabric_down = bool(was)

    def fail_fabric(self, physics: GpuPhysics) -> None:
        """The board's NVLink fabric fails: throughput 0, a burst of CRC errors, XID 74 (once per failure)."""
        if not self.fabric_down:
            physics.counters[409] += FABRIC_CRC_BURST
            self.pending_xids.append(XID_NVLINK_ERROR)
        self.fabric_down = True

    def power_cycle(self, physics: GpuPhysics) -> None:
        """Power comes back: the GPU boots cold, its volatile counters and energy restart, its page has no XID.
        Aggregate counters and retired pages (InfoROM) stay; every lasting condition is gone with the reboot."""
        self.powered_off = self.off_bus = self.fabric_down = self.remap_pending = False
        self.thermal_runaway_since = physics.conditions.load_override = None
        physics.conditions.power_brake = False
        physics.conditions.thermal_factor = 1.0
        for fid in physics.counters:
            if fid not in AGGREGATE_COUNTERS:
                physics.counters[fid] = 0
        physics.energy_mj, physics.temp_c = 0.0, AMBIENT_C
        self.retired["dbe"] += self.retired["pending"]
        self.retired["pending"] = 0
        self.pending_xids.clear()
        physics.last_xid, self.clear_xid = 0, True

    def prepare(self, physics: GpuPhysics, t: float) -> None:
        """Before an update at scenario time ``t``: cooling that has been failing since the runaway began (a
        runaway may be set to begin later: a rack's cooling fails GPU after GPU)."""
        if self.thermal_runaway_since is not None:
            extra = min(RUNAWAY_MAX_EXTRA, max(0.0, t - self.thermal_runaway_since) * RUNAWAY_GROWTH_PER_S)
            physics.conditions.thermal_factor = 1.0 + extra

    def shape_readings(self, readings: dict[int, Value | None], physics: GpuPhysics) -> None:
        """Overwrite what the faults change in one update's readings (in place)."""
        if self.pending_xids:
            physics.last_xid = readings[XID_FIELD] = self.pending_xids.popleft()
        elif self.clear_xid:
            readings[XID_FIELD] = 0
        self.clear_xid = False
        readings[390] = self.retired["sbe"]
        readings[391] = self.retired["dbe"]
        readings[392] = self.retired["pending"]
        if self.remap_pending:
            readings[396] = 1
        if self.remap_failure:
            readings[395] = 1
        if self.fabric_down:
            for fid in NVLINK_THROUGHPUT_FIELDS:
                if readings.get(fid) is not None:
                    readings[fid] = 0
        if self.off_bus or self.powered_off:
            # A GPU off the bus answers nothing: every reading blank (no series), the XID of the fall excepted.
            xid = readings.get(XID_FIELD)
            for fid in readings:
                readings[fid] = None
            readings[XID_FIELD] = xid if xid == XID_FALLEN_OFF_BUS and not self.powered_off else None

    def state(self, physics: GpuPhysics) -> dict[str, object]:
        """JSON-able view for the control API."""
        return {
            "off_bus": self.off_bus,
            "thermal_runaway": self.thermal_runaway_since is not None,
            "power_brake": physics.conditions.power_brake,
            "load_override": physics.conditions.load_override,
            "row_remap_pending": self.remap_pending,
            "row_remap_failure": self.remap_failure,
            "retired_pages": dict(self.retired),
            "pending_xids": list(self.pending_xids),
            "fabric_down": self.fabric_down,
            "powered_off": self.powered_off,
        }
