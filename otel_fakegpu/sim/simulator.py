"""The simulator: fake GPUs with identities, profiles and physics, injected into an engine every update."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from otel_fakegpu.engine import Engine
from otel_fakegpu.fields import Value
from otel_fakegpu.sim.identity import BRAND, DRIVER_VERSION, NVML_VERSION, GpuIdentity, make_identity
from otel_fakegpu.sim.mig import MigLayout
from otel_fakegpu.sim.nvswitch import SimulatedSwitch, build_switches, static_updates, step_switch
from otel_fakegpu.sim.physics import GpuConditions, GpuPhysics, instance_readings
from otel_fakegpu.sim.placement import PlacedWorkload, as_demand, device_demand, instance_demands
from otel_fakegpu.sim.profiles import Profile, make_profile
from otel_fakegpu.sim.skus import GpuSku
from otel_fakegpu.sim.workloads import Workload, WorkloadError

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class FleetSpec:
    """What to simulate: ``profiles`` and ``skus`` are assigned to GPUs round-robin."""

    count: int
    profiles: Sequence[str]
    skus: Sequence[GpuSku]
    host: str
    seed: int | None = None
    mig: Mapping[int, MigLayout] = field(default_factory=dict)  # GPU index -> its MIG instances


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
    load: float = 0.0  # the load of its last step, which its board's NVSwitches carry


class Simulator:
    """Drives any Engine: creates the GPUs, injects their identity once and their readings each step."""

    def __init__(self, spec: FleetSpec, engine: Engine, clock: Clock = time.time) -> None:
        if spec.count < 1:
            raise ValueError("the simulator needs at least one GPU")
        self._spec = spec
        self._engine = engine
        self._clock = clock
        self._gpus: list[SimulatedGpu] = []
        self._switches: list[SimulatedSwitch] = []
        self._started_at = 0.0
        self._last_step = 0.0
        self._value_seed = 0
        self._placed: dict[str, PlacedWorkload] = {}
        # The control API adds and removes workloads from another thread than the one stepping.
        self._lock = threading.Lock()
        self.steps_total = 0

    @property
    def gpus(self) -> tuple[SimulatedGpu, ...]:
        return tuple(self._gpus)

    def start(self) -> None:
        """Create the GPU entities and inject identities and first readings."""
        spec = self._spec
        # Unseeded runs still get stable identities (seed 0), but fresh values each run.
        id_seed = spec.seed if spec.seed is not None else 0
        value_seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**63)
        self._value_seed = value_seed
        now = self._clock()
        self._started_at = self._last_step = now
        entity_ids = self._engine.create_gpus(spec.count)
        for index, entity_id in enumerate(entity_ids):
            sku = spec.skus[index % len(spec.skus)]
            profile = make_profile(spec.profiles[index % len(spec.profiles)])
            rng = random.Random(f"{value_seed}/{index}")
            first = profile.demand(0.0, rng)
            uptime = rng.uniform(3600.0, 30 * 86400.0)
            physics = GpuPhysics.start(sku, first, uptime)
            identity = make_identity(index, sku, spec.host, id_seed)
            gpu = SimulatedGpu(entity_id, identity, profile, physics, rng, spec.mig.get(index))
            if gpu.layout is not None:
                pairs = [(inst.instance_id, inst.profile.name) for inst in gpu.layout.instances]
                created = self._engine.create_gpu_instances(entity_id, pairs)
                gpu.instance_entities = {gi: eid for (gi, _), eid in zip(pairs, created, strict=True)}
            self._gpus.append(gpu)
        self._engine.inject(self._identity_updates(), now)
        self._engine.inject(self._reading_updates(0.0, 0.0), now)
        self._start_switches(now)
        log.info("simulating %d GPUs (profiles: %s)", spec.count, ",".join(spec.profiles))

    def step(self) -> None:
        """Advance every GPU to now and inject the new readings."""
        now = self._clock()
        dt = max(0.0, now - self._last_step)
        self._last_step = now
        with self._lock:
            self._drop_finished(now - self._started_at)
            self._engine.inject(self._reading_updates(now - self._started_at, dt), now)
            self._step_switches(dt, now)
        self.steps_total += 1

    def now_s(self) -> float:
        """Simulation time: seconds since ``start`` by the simulator's clock."""
        return self._clock() - self._started_at

    def add_workload(self, workload: Workload) -> None:
        """Place ``workload``; it drives its devices from the next update. Raises WorkloadError."""
        with self._lock:
            if workload.key in self._placed:
                raise WorkloadError(f"workload {workload.key} is already placed")
            targets = [self._target(workload, gpu, gi) for gpu, gi in workload.devices()]
            placed = PlacedWorkload.create(workload, self._value_seed)
            self._placed[workload.key] = placed
            for gpu in targets:
                gpu.placed.append(placed)
                gpu.workload_driven = True

    def remove_workload(self, key: str) -> Workload:
        """Remove the workload ``namespace/pod/container``; raises KeyError when none is placed."""
        with self._lock:
            placed = self._placed.pop(key, None)
            if placed is None:
                raise KeyError(f"no workload {key}")
            for gpu in self._gpus:
                gpu.placed = [p for p in gpu.placed if p is not placed]
            return placed.workload

    def workloads(self) -> tuple[Workload, ...]:
        """Placed workloads whose stop time has not passed, in the order they were placed."""
        with self._lock:
            return tuple(p.workload for p in self._placed.values())

    def conditions(self, index: int) -> GpuConditions:
        """GPU ``index``'s external conditions, to read; change them with ``update_conditions``."""
        return self._gpu(index).physics.conditions

    def update_conditions(self, index: int, **changes: object) -> None:
        """Set GpuConditions attributes of GPU ``index`` (``power_brake=True``, ``thermal_factor=3.0``,
        ``pending_xid=79``, ...) between two updates; the next update applies them. Raises IndexError for a
        GPU that does not exist, AttributeError for an unknown condition."""
        gpu = self._gpu(index)
        with self._lock:
            for name, value in changes.items():
                if not hasattr(gpu.physics.conditions, name):
                    raise AttributeError(f"no GPU condition {name!r}")
                setattr(gpu.physics.conditions, name, value)

    def add_counts(self, index: int, counts: Mapping[int, int]) -> None:
        """Add to GPU ``index``'s running totals at the next update (ECC errors, replays, remapped rows, ...)."""
        gpu = self._gpu(index)
        with self._lock:
            pending = gpu.physics.conditions.pending_counts
            for field_id, count in counts.items():
                pending[field_id] = pending.get(field_id, 0) + count

    def _gpu(self, index: int) -> SimulatedGpu:
        if not 0 <= index < len(self._gpus):
            raise IndexError(f"GPU {index} does not exist ({len(self._gpus)} GPUs)")
        return self._gpus[index]

    def _target(self, workload: Workload, index: int, instance_id: int | None) -> SimulatedGpu:
        if not 0 <= index < len(self._gpus):
            raise WorkloadError(f"workload {workload.key}: GPU {index} does not exist ({len(self._gpus)} GPUs)")
        gpu = self._gpus[index]
        if instance_id is None and gpu.layout is not None:
            raise WorkloadError(f"workload {workload.key}: GPU {index} is MIG-partitioned; name its instances")
        if instance_id is not None and instance_id not in gpu.instance_entities:
            raise WorkloadError(f"workload {workload.key}: GPU {index} has no MIG instance {instance_id}")
        return gpu

    def _drop_finished(self, t: float) -> None:
        finished = [key for key, p in self._placed.items() if p.workload.stop_s is not None and t >= p.workload.stop_s]
        for key in finished:
            placed = self._placed.pop(key)
            for gpu in self._gpus:
                if placed in gpu.placed:
                    gpu.placed = [p for p in gpu.placed if p is not placed]

    def _start_switches(self, now: float) -> None:
        """Create the NVSwitches (and their up links) of every HGX board, if the engine holds such entities."""
        switches = build_switches([gpu.identity.sku for gpu in self._gpus])
        if not switches or not self._engine.create_entities("switch", [s.entity_id for s in switches]):
            return
        self._engine.create_entities("link", [link for s in switches for link in s.link_ids])
        self._switches = switches
        for group in ("switch", "link"):
            updates = [(e, f, v) for s in switches for g, e, f, v in static_updates(s) if g == group]
            self._engine.inject_entities(group, updates, now)
        self._step_switches(0.0, now)

    def _step_switches(self, dt: float, now: float) -> None:
        if self._switches:
            gpus = self._gpus
            updates = [u for s in self._switches for u in step_switch(s, [gpus[i].load for i in s.gpu_indexes], dt)]
            self._engine.inject_entities("switch", updates, now)

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Step every ``interval_s`` seconds until ``stop`` is set; a failing step is logged, never fatal."""
        while not stop.wait(interval_s):
            try:
                self.step()
            except Exception:
                log.exception("simulator step failed; retrying next interval")

    def _identity_updates(self) -> Iterator[tuple[int, int, Value | None]]:
        count = len(self._gpus)
        for gpu in self._gpus:
            ident, eid = gpu.identity, gpu.entity_id
            yield from (
                (eid, 1, DRIVER_VERSION),
                (eid, 2, NVML_VERSION),
                (eid, 4, count),
                (eid, 66, 1),  # persistence mode on, as on every data-centre node
                (eid, 50, ident.sku.model_name),
                (eid, 51, BRAND),
                (eid, 53, ident.serial),
                (eid, 54, ident.uuid),
                (eid, 55, ident.minor_number),
                (eid, 57, ident.pci_bus_id),
                (eid, 85, ident.sku.vbios),
            )

    def _reading_updates(self, t: float, dt: float) -> Iterator[tuple[int, int, Value | None]]:
        for gpu in self._gpus:
            if gpu.layout is not None:
                yield from self._mig_updates(gpu, t, dt)
                continue
            if gpu.workload_driven:
                usable = gpu.identity.sku.fb_total_mib - gpu.identity.sku.fb_reserved_mib
                demand = as_demand(device_demand(gpu.placed, t, usable), usable)
            else:
                demand = gpu.profile.demand(t, gpu.rng)
            gpu.load = demand.load
            readings = gpu.physics.step(demand, dt, gpu.rng)
            eid = gpu.entity_id
            for field_id, value in readings.items():
                yield eid, field_id, value

    def _mig_updates(self, gpu: SimulatedGpu, t: float, dt: float) -> Iterator[tuple[int, int, Value | None]]:
        """A MIG-enabled GPU: each instance runs its own workloads; the GPU's load is their slice-weighted sum."""
        assert gpu.layout is not None
        profile = None if gpu.workload_driven else gpu.profile.demand(t, gpu.rng)
        per_instance = instance_demands(gpu.identity.index, gpu.layout, gpu.placed, t, profile)
        gpu.load = sum(demand.engines.busy * inst.compute_fraction for inst, demand in per_instance)
        readings = gpu.physics.step_mig(per_instance, dt, gpu.rng)
        yield from ((gpu.entity_id, fid, value) for fid, value in readings.items())
        for inst, demand in per_instance:
            eid = gpu.instance_entities[inst.instance_id]
            for field_id, value in instance_readings(gpu.identity.sku, inst, demand).items():
                yield eid, field_id, value
