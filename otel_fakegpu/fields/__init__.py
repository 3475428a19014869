"""Floor 2: what DCGM fields exist (catalog), which ones to export (collectors CSV), and blank values."""

from otel_fakegpu.fields.blank import Value, blank_for, is_blank
from otel_fakegpu.fields.catalog import (
    CATALOG,
    ENTITY_GPU,
    ENTITY_LINK,
    ENTITY_SWITCH,
    IDENTITY_FIELD_IDS,
    FieldCatalog,
    FieldSpec,
    MetricKind,
    UnknownFieldError,
    ValueType,
)
from otel_fakegpu.fields.collectors import (
    Collector,
    CollectorsError,
    CollectorSet,
    collectors_preset_path,
    default_collectors_path,
    load_collectors,
    merge_collectors,
    parse_collectors,
)
from otel_fakegpu.fields.events import CLOCK_EVENTS_COUNT_FIELD, EVENT_DECODERS, XID_COUNT_FIELD, EventDecoder

__all__ = [
    "CATALOG",
    "CLOCK_EVENTS_COUNT_FIELD",
    "ENTITY_GPU",
    "ENTITY_LINK",
    "ENTITY_SWITCH",
    "EVENT_DECODERS",
    "IDENTITY_FIELD_IDS",
    "XID_COUNT_FIELD",
    "Collector",
    "CollectorSet",
    "CollectorsError",
    "EventDecoder",
    "FieldCatalog",
    "FieldSpec",
    "MetricKind",
    "UnknownFieldError",
    "Value",
    "ValueType",
    "blank_for",
    "collectors_preset_path",
    "default_collectors_path",
    "is_blank",
    "load_collectors",
    "merge_collectors",
    "parse_collectors",
]
