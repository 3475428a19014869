"""Event samples from DCGM: every value of the watched event fields (XIDs, clock-event reasons) stored since a
timestamp, through ``dcgmGetValuesSince_v2`` and its per-entity callback, as dcgm-exporter counts them."""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any

from otel_fakegpu.engine.dcgm_values import read_value
from otel_fakegpu.engine.snapshot import SampleBatch
from otel_fakegpu.fields import Value

# (timestamp in µs, field id) -> [(seam entity id, value)]
Collected = dict[tuple[int, int], list[tuple[int, Value]]]


class _Sink:
    """What the callback fills: values of the GPUs the engine reads, keyed by sample time and field."""

    def __init__(self, entity_of: Mapping[int, int], gpu_group: int) -> None:
        self.entity_of = entity_of
        self.gpu_group = gpu_group
        self.collected: Collected = {}

    def take(self, entity_group: int, dcgm_id: int, values: Any, count: int) -> None:
        entity = self.entity_of.get(dcgm_id)
        if entity_group != self.gpu_group or entity is None:
            return
        for i in range(count):
            fv = values[i]
            value = read_value(fv)
            if value is not None:
                self.collected.setdefault((int(fv.ts), int(fv.fieldId)), []).append((entity, value))


def _on_values(entity_group: int, entity_id: int, values: Any, count: int, user_data: Any) -> int:
    sink: _Sink = ctypes.cast(user_data, ctypes.py_object).value
    sink.take(entity_group, entity_id, values, count)
    return 0


def read_samples_since(
    agent: Any, handle: Any, group: Any, field_group: Any, since_us: int, entity_of: Mapping[int, int], gpu_group: int
) -> tuple[dict[int, tuple[SampleBatch, ...]], int]:
    """Samples per field, oldest first, batched by DCGM timestamp; and where the next call continues."""
    sink = _Sink(entity_of, gpu_group)
    callback = agent.dcgmFieldValueEntityEnumeration_f(_on_values)
    next_since = int(agent.dcgmGetValuesSince_v2(handle, group, field_group, since_us, callback, sink))
    samples: dict[int, list[SampleBatch]] = {}
    for (ts, field_id), pairs in sorted(sink.collected.items()):
        batch = SampleBatch(ts / 1e6, tuple(e for e, _ in pairs), tuple(v for _, v in pairs))
        samples.setdefault(field_id, []).append(batch)
    return {field_id: tuple(batches) for field_id, batches in samples.items()}, max(next_since, since_us)
