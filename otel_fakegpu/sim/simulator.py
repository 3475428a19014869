"""The simulator: fake GPUs with identities, profiles and physics, injected into an engine every update."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from otel_fakegpu.engine import Engine
from otel_fakegpu.fields import Value
from otel_fakegpu.sim.identity import BRAND, DRIVER_VERSION, NVML_VERSION, GpuIdentity, make_identity
from otel_fakegpu.sim.nvswitch import SimulatedSwitch, build_switches, static_updates, step_switch
from otel_fakegpu.sim.physics import GpuPhysics
from otel_fakegpu.sim.profiles import Profile, make_profile
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
            self._gpus.append(SimulatedGpu(entity_id, identity, profile, physics, rng))
        self._engine.inject(self._identity_updates(), now)
        self._engine.inject(self._reading_updates(0.0, 0.0), now)
        self._start_switches(now)
        log.info("simulating %d GPUs (profiles: %s)", spec.count, ",".join(spec.profiles))

    def step(self) -> None:
        """Advance every GPU to now and inject the new readings."""
        now = self._clock()
        dt = max(0.0, now - self._last_step)
        self._last_step = now
        self._engine.inject(self._reading_updates(now - self._started_at, dt), now)
        self._step_switches(dt, now)
        self.steps_total += 1

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
            demand = gpu.profile.demand(t, gpu.rng)
            gpu.load = demand.load
            readings = gpu.physics.step(demand, dt, gpu.rng)
            eid = gpu.entity_id
            for field_id, value in readings.items():
                yield eid, field_id, value
