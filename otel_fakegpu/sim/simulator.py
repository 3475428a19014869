"""The simulator: fake GPUs with identities, profiles and physics, injected into an engine every update."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from otel_fakegpu.engine import Engine
from otel_fakegpu.sim.clock import ScenarioClock
from otel_fakegpu.sim.events import GpuEvent
from otel_fakegpu.sim.gpus import SimulatedGpu, identity_rows, inject_gpus
from otel_fakegpu.sim.host_events import HostEvent
from otel_fakegpu.sim.identity import make_identity
from otel_fakegpu.sim.mig import MigLayout
from otel_fakegpu.sim.nvswitch import BoardSwitches
from otel_fakegpu.sim.physics import GpuPhysics
from otel_fakegpu.sim.placement import PlacedWorkload
from otel_fakegpu.sim.profiles import make_profile
from otel_fakegpu.sim.scenario import ScheduledEvent, Timeline
from otel_fakegpu.sim.skus import GpuSku
from otel_fakegpu.sim.workloads import Workload, WorkloadError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
T = TypeVar("T")


@dataclass(frozen=True)
class FleetSpec:
    """What to simulate: ``profiles`` and ``skus`` are assigned to GPUs round-robin."""

    count: int
    profiles: Sequence[str]
    skus: Sequence[GpuSku]
    host: str
    seed: int | None = None
    mig: Mapping[int, MigLayout] = field(default_factory=dict)  # GPU index -> its MIG instances


class Simulator:
    """Drives any Engine: creates the GPUs, injects their identity once and their readings each step.

    Scripted ``events`` fire at the first update whose scenario time reaches them; ``apply_event`` (the
    control API) applies one at once. Both run under one lock with the updates.
    """

    def __init__(
        self,
        spec: FleetSpec,
        engine: Engine,
        clock: Clock = time.time,
        scenario_clock: ScenarioClock | None = None,
        events: Sequence[ScheduledEvent] = (),
        workloads: Sequence[Workload] = (),
    ) -> None:
        """``workloads`` are placed when the GPUs are created (each runs from its own start time)."""
        if spec.count < 1:
            raise ValueError("the simulator needs at least one GPU")
        self._spec = spec
        self._engine = engine
        self.clock = scenario_clock or ScenarioClock(clock)
        self._timeline = Timeline(events)
        self._initial_workloads = tuple(workloads)
        # The control API applies events and places workloads from another thread than the one stepping.
        self._lock = threading.Lock()
        self._gpus: list[SimulatedGpu] = []
        self._switches = BoardSwitches(engine)  # made once a pipeline reads a switch or link field
        self._value_seed = 0
        self._placed: dict[str, PlacedWorkload] = {}
        self._scripted = {w.key for w in workloads}  # placed by the scenario file, replaced when it is reloaded
        self.steps_total = 0
        self._host_events: list[ScheduledEvent] = []  # scripted host events due, for the host's control
        self.fired: list[tuple[dict[str, object], int, float, dict[str, object] | None]] = []

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
        now = self.clock.start()
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
        self._engine.inject_rows(identity_rows(self._gpus), now)
        for workload in self._initial_workloads:
            self.add_workload(workload)
        with self._lock:
            self._fire_due()
            inject_gpus(self._engine, self._gpus, self.clock.t, 0.0, now)
            self._switches.start(self._gpus, now)  # under the lock: a pipeline may ask for them from another thread
        log.info("simulating %d GPUs (profiles: %s)", spec.count, _tally(spec.profiles))

    def step(self) -> None:
        """Advance every GPU to now and inject the new readings."""
        with self._lock:
            now, dt = self.clock.advance()
            self._drop_finished(self.clock.t)
            self._fire_due()
            inject_gpus(self._engine, self._gpus, self.clock.t, dt, now)
            self._switches.step(dt, now)
            self.steps_total += 1

    def apply_event(self, index: int, event: GpuEvent) -> None:
        """Apply one event to GPU ``index`` now and inject that GPU's readings (no time passes)."""
        with self._lock:
            gpu = self._gpus[index]
            gpu.faults.apply(event, gpu.physics, self.clock.t)
            inject_gpus(self._engine, [gpu], self.clock.t, 0.0, self.clock.now())
        log.info("GPU %d: %s", index, event.describe())

    def change(self, indices: Sequence[int], change: Callable[[SimulatedGpu, float], T]) -> list[T]:
        """``change(gpu, scenario time)`` for GPUs ``indices`` under the lock, all at once, then their readings are
        injected (no time passes): a host event reaches every GPU it names in the same update."""
        with self._lock:
            gpus = [self._gpus[i] for i in indices]
            results = [change(gpu, self.clock.t) for gpu in gpus]
            inject_gpus(self._engine, gpus, self.clock.t, 0.0, self.clock.now())
        return results

    def refresh(self, indices: Sequence[int]) -> None:
        """Inject the readings of GPUs ``indices`` now (no time passes): a placed or removed workload shows."""
        with self._lock:
            inject_gpus(
                self._engine, [self._gpus[i] for i in sorted(set(indices))], self.clock.t, 0.0, self.clock.now()
            )

    def describe(self, describe: Callable[[int, SimulatedGpu], T], indices: Sequence[int] | None = None) -> list[T]:
        """``describe(index, gpu)`` of GPUs ``indices`` (every GPU by default), under the lock (a consistent
        view for the control API)."""
        with self._lock:
            chosen = range(len(self._gpus)) if indices is None else indices
            return [describe(i, self._gpus[i]) for i in chosen]

    def lost_gpus(self) -> list[int]:
        """Indices of the GPUs that are off the bus."""
        return [i for i, gpu in enumerate(self._gpus) if gpu.faults.off_bus]

    def _fire_due(self) -> None:
        for scheduled in self._timeline.due(self.clock.t):
            event = scheduled.event
            if isinstance(event, HostEvent):  # applied by the host's control once the lock is released
                self._host_events.append(scheduled)
                continue
            gpu = self._gpus[scheduled.gpu]
            kind = "load" if event.kind == "load" else event.name if event.kind == "fault" else ""
            token = gpu.faults.undo_token(kind, gpu.physics)
            gpu.faults.apply(event, gpu.physics, self.clock.t)
            self.fired.append((event.describe(), scheduled.gpu, self.clock.t, token))
            log.info("scenario t=%.0fs GPU %d: %s", self.clock.t, scheduled.gpu, event.describe())

    def take_host_events(self) -> list[ScheduledEvent]:
        """The scripted host events that came due (each handed out once)."""
        with self._lock:
            due, self._host_events = self._host_events, []
        return due

    def take_fired(self) -> list[tuple[dict[str, object], int, float, dict[str, object] | None]]:
        """Scripted GPU events applied since the last call: (event, GPU, scenario time, undo token), for history."""
        with self._lock:
            fired, self.fired = self.fired, []
        return fired

    def now_s(self) -> float:
        """Simulation (scenario) time: seconds since ``start``."""
        return self.clock.t

    def add_workload(self, workload: Workload) -> None:
        """Place ``workload``; it drives its devices from the next update. Raises WorkloadError."""
        with self._lock:
            self._place(workload)

    def _place(self, workload: Workload) -> None:
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
            return self._unplace(key)

    def _unplace(self, key: str) -> Workload:
        placed = self._placed.pop(key, None)
        if placed is None:
            raise KeyError(f"no workload {key}")
        for gpu in self._gpus:
            gpu.placed = [p for p in gpu.placed if p is not placed]
        return placed.workload

    def replace_script(
        self, events: Sequence[ScheduledEvent], workloads: Sequence[Workload], time_scale: float
    ) -> None:
        """A reloaded scenario file: its events and workloads replace the file's old ones, their times counted from
        now (scenario time goes on, so counters and fault windows stay monotonic). What the control API placed and
        what already happened to the GPUs stay. Raises WorkloadError and changes nothing when one cannot be placed."""
        with self._lock:
            t = self.clock.t
            shifted = [
                dataclasses.replace(w, start_s=t + w.start_s, stop_s=None if w.stop_s is None else t + w.stop_s)
                for w in workloads
            ]
            if len({w.key for w in shifted}) != len(shifted):
                raise WorkloadError("two workloads have the same namespace/pod/container")
            for workload in shifted:
                if workload.key in self._placed and workload.key not in self._scripted:
                    raise WorkloadError(f"workload {workload.key} is already placed through the control API")
                for gpu, instance_id in workload.devices():
                    self._target(workload, gpu, instance_id)
            for key in self._scripted & self._placed.keys():
                self._unplace(key)
            for workload in shifted:
                self._place(workload)
            self._scripted = {w.key for w in shifted}
            self._timeline = Timeline([dataclasses.replace(e, at_s=t + e.at_s) for e in events])
            self.clock.time_scale = time_scale

    def workloads(self) -> tuple[Workload, ...]:
        """Placed workloads whose stop time has not passed, in the order they were placed."""
        with self._lock:
            return tuple(p.workload for p in self._placed.values())

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

    def watch_switches(self) -> None:
        """A pipeline reads NVSwitch or NVLink fields: the boards' switches are made, now or with the GPUs (a
        reload's new field set reads them from its first cycle)."""
        with self._lock:
            self._switches.watch(self.clock.now())


def _tally(names: Sequence[str]) -> str:
    """``static x60000, bursty x5536``: one word per name, not per GPU (65,536 GPUs made a 460 KB log line)."""
    return ", ".join(f"{name} x{count}" if count > 1 else name for name, count in Counter(names).items())
