"""The label contract of every GPU series (compat §1): gpu, UUID, pci_bus_id, device, modelName, on a MIG
instance GPU_I_PROFILE and GPU_I_ID, then the host label (Hostname, or hostname from dcgm-exporter 4.8.3 on), then
label-type fields in collectors-file order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from otel_fakegpu.engine import GpuInstanceEntity, Snapshot, link_parts
from otel_fakegpu.fields import ENTITY_LINK, Collector, Value
from otel_fakegpu.telemetry.sdk_fastpath import frozen

Attributes = Mapping[str, str]

_NAME, _UUID, _MINOR, _BUSID = 50, 54, 55, 57
# Label-type fields that belong to no entity (DCGM's FE_NONE): dcgm-exporter puts them on switch and link series too.
_GLOBAL_FIELDS = frozenset((1, 2))

# Label styles: dcgm-exporter's contract, or the seed prototype's (gpu and device only, GPUs numbered from 1).
DCGM_EXPORTER_STYLE = "dcgm-exporter"
PROTOTYPE_STYLE = "dcgm-fake-gpu-exporter"
LABEL_STYLES = (DCGM_EXPORTER_STYLE, PROTOTYPE_STYLE)


def _text(value: Value | None) -> str:
    return "" if value is None else str(value)


class LabelScheme:
    """Builds the attribute set of each entity from its identity fields in a snapshot.

    Attribute dicts are reused while an entity's identity is unchanged, so steady-state cycles allocate
    nothing here and the SDK sees the same attribute sets cycle after cycle.
    """

    def __init__(
        self,
        hostname: str | None,
        label_fields: Sequence[Collector],
        style: str = DCGM_EXPORTER_STYLE,
        uuid_label: str = "UUID",
        host_label: str = "Hostname",
    ) -> None:
        """``uuid_label`` is ``uuid`` under dcgm-exporter's ``-o/--use-old-namespace``; ``host_label`` is the
        served release's (``ExporterRelease.host_label``)."""
        if style not in LABEL_STYLES:
            raise ValueError(f"unknown label style {style!r}")
        self._prototype = style == PROTOTYPE_STYLE
        self._hostname = hostname
        self._uuid_label = uuid_label
        self._host_label = host_label
        self._label_fields = tuple(label_fields)
        self._cache: dict[tuple[object, ...], Attributes] = {}
        self._semconv_cache: dict[tuple[object, ...], Attributes] = {}
        self._entity_cache: dict[tuple[object, ...], list[Attributes]] = {}
        # Last cycle's identity columns and result: most cycles find them equal and skip the per-entity keys.
        self._last: tuple[tuple[object, ...], list[Attributes]] | None = None
        self._last_semconv: tuple[tuple[object, ...], list[Attributes]] | None = None

    @property
    def field_ids(self) -> tuple[int, ...]:
        """Fields the engine must read for labels."""
        return (_NAME, _UUID, _MINOR, _BUSID, *(c.field.id for c in self._label_fields))

    def attributes(self, snapshot: Snapshot) -> list[Attributes]:
        """One attribute dict per entity, in snapshot order; last cycle's very list while no identity changed
        (callers must not change it)."""
        names, uuids = snapshot.column(_NAME), snapshot.column(_UUID)
        minors, buses = snapshot.column(_MINOR), snapshot.column(_BUSID)
        extra_columns = [snapshot.column(c.field.id) for c in self._label_fields]
        identity = (snapshot.entity_ids, names, uuids, minors, buses, *extra_columns, snapshot.instances)
        if self._last is not None and self._last[0] == identity:
            return self._last[1]
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
        self._last = (identity, result)
        return result

    def _build(self, key: tuple[object, ...]) -> Attributes:
        instance = key[-1] if isinstance(key[-1], GpuInstanceEntity) else None
        entity_id, name, uuid, minor, bus, *extra = key[:-1] if instance is not None else key
        gpu = instance.parent if instance is not None else entity_id
        if self._prototype:
            # The prototype hid DCGM's GPU 0 behind a placeholder and numbered the GPUs it showed from 1.
            number = (minor if isinstance(minor, int) else gpu) + 1  # type: ignore[operator]
            return frozen({"gpu": str(number), "device": f"nvidia{number}"})
        attrs = {
            "gpu": str(gpu),
            self._uuid_label: _text(uuid),  # type: ignore[arg-type]
            "pci_bus_id": _text(bus),  # type: ignore[arg-type]
            "device": f"nvidia{minor if minor is not None else gpu}",
            "modelName": _text(name),  # type: ignore[arg-type]
        }
        if instance is not None:
            # dcgm-exporter's template puts the MIG labels right after modelName.
            attrs["GPU_I_PROFILE"] = instance.profile
            attrs["GPU_I_ID"] = str(instance.instance_id)
        if self._hostname is not None:
            attrs[self._host_label] = self._hostname
        for collector, value in zip(self._label_fields, extra, strict=True):
            if value is not None:
                attrs[collector.name] = str(value)
        return frozen(attrs)

    def entity_attributes(self, group: str, entities: Snapshot, gpus: Snapshot) -> list[Attributes]:
        """Labels of NVSwitch (``nvswitch="0"``) or link (``nvlink="3",nvswitch="nvswitch0"``) series, as
        dcgm-exporter prints them: then the host label and the entity-less label fields (the driver version)."""
        tail: dict[str, str] = {} if self._hostname is None else {self._host_label: self._hostname}
        for collector in self._label_fields:
            if collector.field.id in _GLOBAL_FIELDS:
                value = next((v for v in gpus.column(collector.field.id) if v is not None), None)
                if value is not None:
                    tail[collector.name] = str(value)
        key = (group, entities.entity_ids, tuple(tail.items()))
        cached = self._entity_cache.get(key)
        if cached is not None:
            return cached
        result: list[Attributes]
        if group == ENTITY_LINK:
            parts = [link_parts(eid) for eid in entities.entity_ids]
            result = [frozen({"nvlink": str(port), "nvswitch": f"nvswitch{switch}", **tail}) for switch, port in parts]
        else:
            result = [frozen({"nvswitch": str(eid), **tail}) for eid in entities.entity_ids]
        self._entity_cache = {k: v for k, v in self._entity_cache.items() if k[0] != group}
        self._entity_cache[key] = result
        return result

    def semconv_attributes(self, snapshot: Snapshot) -> list[Attributes]:
        """OpenTelemetry hardware attributes per entity: ``hw.id`` (UUID), ``hw.type``, ``hw.name``, ``hw.vendor``;
        last cycle's very list while no identity changed."""
        names, uuids = snapshot.column(_NAME), snapshot.column(_UUID)
        identity = (snapshot.entity_ids, names, uuids, snapshot.instances)
        if self._last_semconv is not None and self._last_semconv[0] == identity:
            return self._last_semconv[1]
        result: list[Attributes] = []
        cache: dict[tuple[object, ...], Attributes] = {}
        for i, entity_id in enumerate(snapshot.entity_ids):
            instance = snapshot.instances.get(entity_id)
            key = (entity_id, names[i], uuids[i], instance)  # hw.id names the instance
            attrs = self._semconv_cache.get(key)
            if attrs is None:
                hw_id = _text(uuids[i]) or f"gpu{entity_id}"
                attrs = frozen(
                    {
                        # A MIG instance is hardware of its own: its id must not collide with its siblings'.
                        "hw.id": f"{hw_id}/gi{instance.instance_id}" if instance is not None else hw_id,
                        "hw.type": "gpu",
                        "hw.name": _text(names[i]),
                        "hw.vendor": "NVIDIA",
                    }
                )
            cache[key] = attrs
            result.append(attrs)
        self._semconv_cache = cache
        self._last_semconv = (identity, result)
        return result
