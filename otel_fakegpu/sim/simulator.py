"""The simulator: fake GPUs with identities, profiles and physics, injected into an engine every update."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from otel_fakegpu.engine import Engine
from otel_fakegpu.fields import Value
from otel_fakegpu.sim.clock import ScenarioClock
from otel_fakegpu.sim.events import GpuEvent
from otel_fakegpu.sim.faults import GpuFaults
from otel_fakegpu.sim.identity import BRAND, DRIVER_VERSION, NVML_VERSION, GpuIdentity, make_identity
from otel_fakegpu.sim.physics import GpuPhysics
from otel_fakegpu.sim.profiles import Profile, make_profile
from otel_fakegpu.sim.scenario import ScheduledEvent, Timeline
from otel_fakegpu.sim.skus import GpuSku

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


@dataclass
class SimulatedGpu:
    entity_id: int
    identity: GpuIdentity
    profile: Profile
    physics: GpuPhysics
    rng: random.Random
    faults: GpuFaults = field(default_factory=GpuFaults)


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
    ) -> None:
        if spec.count < 1:
            raise ValueError("the simulator needs at least one GPU")
        self._spec = spec
        self._engine = engine
        self.clock = scenario_clock or ScenarioClock(clock)
        self._timeline = Timeline(events)
        self._lock = threading.Lock()
        self._gpus: list[SimulatedGpu] = []
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
            self._gpus.append(SimulatedGpu(entity_id, identity, profile, physics, rng))
        self._engine.inject(self._identity_updates(), now)
        with self._lock:
            self._fire_due()
            self._engine.inject(self._reading_updates(self._gpus, 0.0, 0.0), now)
        log.info("simulating %d GPUs (profiles: %s)", spec.count, ",".join(spec.profiles))

    def step(self) -> None:
        """Advance every GPU to now and inject the new readings."""
        with self._lock:
            now, dt = self.clock.advance()
            self._fire_due()
            self._engine.inject(self._reading_updates(self._gpus, self.clock.t, dt), now)
            self.steps_total += 1

    def apply_event(self, index: int, event: GpuEvent) -> None:
        """Apply one event to GPU ``index`` now and inject that GPU's readings (no time passes)."""
        with self._lock:
            gpu = self._gpus[index]
            gpu.faults.apply(event, gpu.physics, self.clock.t)
            self._engine.inject(self._reading_updates([gpu], self.clock.t, 0.0), self.clock.now())
        log.info("GPU %d: %s", index, event.describe())

    def state(self) -> list[dict[str, object]]:
        """Each GPU's identity, last demand-driven readings and faults, as plain data."""
        with self._lock:
            return [
                {
                    "gpu": i,
                    "uuid": gpu.identity.uuid,
                    "model": gpu.identity.sku.key,
                    "profile": gpu.profile.name,
                    "temperature_c": round(gpu.physics.temp_c, 1),
                    "last_xid": gpu.physics.last_xid,
                    "faults": gpu.faults.state(),
                }
                for i, gpu in enumerate(self._gpus)
            ]

    def lost_gpus(self) -> list[int]:
        """Indices of the GPUs that are off the bus."""
        return [i for i, gpu in enumerate(self._gpus) if gpu.faults.off_bus]

    def _fire_due(self) -> None:
        for scheduled in self._timeline.due(self.clock.t):
            gpu = self._gpus[scheduled.gpu]
            gpu.faults.apply(scheduled.event, gpu.physics, self.clock.t)
            log.info("scenario t=%.0fs GPU %d: %s", self.clock.t, scheduled.gpu, scheduled.event.describe())

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
                (eid, 50, ident.sku.model_name),
                (eid, 51, BRAND),
                (eid, 53, ident.serial),
                (eid, 54, ident.uuid),
                (eid, 55, ident.minor_number),
                (eid, 57, ident.pci_bus_id),
                (eid, 85, ident.sku.vbios),
            )

    def _reading_updates(
        self, gpus: Sequence[SimulatedGpu], t: float, dt: float
    ) -> Iterator[tuple[int, int, Value | None]]:
        for gpu in gpus:
            demand = gpu.faults.shape_demand(gpu.profile.demand(t, gpu.rng), t)
            readings = gpu.physics.step(demand, dt, gpu.rng)
            gpu.faults.shape_readings(readings, gpu.physics, dt)
            eid = gpu.entity_id
            for field_id, value in readings.items():
                yield eid, field_id, value
