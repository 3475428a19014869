"""The DCGM field catalog: id, name, value type, unit and default metric kind of every field we know.

Ids and names follow DCGM's ``dcgm_fields.h``; where DCGM renamed a field, both spellings resolve to the
same entry and the name a collectors file uses is the name that is exported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from otel_fakegpu.fields.dcgm_names import DCGM_NAMES, DcgmNameTable
from otel_fakegpu.fields.field_table import FIELDS
from otel_fakegpu.fields.spec import ENTITY_GPU, ENTITY_LINK, ENTITY_SWITCH, FieldSpec, MetricKind, ValueType

__all__ = [
    "CATALOG", "ENTITY_GPU", "ENTITY_LINK", "ENTITY_SWITCH", "FIELDS", "IDENTITY_FIELD_IDS", "FieldCatalog",
    "FieldSpec", "MetricKind", "UnknownFieldError", "ValueType",
]  # fmt: skip


# The generated table's types and entities as the catalog spells them: binary blobs are text here (never a number),
# and fields of entities the engines do not read (CPUs, ConnectX, vGPUs) read from GPUs, where they are blank.
_VALUE_TYPES = {"int": ValueType.INT, "double": ValueType.DOUBLE, "str": ValueType.STRING, "binary": ValueType.STRING}
_ENTITIES = {"switch": ENTITY_SWITCH, "link": ENTITY_LINK}


class UnknownFieldError(LookupError):
    """A field name or id that the catalog does not hold."""


class FieldCatalog:
    """Lookup of fields by id or by any of their names: the detailed ``fields`` first, then any other name or id of
    the generated DCGM table ``names`` (a field the simulator does not produce: accepted, it yields no series)."""

    def __init__(self, fields: Iterable[FieldSpec], names: DcgmNameTable | None = None) -> None:
        self._names = names
        self._generated: dict[int, FieldSpec] = {}
        self._by_id: dict[int, FieldSpec] = {}
        self._by_name: dict[str, FieldSpec] = {}
        for spec in fields:
            if spec.id in self._by_id:
                raise ValueError(f"duplicate field id {spec.id}")
            self._by_id[spec.id] = spec
            for name in (spec.name, *spec.aliases):
                self._by_name[name] = spec

    def by_id(self, field_id: int) -> FieldSpec:
        spec = self._by_id.get(field_id) or self._from_table(field_id)
        if spec is None:
            raise UnknownFieldError(f"unknown DCGM field id {field_id}")
        return spec

    def by_name(self, name: str) -> FieldSpec:
        spec = self._by_name.get(name)
        if spec is None and self._names is not None and name in self._names.names:
            spec = self.by_id(self._names.names[name].id)  # a DCGM 4.6 name of a field known in detail, or not
        if spec is None:
            raise UnknownFieldError(f"unknown DCGM field {name!r}")
        return spec

    def _from_table(self, field_id: int) -> FieldSpec | None:
        """A plain spec of a DCGM field known only by the generated table: its type and entity, no unit."""
        if self._names is None or field_id not in self._names.by_id:
            return None
        if field_id not in self._generated:
            canonical, *aliases = self._names.by_id[field_id]
            value_type = _VALUE_TYPES.get(canonical.value_type, ValueType.INT)
            self._generated[field_id] = FieldSpec(
                field_id, canonical.name, value_type, "",
                MetricKind.LABEL if value_type is ValueType.STRING else MetricKind.GAUGE,
                f"DCGM field {field_id} ({canonical.name}).", tuple(a.name for a in aliases),
                entity=_ENTITIES.get(canonical.entity, ENTITY_GPU),
            )  # fmt: skip
        return self._generated[field_id]

    def lookup(self, key: str | int) -> FieldSpec:
        """A field by id (int or digits) or by name."""
        if isinstance(key, int):
            return self.by_id(key)
        return self.by_id(int(key)) if key.isdigit() else self.by_name(key)

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


CATALOG = FieldCatalog(FIELDS, DCGM_NAMES)

# Identity fields every engine answers for every GPU: they become the label set of each series.
IDENTITY_FIELD_IDS: tuple[int, ...] = (50, 54, 55, 57)
