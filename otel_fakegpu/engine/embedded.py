"""The embedded engine: an in-process stand-in for a DCGM hostengine, the default when there is no GPU."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

from otel_fakegpu.engine.base import Engine, EngineError, EngineState, EngineStatus
from otel_fakegpu.engine.snapshot import Column, Snapshot
from otel_fakegpu.fields import Value, is_blank


class EmbeddedEngine(Engine):
    """Holds, per field, a column of latest values and timestamps, one slot per GPU entity.

    Injected DCGM blank sentinels are stored as None, exactly as a reader of a real hostengine would see
    "no value". Readers and writers share one lock; a read copies columns into tuples and never waits on
    anything but a concurrent injection.
    """

    kind = "embedded"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entity_ids: list[int] = []
        self._slot: dict[int, int] = {}
        self._values: dict[int, list[Value | None]] = {}
        self._stamps: dict[int, list[float]] = {}
        self._reads = 0

    def entity_ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._entity_ids)

    def create_gpus(self, count: int) -> tuple[int, ...]:
        if count < 0:
            raise EngineError(f"cannot create {count} GPUs")
        with self._lock:
            first = len(self._entity_ids)
            new_ids = tuple(range(first, first + count))
            for entity_id in new_ids:
                self._slot[entity_id] = len(self._entity_ids)
                self._entity_ids.append(entity_id)
            for column in self._values.values():
                column.extend([None] * count)
            for stamps in self._stamps.values():
                stamps.extend([0.0] * count)
            return new_ids

    def inject(self, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        with self._lock:
            width = len(self._entity_ids)
            for entity_id, field_id, value in updates:
                slot = self._slot.get(entity_id)
                if slot is None:
                    raise EngineError(f"no GPU entity {entity_id}")
                column = self._values.get(field_id)
                if column is None:
                    column = self._values[field_id] = [None] * width
                    self._stamps[field_id] = [0.0] * width
                column[slot] = None if is_blank(value) else value
                self._stamps[field_id][slot] = timestamp

    def read_latest(self, field_ids: Sequence[int]) -> Snapshot:
        with self._lock:
            self._reads += 1
            width = len(self._entity_ids)
            columns: dict[int, Column] = {}
            for field_id in field_ids:
                column = self._values.get(field_id)
                columns[field_id] = tuple(column) if column is not None else (None,) * width
            return Snapshot.build(tuple(self._entity_ids), columns, time.time())

    def latest_timestamp(self, entity_id: int, field_id: int) -> float:
        """When (entity, field) was last injected; 0.0 if never."""
        with self._lock:
            stamps = self._stamps.get(field_id)
            return stamps[self._slot[entity_id]] if stamps is not None else 0.0

    # status() and reads_total are asked by HTTP handlers on the event loop. They read one int without the
    # lock (atomic under the GIL): the lock is held for whole injection batches (about 0.1 s at 4096 GPUs),
    # and waiting for it would stall every scrape on the loop.
    def status(self) -> EngineStatus:
        count = len(self._entity_ids)
        if count == 0:
            return EngineStatus(self.kind, EngineState.STARTING, "no GPU entities yet")
        return EngineStatus(self.kind, EngineState.OK, f"{count} GPU entities")

    @property
    def reads_total(self) -> int:
        return self._reads
