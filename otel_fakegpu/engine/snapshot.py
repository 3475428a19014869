"""An immutable view of the latest values of some fields for every entity, taken in one batch read."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from otel_fakegpu.fields import Value

Column = tuple[Value | None, ...]


@dataclass(frozen=True)
class SampleBatch:
    """Values of one field that one engine update stored together, all stamped ``timestamp`` (seconds).

    ``values[i]`` belongs to ``entity_ids[i]``; an update that skipped an entity has no sample for it.
    """

    timestamp: float
    entity_ids: tuple[int, ...]
    values: Column


# What dcgm_fields.cpp registers below the GPU level and every engine reads per MIG GPU instance: the
# framebuffer (250-254) and the activity ratios (1001-1008, tensor pipes 1013-1015); a GPU instance shows its
# parent GPU's value for every other field (docs/mig.md).
INSTANCE_FIELDS = frozenset((250, 251, 252, 253, 254, *range(1001, 1009), 1013, 1014, 1015))


@dataclass(frozen=True)
class GpuInstanceEntity:
    """A MIG GPU instance entity (DCGM_FE_GPU_I): its parent GPU entity, GPU instance id and profile name."""

    parent: int
    instance_id: int
    profile: str


@dataclass(frozen=True)
class ProcessUsage:
    """One compute process on a device, as NVML's per-process accounting reports it (SM utilisation, framebuffer);
    ``owner`` (namespace, pod, container) stands for what the PID's cgroup says, which dcgm-exporter maps to a pod."""

    pid: int
    owner: tuple[str, str, str]
    sm_util: float  # its share of the device's SM time, 0..1
    fb_used_mib: int


@dataclass(frozen=True)
class Snapshot:
    """Values laid out by field: ``columns[field_id][i]`` is the value of ``entity_ids[i]`` or None if blank.

    A column per field (rather than a dict per entity) keeps a 4096-GPU read to a few tuple copies.
    Entities are what dcgm-exporter exports: every GPU without MIG, and for a MIG-enabled GPU only its GPU
    instances, right where the GPU would be; ``instances`` describes those instance entities.
    ``samples`` holds, for fields watched for samples, every value stored since the cursor the read asked
    for (oldest first); ``samples_cursor`` is where the next read should continue (None: no samples asked for).
    """

    entity_ids: tuple[int, ...]
    columns: Mapping[int, Column]
    taken_at: float
    samples: Mapping[int, tuple[SampleBatch, ...]] = field(default_factory=lambda: MappingProxyType({}))
    samples_cursor: int | None = None
    instances: Mapping[int, GpuInstanceEntity] = field(default_factory=lambda: MappingProxyType({}))
    # Other entity groups read in the same batch (``"switch"``, ``"link"``), each a Snapshot of its own entities.
    groups: Mapping[str, Snapshot] = field(default_factory=lambda: MappingProxyType({}))
    # The compute processes on each entity (GPU or MIG instance) at the read, where the engine knows them.
    processes: Mapping[int, tuple[ProcessUsage, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def build(
        cls,
        entity_ids: tuple[int, ...],
        columns: dict[int, Column],
        taken_at: float,
        samples: dict[int, tuple[SampleBatch, ...]] | None = None,
        samples_cursor: int | None = None,
        instances: Mapping[int, GpuInstanceEntity] | None = None,
    ) -> Snapshot:
        return cls(
            entity_ids,
            MappingProxyType(columns),
            taken_at,
            MappingProxyType(samples or {}),
            samples_cursor,
            MappingProxyType(dict(instances or {})),
        )

    def with_groups(self, groups: Mapping[str, Snapshot]) -> Snapshot:
        """This snapshot plus the entity groups read with it."""
        if not groups:
            return self
        return dataclasses.replace(self, groups=MappingProxyType(dict(groups)))

    def with_processes(self, processes: Mapping[int, tuple[ProcessUsage, ...]]) -> Snapshot:
        """This snapshot plus the processes read with it."""
        return dataclasses.replace(self, processes=MappingProxyType(dict(processes))) if processes else self

    def column(self, field_id: int) -> Column:
        """Values of one field for every entity; all blank when the field was not read."""
        col = self.columns.get(field_id)
        return col if col is not None else (None,) * len(self.entity_ids)

    def value(self, entity_id: int, field_id: int) -> Value | None:
        return self.column(field_id)[self.entity_ids.index(entity_id)]

    def __len__(self) -> int:
        return len(self.entity_ids)


EMPTY_SNAPSHOT = Snapshot.build((), {}, 0.0)
