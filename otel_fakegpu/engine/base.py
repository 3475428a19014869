"""The engine seam: where field values come from. Every engine answers the same questions and takes the
same injections, so the simulator can drive the embedded engine or a real DCGM hostengine alike."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from otel_fakegpu.engine.snapshot import ProcessUsage, Snapshot
from otel_fakegpu.fields import Value


class EngineState(enum.Enum):
    STARTING = "starting"
    OK = "ok"
    FAILED = "failed"


class EngineError(RuntimeError):
    """An engine that cannot answer: not connected, lost its hostengine, or refused a request."""


@dataclass(frozen=True)
class EngineStatus:
    kind: str
    state: EngineState
    detail: str = ""


class Engine(ABC):
    """A hostengine: GPU entities and the latest value of each of their fields."""

    kind: str = "abstract"

    @abstractmethod
    def entity_ids(self) -> tuple[int, ...]:
        """Exported entity ids in index order: GPUs, with a MIG-enabled GPU replaced by its instances."""

    @abstractmethod
    def watch_samples(self, field_ids: Sequence[int], max_keep_age_s: float) -> None:
        """Keep every stored value of ``field_ids``, not only the latest, for ``max_keep_age_s`` seconds
        (dcgmWatchFields' maxKeepAge): event fields such as XIDs must not be lost between two reads."""

    @abstractmethod
    def read_latest(self, field_ids: Sequence[int], samples_after: int | None = None) -> Snapshot:
        """One batch read of the latest values of ``field_ids`` for every entity.

        With ``samples_after`` (0 on the first read, then the previous snapshot's ``samples_cursor``), the
        same read also returns the samples of every watched field stored since (dcgmGetValuesSince).
        """

    @abstractmethod
    def create_gpus(self, count: int) -> tuple[int, ...]:
        """Create ``count`` fake GPU entities (dcgmCreateFakeEntities); returns their ids."""

    def create_gpu_instances(self, parent: int, instances: Sequence[tuple[int, str]]) -> tuple[int, ...]:
        """Partition GPU entity ``parent`` into MIG GPU instances, given as (GPU instance id, profile name);
        returns their entity ids. From then on reads export the instances in place of the parent; a field
        never injected on an instance reads as the parent's value (DCGM answers GPU-scoped fields that way)."""
        raise EngineError(f"the {self.kind} engine cannot create GPU instances")

    @abstractmethod
    def inject(self, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        """Set the latest value of (entity id, field id) pairs, all stamped ``timestamp`` (seconds); one
        call is one update, and stores one sample batch per watched field it touches."""

    def inject_rows(self, rows: Iterable[tuple[int, Mapping[int, Value | None]]], timestamp: float) -> None:
        """``inject`` of every (entity id, field id, value) of ``rows``, given as (entity id, {field id: value}):
        one update. The simulator's form; an engine may store it faster than the same triples."""
        self.inject(((entity_id, f, v) for entity_id, readings in rows for f, v in readings.items()), timestamp)

    def inject_processes(self, processes: Mapping[int, tuple[ProcessUsage, ...]]) -> None:  # noqa: B027
        """Replace the compute processes of these entities (the simulator's workloads); engines that read real
        GPUs learn processes from the driver and ignore this."""

    @abstractmethod
    def status(self) -> EngineStatus:
        """Whether the engine can answer now, for /health."""

    @property
    @abstractmethod
    def reads_total(self) -> int:
        """Batch reads served so far: proves a scrape never reads the engine."""

    # Entities beside GPUs (NVSwitches, their links). An engine without them has none: creating returns no ids.
    def create_entities(self, group: str, entity_ids: Sequence[int]) -> tuple[int, ...]:
        """Create entities of ``group`` ("switch", "link") with the given ids; returns those created."""
        return ()

    def inject_entities(self, group: str, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:  # noqa: B027
        """Set latest values of (entity id, field id) pairs of ``group``; read back in ``Snapshot.groups``."""

    def inject_entity_field(
        self, group: str, field_id: int, entity_ids: Sequence[int], value: Value | None, timestamp: float
    ) -> None:
        """Set ``field_id`` of each of ``entity_ids`` to the one ``value`` (every link up at start: 73,728 links at
        4096 GPUs): by default as that many updates."""
        self.inject_entities(group, ((entity_id, field_id, value) for entity_id in entity_ids), timestamp)

    @property
    def errors_total(self) -> int:
        """Library calls that failed (lost hostengine, NVML error); the embedded engine never fails one."""
        return 0

    def close(self) -> None:  # noqa: B027 - engines without resources need not override
        """Release the engine's resources."""
