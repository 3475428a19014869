"""The same simulated fleet for every contender: engine + simulator seeded alike, so every server in the
benchmark serves exactly the same series."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from otel_fakegpu.engine import EmbeddedEngine, Snapshot
from otel_fakegpu.fields import CollectorSet, MetricKind, default_collectors_path, load_collectors
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


Reader = Callable[[], tuple[Snapshot, list[Attributes]]]


def add_instruments(meter: Any, fleet: Fleet, read: Reader) -> None:
    """The fleet's 25 fields as plain observable instruments whose callbacks call ``read``."""

    def callback(field_id: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            snapshot, attributes = read()
            return [
                Observation(v, attributes[i])
                for i, v in enumerate(snapshot.column(field_id))
                if type(v) is int or type(v) is float
            ]

        return observe

    for c in fleet.collectors.metrics:
        create = meter.create_observable_counter if c.kind is MetricKind.COUNTER else meter.create_observable_gauge
        create(c.name, callbacks=[callback(c.field.id)], unit=c.field.unit, description=c.help)
