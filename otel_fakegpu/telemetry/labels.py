"""The label contract of every GPU series (compat §1): gpu, UUID, pci_bus_id, device, modelName, on a MIG
instance GPU_I_PROFILE and GPU_I_ID, then Hostname, then label-type fields in collectors-file order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from otel_fakegpu.engine import GpuInstanceEntity, Snapshot
from otel_fakegpu.fields import Collector, Value

Attributes = Mapping[str, str]

_NAME, _UUID, _MINOR, _BUSID = 50, 54, 55, 57


def _text(value: Value | None) -> str:
    return "" if value is None else str(value)


class LabelScheme:
    """Builds the attribute set of each entity from its identity fields in a snapshot.

    Attribute dicts are reused while an entity's identity is unchanged, so steady-state cycles allocate
    nothing here and the SDK sees the same attribute sets cycle after cycle.
    """

    def __init__(self, hostname: str | None, label_fields: Sequence[Collector]) -> None:
        self._hostname = hostname
        self._label_fields = tuple(label_fields)
        self._cache: dict[tuple[object, ...], Attributes] = {}
        self._semconv_cache: dict[tuple[object, ...], Attributes] = {}

    @property
    def field_ids(self) -> tuple[int, ...]:
        """Fields the engine must read for labels."""
        return (_NAME, _UUID, _MINOR, _BUSID, *(c.field.id for c in self._label_fields))

    def attributes(self, snapshot: Snapshot) -> list[Attributes]:
        """One attribute dict per entity, in snapshot order."""
        names, uuids = snapshot.column(_NAME), snapshot.column(_UUID)
        minors, buses = snapshot.column(_MINOR), snapshot.column(_BUSID)
        extra_columns = [snapshot.column(c.field.id) for c in self._label_fields]
        result: list[Attributes] = []
        cache: dict[tuple[object, ...], Attributes] = {}
        instances = snapshot.instances
        for i, entity_id in enumerate(snapshot.entity_ids):
            key: tuple[object, ...] = (
                entity_id,
                names[i],
                uuids[i],
                minors[i],
                buses[i],
                *(col[i] for col in extra_columns),
            )
            if instances and entity_id in instances:
                key = (*key, instances[entity_id])
            attrs = self._cache.get(key)
            if attrs is None:
                attrs = self._build(key)
            cache[key] = attrs
            result.append(attrs)
        self._cache = cache  # forget entities that are gone
        return result

    def _build(self, key: tuple[object, ...]) -> Attributes:
        instance = key[-1] if isinstance(key[-1], GpuInstanceEntity) else None
        entity_id, name, uuid, minor, bus, *extra = key[:-1] if instance is not None else key
        gpu = instance.parent if instance is not None else entity_id
        attrs = {
            "gpu": str(gpu),
            "UUID": _text(uuid),  # type: ignore[arg-type]
            "pci_bus_id": _text(bus),  # type: ignore[arg-type]
            "device": f"nvidia{minor if minor is not None else gpu}",
            "modelName": _text(name),  # type: ignore[arg-type]
        }
        if instance is not None:
            # dcgm-exporter's template puts the MIG labels right after modelName.
            attrs["GPU_I_PROFILE"] = instance.profile
            attrs["GPU_I_ID"] = str(instance.instance_id)
        if self._hostname is not None:
            attrs["Hostname"] = self._hostname
        for collector, value in zip(self._label_fields, extra, strict=True):
            if value is not None:
                attrs[collector.name] = str(value)
        return attrs

    def semconv_attributes(self, snapshot: Snapshot) -> list[Attributes]:
        """OpenTelemetry hardware attributes per entity: ``hw.id`` (UUID), ``hw.type``, ``hw.name``, ``hw.vendor``."""
        names, uuids = snapshot.column(_NAME), snapshot.column(_UUID)
        result: list[Attributes] = []
        cache: dict[tuple[object, ...], Attributes] = {}
        for i, entity_id in enumerate(snapshot.entity_ids):
            key = (entity_id, names[i], uuids[i])
            attrs = self._semconv_cache.get(key)
            if attrs is None:
                instance = snapshot.instances.get(entity_id)
                hw_id = _text(uuids[i]) or f"gpu{entity_id}"
                attrs = {
                    # A MIG instance is hardware of its own: its id must not collide with its siblings'.
                    "hw.id": f"{hw_id}/gi{instance.instance_id}" if instance is not None else hw_id,
                    "hw.type": "gpu",
                    "hw.name": _text(names[i]),
                    "hw.vendor": "NVIDIA",
                }
            cache[key] = attrs
            result.append(attrs)
        self._semconv_cache = cache
        return result
