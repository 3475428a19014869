"""Device ids as the sources name them, and which snapshot entity (GPU or MIG instance) each one means.

The rules are dcgm-exporter's (internal/pkg/transformation/kubernetes.go): a whole GPU is matched by its UUID
(``--kubernetes-gpu-id-type uid``) or by ``nvidia<minor>`` (``device-name``); ``MIG-<uuid>`` and GKE's
``nvidiaN/giM`` name a MIG GPU instance, which only such ids match; a time-slicing replica ``<id>::N`` (or
GKE's ``<id>/vgpuN``) is its device plus the replica number ``N`` (the ``vgpu`` label).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from otel_fakegpu.engine import Snapshot

GPU_UUID_FIELD, MINOR_FIELD = 54, 55
ID_TYPES = ("uid", "device-name")
_GKE_MIG = re.compile(r"^nvidia([0-9]+)/gi([0-9]+)(?:/vgpu([0-9]+))?$")
_GKE_VGPU = "/vgpu"


@dataclass(frozen=True)
class DeviceRef:
    """One way of naming a device; exactly one of the forms is set (``index`` may come with ``instance``)."""

    uuid: str | None = None  # GPU-...: a whole GPU
    name: str | None = None  # nvidiaN: a whole GPU
    mig_uuid: str | None = None  # MIG-...: a GPU instance
    index: int | None = None  # the gpu label: a whole GPU, or with ``instance`` a GPU instance
    instance: int | None = None


@dataclass(frozen=True)
class Entity:
    """The names one snapshot entity answers to."""

    gpu: int
    uuid: str
    name: str
    instance: int | None = None  # MIG GPU instance id; None for a whole GPU
    mig_uuid: str | None = None


def parse_device(device_id: str, id_type: str | None) -> tuple[DeviceRef | None, str | None]:
    """A device id from the kubelet or a pod list file: (what it names, its vgpu replica or None).

    ``id_type`` ``uid`` or ``device-name`` says how a whole GPU is named; None accepts either, and a bare
    number as the GPU's minor number (koordinator's lists). None when the id names nothing this can match.
    """
    text = device_id.strip()
    gke = _GKE_MIG.match(text)
    if gke is not None:
        return DeviceRef(index=int(gke.group(1)), instance=int(gke.group(2))), gke.group(3)
    vgpu = None
    if _GKE_VGPU in text:
        text, _, vgpu = text.partition(_GKE_VGPU)
    elif "::" in text:
        text, _, vgpu = text.partition("::")
    if text.startswith("MIG-"):
        return DeviceRef(mig_uuid=text), vgpu
    if id_type is None and text.isdigit():
        return DeviceRef(name=f"nvidia{int(text)}"), vgpu
    if id_type == "device-name" or (id_type is None and text.startswith("nvidia")):
        return DeviceRef(name=text), vgpu
    if id_type == "uid" or id_type is None:
        return DeviceRef(uuid=text), vgpu
    return None, vgpu


def mig_uuid(parent_uuid: str, instance_id: int) -> str:
    """The MIG device UUID of a simulated GPU instance. NVML gives real ones; the embedded engine has none, so
    one is derived, stably, from the parent GPU's UUID and the GPU instance id (what a fake kubelet lists)."""
    return f"MIG-{uuid.uuid5(uuid.NAMESPACE_URL, f'{parent_uuid}/gi{instance_id}')}"


def entities_of(snapshot: Snapshot) -> tuple[Entity, ...]:
    """The identity of each snapshot entity, in snapshot order; a MIG instance names its parent GPU."""
    uuids, minors, instances = snapshot.column(GPU_UUID_FIELD), snapshot.column(MINOR_FIELD), snapshot.instances
    entities = []
    for i, entity_id in enumerate(snapshot.entity_ids):
        instance = instances.get(entity_id) if instances else None
        gpu = instance.parent if instance is not None else entity_id
        gpu_uuid, name = str(uuids[i] or ""), f"nvidia{minors[i] if minors[i] is not None else gpu}"
        if instance is None:
            entities.append(Entity(gpu, gpu_uuid, name))
        else:
            gi = instance.instance_id
            entities.append(Entity(gpu, gpu_uuid, name, gi, mig_uuid(gpu_uuid, gi) if gpu_uuid else None))
    return tuple(entities)


class DeviceIndex:
    """Finds the snapshot position of the entity a DeviceRef names."""

    def __init__(self, entities: Sequence[Entity]) -> None:
        self.entities = tuple(entities)
        self._by_key: dict[tuple[str, object], int] = {}
        for position, entity in enumerate(self.entities):
            if entity.instance is None:
                self._by_key[("uuid", entity.uuid)] = position
                self._by_key[("name", entity.name)] = position
                self._by_key[("index", (entity.gpu, None))] = position
            else:
                self._by_key[("index", (entity.gpu, entity.instance))] = position
                if entity.mig_uuid:
                    self._by_key[("mig", entity.mig_uuid)] = position

    def find(self, ref: DeviceRef) -> int | None:
        if ref.uuid is not None:
            return self._by_key.get(("uuid", ref.uuid))
        if ref.name is not None:
            return self._by_key.get(("name", ref.name))
        if ref.mig_uuid is not None:
            return self._by_key.get(("mig", ref.mig_uuid))
        if ref.index is not None:
            return self._by_key.get(("index", (ref.index, ref.instance)))
        return None
