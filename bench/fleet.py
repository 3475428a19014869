"""The same simulated fleet for every contender: engine + simulator seeded alike, so every server in the
benchmark serves exactly the same series."""

from __future__ import annotations

from otel_fakegpu.engine import EmbeddedEngine, Snapshot
from otel_fakegpu.fields import CollectorSet, default_collectors_path, load_collectors
from otel_fakegpu.sim import SKUS, FleetSpec, Simulator
from otel_fakegpu.telemetry import Attributes, LabelScheme

SEED = 1
PROFILES = ("stable", "wave", "spike")
HOST = "bench-node"


class Fleet:
    def __init__(self, gpus: int) -> None:
        self.collectors: CollectorSet = load_collectors(default_collectors_path())
        self.engine = EmbeddedEngine()
        Simulator(FleetSpec(gpus, PROFILES, (SKUS["h100-sxm"],), HOST, SEED), self.engine).start()
        self.labels = LabelScheme(HOST, self.collectors.labels)
        self.field_ids = tuple(dict.fromkeys((*self.labels.field_ids, *self.collectors.field_ids)))

    def read(self) -> tuple[Snapshot, list[Attributes]]:
        snapshot = self.engine.read_latest(self.field_ids)
        return snapshot, self.labels.attributes(snapshot)
