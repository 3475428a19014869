"""One simulated GPU and what the simulator injects for it: its identity once, its readings each update."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from otel_fakegpu.engine import Engine, ProcessUsage
from otel_fakegpu.fields import Value
from otel_fakegpu.sim.faults import GpuFaults
from otel_fakegpu.sim.identity import BRAND, DRIVER_VERSION, NVML_VERSION, GpuIdentity
from otel_fakegpu.sim.mig import MigLayout
from otel_fakegpu.sim.physics import GpuPhysics, instance_readings
from otel_fakegpu.sim.placement import PlacedWorkload, as_demand, device_demand, instance_demands
from otel_fakegpu.sim.profiles import Demand, Profile

Readings = dict[int, Value | None]
Row = tuple[int, Readings]  # (entity id, its readings)


@dataclass
class SimulatedGpu:
    """One GPU: its profile drives it until a workload is placed on it; then its workloads do."""

    entity_id: int
    identity: GpuIdentity
    profile: Profile
    physics: GpuPhysics
    rng: random.Random
    layout: MigLayout | None = None
    instance_entities: dict[int, int] = field(default_factory=dict)  # GPU instance id -> entity id
    placed: list[PlacedWorkload] = field(default_factory=list)
    workload_driven: bool = False  # a workload was placed on it once: no longer follows its profile
    faults: GpuFaults = field(default_factory=GpuFaults)
    # What its board's NVSwitches see of its last step: its scalar load and NVLink bytes/s sent (0 off the bus).
    load: float = 0.0
    nvlink_tx_bps: int = 0


def identity_rows(gpus: Sequence[SimulatedGpu]) -> Iterator[Row]:
    """Each GPU's identity fields, injected once when the GPUs are created."""
    count = len(gpus)
    for gpu in gpus:
        ident = gpu.identity
        yield (
            gpu.entity_id,
            {
                1: DRIVER_VERSION,
                2: NVML_VERSION,
                4: count,
                66: 1,  # persistence mode on, as on every data-centre node
                50: ident.sku.model_name,
                51: BRAND,
                53: ident.serial,
                54: ident.uuid,
                55: ident.minor_number,
                57: ident.pci_bus_id,
                85: ident.sku.vbios,
            },
        )


def reading_rows(gpus: Sequence[SimulatedGpu], t: float, dt: float) -> Iterator[Row]:
    """``gpus`` advanced by ``dt`` scenario seconds to scenario time ``t``: their readings and their instances'."""
    for gpu in gpus:
        gpu.faults.prepare(gpu.physics, t)
        if gpu.layout is not None:
            readings, instances = _mig_readings(gpu, t, dt)
        else:
            readings, instances = gpu.physics.step(_demand(gpu, t), dt, gpu.rng), []
        gpu.faults.shape_readings(readings, gpu.physics)
        gpu.load = 0.0 if gpu.faults.off_bus else gpu.physics.load
        gpu.nvlink_tx_bps = int(readings.get(1011) or 0)
        yield gpu.entity_id, readings
        for instance_eid, instance in instances:  # an instance of a GPU off the bus is gone with it
            yield instance_eid, dict.fromkeys(instance) if gpu.faults.off_bus else instance


def _demand(gpu: SimulatedGpu, t: float) -> Demand:
    if gpu.workload_driven:
        usable = gpu.identity.sku.fb_total_mib - gpu.identity.sku.fb_reserved_mib
        return as_demand(device_demand(gpu.placed, t, usable), usable)
    return gpu.profile.demand(t, gpu.rng)


def _mig_readings(gpu: SimulatedGpu, t: float, dt: float) -> tuple[Readings, list[tuple[int, Readings]]]:
    """A MIG-enabled GPU: each instance runs its own workloads; the GPU's load is their slice-weighted sum."""
    assert gpu.layout is not None
    profile = None if gpu.workload_driven else gpu.profile.demand(t, gpu.rng)
    per_instance = instance_demands(gpu.identity.index, gpu.layout, gpu.placed, t, profile)
    readings = gpu.physics.step_mig(per_instance, dt, gpu.rng)
    instances = [
        (gpu.instance_entities[inst.instance_id], instance_readings(gpu.identity.sku, inst, demand))
        for inst, demand in per_instance
    ]
    return readings, instances


def inject_gpus(engine: Engine, gpus: Sequence[SimulatedGpu], t: float, dt: float, now: float) -> None:
    """Advance ``gpus`` by ``dt`` to scenario time ``t``; inject their readings and compute processes at ``now``."""
    engine.inject_rows(reading_rows(gpus, t, dt), now)
    engine.inject_processes(process_table(gpus, t))


def process_table(gpus: Sequence[SimulatedGpu], t: float) -> dict[int, tuple[ProcessUsage, ...]]:
    """Each device's compute processes at ``t``: one per active workload (its SM share and framebuffer), on a whole
    GPU's entity or on the MIG instance's it runs on; none on a GPU off the bus or following its profile."""
    table: dict[int, tuple[ProcessUsage, ...]] = {}
    for gpu in gpus:
        sku = gpu.identity.sku
        if gpu.layout is None:
            usable = sku.fb_total_mib - sku.fb_reserved_mib
            devices = [(gpu.entity_id, gpu.placed, usable)]
        else:
            devices = [
                (eid, [p for p in gpu.placed if any(m.instance_id == gi for m in p.workload.instances)],
                 next(i.profile.fb_mib for i in gpu.layout.instances if i.instance_id == gi))
                for gi, eid in gpu.instance_entities.items()
            ]  # fmt: skip
        for entity_id, placed, usable in devices:
            active = () if gpu.faults.off_bus else [p for p in placed if p.workload.active_at(t)]
            table[entity_id] = tuple(_process(p, t, usable) for p in active)
    return table


def _process(placed: PlacedWorkload, t: float, fb_usable_mib: int) -> ProcessUsage:
    w, demand = placed.workload, placed.demand(t)
    fb = w.fb_mib if w.fb_mib is not None else round(demand.memory * fb_usable_mib)
    pid = 1000 + zlib.crc32(w.key.encode()) % 4_000_000  # stable per workload, like a long-running process
    return ProcessUsage(pid, (w.namespace, w.pod, w.container), demand.engine_load().sm, fb)
