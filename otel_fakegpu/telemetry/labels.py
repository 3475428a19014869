"""The label contract of every GPU series (compat §1): gpu, UUID, pci_bus_id, device, modelName, Hostname,
then label-type fields in collectors-file order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from otel_fakegpu.engine import Snapshot
from otel_fakegpu.fields import Collector, Value

Attributes = Mapping[str, str]

_NAME, _UUID, _MINOR, _BUSID = 50, 54, 55, 57

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
        self, hostname: str | None, label_fields: Sequence[Collector], style: str = DCGM_EXPORTER_STYLE
    ) -> None:
        if style not in LABEL_STYLES:
            raise ValueError(f"unknown label style {style!r}")
        self._prototype = style == PROTOTYPE_STYLE
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
        for i, entity_id in enumerate(snapshot.entity_ids):
            key = (entity_id, names[i], uuids[i], minors[i], buses[i], *(col[i] for col in extra_columns))
            attrs = self._cache.get(key)
            if attrs is None:
                attrs = self._build(key)
            cache[key] = attrs
            result.append(attrs)
        self._cache = cache  # forget entities that are gone
        return result

    def _build(self, key: tuple[object, ...]) -> Attributes:
        entity_id, name, uuid, minor, bus, *extra = key
        if self._prototype:
            # The prototype hid DCGM's GPU 0 behind a placeholder and numbered the GPUs it showed from 1.
            number = (minor if isinstance(minor, int) else entity_id) + 1  # type: ignore[operator]
            return {"gpu": str(number), "device": f"nvidia{number}"}
        attrs = {
            "gpu": str(entity_id),
            "UUID": _text(uuid),  # type: ignore[arg-type]
            "pci_bus_id": _text(bus),  # type: ignore[arg-type]
            "device": f"nvidia{minor if minor is not None else entity_id}",
            "modelName": _text(name),  # type: ignore[arg-type]
        }
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
                attrs = {
                    "hw.id": _text(uuids[i]) or f"gpu{entity_id}",
                    "hw.type": "gpu",
                    "hw.name": _text(names[i]),
                    "hw.vendor": "NVIDIA",
                }
            cache[key] = attrs
            result.append(attrs)
        self._semconv_cache = cache
        return result
