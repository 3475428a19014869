"""Where workloads run: which workloads are on which device, and the demand they put on each at time t."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from otel_fakegpu.sim.load import EngineLoad, clamp, combine
from otel_fakegpu.sim.mig import MigInstance, MigLayout
from otel_fakegpu.sim.profiles import Demand, Profile
from otel_fakegpu.sim.workloads import Workload, make_shape

IDLE = EngineLoad(sm=0.0, tensor=0.0)


@dataclass
class PlacedWorkload:
    """A workload with its own shape object and random stream (so shapes never share state)."""

    workload: Workload
    shape: Profile
    rng: random.Random
    _last: tuple[float, Demand] | None = None

    @classmethod
    def create(cls, workload: Workload, seed: int) -> PlacedWorkload:
        return cls(workload, make_shape(workload.shape), random.Random(f"{seed}/{workload.key}"))

    def demand(self, t: float) -> Demand:
        """The shape's demand ``t - start`` seconds into the workload, scaled by its intensity. Asked again
        for the same ``t`` (its other GPUs), it answers the same: a multi-GPU job runs its GPUs in lockstep."""
        if self._last is not None and self._last[0] == t:
            return self._last[1]
        demand = self._scaled(self.shape.demand(max(0.0, t - self.workload.start_s), self.rng))
        self._last = (t, demand)
        return demand

    def _scaled(self, demand: Demand) -> Demand:
        if self.workload.intensity >= 1.0:
            return demand
        return Demand(
            load=demand.load * self.workload.intensity,
            memory=demand.memory,
            media=demand.media * self.workload.intensity,
            thermal_factor=demand.thermal_factor,
            errors_per_hour=demand.errors_per_hour,
            xid=demand.xid,
            blanks=demand.blanks,
            glitches=demand.glitches,
            engines=demand.engine_load().scaled(self.workload.intensity),
        )


@dataclass
class DeviceDemand:
    """What one device (a GPU, or a MIG instance) runs in a step: load per engine and framebuffer in use."""

    engines: EngineLoad
    fb_used_mib: int
    errors_per_hour: float = 0.0
    xid: int | None = None


def device_demand(placed: Iterable[PlacedWorkload], t: float, fb_usable_mib: int) -> DeviceDemand:
    """The combined demand of the workloads in ``placed`` that are active at ``t`` on a device."""
    loads: list[EngineLoad] = []
    fb = 0.0
    errors = 0.0
    xid: int | None = None
    for item in placed:
        if not item.workload.active_at(t):
            continue
        demand = item.demand(t)
        loads.append(demand.engine_load())
        footprint = item.workload.fb_mib
        fb += footprint if footprint is not None else demand.memory * fb_usable_mib
        errors += demand.errors_per_hour
        xid = demand.xid if demand.xid is not None else xid
    engines = combine(loads) or IDLE
    return DeviceDemand(engines, round(min(float(fb_usable_mib), fb)), errors, xid)


def as_demand(device: DeviceDemand, fb_usable_mib: int) -> Demand:
    """A whole GPU's device demand in the profile vocabulary physics takes."""
    memory = clamp(device.fb_used_mib / fb_usable_mib) if fb_usable_mib else 0.0
    engines = device.engines
    return Demand(
        load=engines.busy,
        memory=memory,
        media=max(engines.encoder, engines.decoder),
        errors_per_hour=device.errors_per_hour,
        xid=device.xid,
        engines=engines,
    )


def instance_demands(
    gpu_index: int, layout: MigLayout, placed: Sequence[PlacedWorkload], t: float, profile: Demand | None
) -> list[tuple[MigInstance, DeviceDemand]]:
    """Each MIG instance's demand: its own workloads', or, while no workload was ever placed on the GPU
    (``profile`` given), the GPU's profile on every instance."""
    result = []
    by_instance = _by_instance(gpu_index, placed) if profile is None else {}
    for inst in layout.instances:
        if profile is not None:
            fb = round(profile.memory * inst.profile.fb_mib)
            demand = DeviceDemand(
                profile.engine_load(), fb, profile.errors_per_hour / len(layout.instances), profile.xid
            )
        else:
            demand = device_demand(by_instance.get(inst.instance_id, ()), t, inst.profile.fb_mib)
        result.append((inst, demand))
    return result


def _by_instance(gpu_index: int, placed: Sequence[PlacedWorkload]) -> dict[int, list[PlacedWorkload]]:
    """The workloads on each MIG instance of GPU ``gpu_index``, in the order they were placed (one pass)."""
    groups: dict[int, list[PlacedWorkload]] = {}
    for item in placed:
        for instance_id in {m.instance_id for m in item.workload.instances if m.gpu == gpu_index}:
            groups.setdefault(instance_id, []).append(item)
    return groups
