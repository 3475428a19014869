"""Between DCGM's C structs and plain values: reading a dcgmFieldValue_v2, building a dcgmInjectFieldValue_v1.

DCGM tags each value with a one-character type (``dcgm_fields.DCGM_FT_*``) stored as its ordinal.
"""

from __future__ import annotations

from typing import Any

from otel_fakegpu.fields import CATALOG, UnknownFieldError, Value, ValueType, blank_for, is_blank

FT_INT64, FT_DOUBLE, FT_STRING, FT_TIMESTAMP = (ord(c) for c in "idst")


def read_value(fv: Any) -> Value | None:
    """The value of one returned field value; None for an error status, a blank sentinel or a blob."""
    if fv.status != 0:
        return None
    kind = fv.fieldType
    value: Value
    if kind in (FT_INT64, FT_TIMESTAMP):
        value = int(fv.value.i64)
    elif kind == FT_DOUBLE:
        value = float(fv.value.dbl)
    elif kind == FT_STRING:
        raw = fv.value.str
        value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    else:  # binary blobs carry structures no collector exports
        return None
    return None if is_blank(value) else value


def _declared_type(field_id: int) -> ValueType:
    try:
        return CATALOG.by_id(field_id).value_type
    except UnknownFieldError:
        return ValueType.INT


def inject_struct(structs_internal: Any, field_id: int, value: Value | None, ts_us: int) -> Any:
    """A c_dcgmInjectFieldValue_v1 for ``value`` (None injects the field's blank sentinel)."""
    if value is None:
        value = blank_for(_declared_type(field_id))
    fv = structs_internal.c_dcgmInjectFieldValue_v1()
    fv.version = structs_internal.dcgmInjectFieldValue_version1
    fv.fieldId = field_id
    fv.status = 0
    fv.ts = ts_us
    if isinstance(value, str):
        fv.fieldType = FT_STRING
        fv.value.str = value.encode()
    elif isinstance(value, float):
        fv.fieldType = FT_DOUBLE
        fv.value.dbl = value
    else:
        fv.fieldType = FT_INT64
        fv.value.i64 = int(value)
    return fv


class DefinedFields:
    """Whether the loaded DCGM library defines a field id (``dcgm_fields.DcgmFieldGetById``), asked once per id. A
    hostengine refuses to inject a field its DCGM does not know (DCGM 4.6's new ones on an older DCGM), and one
    refusal would fail the whole update; such a field is left out instead, and reads blank."""

    def __init__(self, fields_module: Any) -> None:
        self._lookup = getattr(fields_module, "DcgmFieldGetById", None)
        self._known: dict[int, bool] = {}

    def __call__(self, field_id: int) -> bool:
        known = self._known.get(field_id)
        if known is None:
            known = self._known[field_id] = self._lookup is None or self._lookup(field_id) is not None
        return known
