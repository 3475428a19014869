"""What a DCGM field is: its value type, the entity it belongs to, how it is exported, and its spec."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ValueType(enum.Enum):
    """How DCGM stores a field's value."""

    INT = "int"
    DOUBLE = "double"
    STRING = "str"


# Which DCGM entities a field belongs to (DCGM's entity level): GPUs, NVSwitches, or the NVLinks of a switch.
ENTITY_GPU = "gpu"
ENTITY_SWITCH = "switch"
ENTITY_LINK = "link"


class MetricKind(enum.Enum):
    """How dcgm-exporter exposes a field (the collectors CSV's second column)."""

    GAUGE = "gauge"
    COUNTER = "counter"
    LABEL = "label"


@dataclass(frozen=True)
class FieldSpec:
    """One DCGM field. ``unit`` is UCUM (the OpenTelemetry convention); ``aliases`` are other spellings."""

    id: int
    name: str
    value_type: ValueType
    unit: str
    kind: MetricKind
    help: str
    aliases: tuple[str, ...] = ()
    counts_field: int | None = None  # computed by the exporter: events of this DCGM field in a sliding window
    entity: str = ENTITY_GPU  # ENTITY_SWITCH / ENTITY_LINK: read from those entities, labelled as dcgm-exporter does
    derived_from: tuple[int, ...] = ()  # computed by the exporter from these fields of each GPU (9003, 9004)

    @property
    def is_computed(self) -> bool:
        """Not read from the engine: counted from the samples of ``counts_field`` (DCGM_EXP_*_COUNT)."""
        return self.counts_field is not None or bool(self.derived_from)

    @property
    def is_profiling(self) -> bool:
        """Profiling ("DCP") fields live in 1000-1099 and are not available on every GPU."""
        return 1000 <= self.id < 1100
