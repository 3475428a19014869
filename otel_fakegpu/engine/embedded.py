"""The embedded engine: an in-process stand-in for a DCGM hostengine, the default when there is no GPU."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from otel_fakegpu.engine.base import Engine, EngineError, EngineState, EngineStatus
from otel_fakegpu.engine.entities import ENTITY_GROUPS, EntityTable
from otel_fakegpu.engine.snapshot import Column, GpuInstanceEntity, ProcessUsage, SampleBatch, Snapshot
from otel_fakegpu.fields import Value, is_blank
from otel_fakegpu.fields.blank import MAYBE_BLANK

log = logging.getLogger(__name__)

# Whatever the keep age, a watched field never holds more updates than this (a runaway injector).
MAX_KEPT_BATCHES = 100_000
# GPU instance entities are numbered from here, apart from GPUs (DCGM keeps them in a group of their own).
INSTANCE_ENTITY_BASE = 1_000_000


@dataclass
class _History:
    """Sample batches of one watched field, oldest first, each tagged with the update's sequence number."""

    max_keep_age_s: float
    batches: deque[tuple[int, SampleBatch]] = field(default_factory=lambda: deque(maxlen=MAX_KEPT_BATCHES))
    dropped_through: int = 0  # the newest update whose batch aged out

    def append(self, seq: int, batch: SampleBatch) -> None:
        if len(self.batches) == self.batches.maxlen:
            self.dropped_through = self.batches[0][0]
        self.batches.append((seq, batch))
        horizon = batch.timestamp - self.max_keep_age_s
        while self.batches and self.batches[0][1].timestamp < horizon:
            self.dropped_through = self.batches.popleft()[0]

    def since(self, after: int) -> tuple[SampleBatch, ...]:
        return tuple(batch for seq, batch in self.batches if seq > after)


class EmbeddedEngine(Engine):
    """Holds, per field, a column of latest values and timestamps, one slot per GPU entity.

    A field's column is one list, its values then their time stamps (``width`` each): a simulated host injects
    ~170 fields, and a list each for values and stamps cost a fleet 4-8 KB more per 8-GPU host (tracemalloc).

    Injected DCGM blank sentinels are stored as None, exactly as a reader of a real hostengine would see
    "no value". Readers and writers share one lock; a read copies columns into tuples and never waits on
    anything but a concurrent injection.
    """

    kind = "embedded"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # stamps reads; tests pass the simulator's clock so both agree on "now"
        self._lock = threading.Lock()
        self._entity_ids: list[int] = []
        self._slot: dict[int, int] = {}
        self._cells: dict[int, list[Value | None]] = {}  # per field: values, then stamps
        self._reads = 0
        self._histories: dict[int, _History] = {}
        self._updates = 0  # sequence number of the last update that stored samples
        self._instances: dict[int, GpuInstanceEntity] = {}
        self._children: dict[int, list[int]] = {}  # MIG-enabled GPU -> its instance entities
        self._exported: list[int] = []  # what reads return: GPUs, MIG-enabled ones replaced by their instances
        self._read_plan: list[tuple[int, int]] = []  # per exported entity: (its slot, parent slot or -1)
        self._tables: dict[str, EntityTable] = {}  # NVSwitches and links, apart from the GPU columns
        self._processes: dict[int, tuple[ProcessUsage, ...]] = {}  # entity id -> its compute processes

    def entity_ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._exported)

    def create_gpus(self, count: int) -> tuple[int, ...]:
        if count < 0:
            raise EngineError(f"cannot create {count} GPUs")
        with self._lock:
            first = len(self._entity_ids)
            new_ids = tuple(range(first, first + count))
            for entity_id in new_ids:
                self._slot[entity_id] = len(self._entity_ids)
                self._entity_ids.append(entity_id)
            self._widen(first, count)
            self._plan_reads()
            return new_ids

    def create_gpu_instances(self, parent: int, instances: Sequence[tuple[int, str]]) -> tuple[int, ...]:
        with self._lock:
            if parent not in self._slot or parent in self._instances:
                raise EngineError(f"no GPU entity {parent}")
            if parent in self._children:
                raise EngineError(f"GPU entity {parent} is already partitioned")
            first = INSTANCE_ENTITY_BASE + len(self._instances)
            new_ids = tuple(range(first, first + len(instances)))
            width = len(self._entity_ids)
            for entity_id, (instance_id, profile) in zip(new_ids, instances, strict=True):
                self._instances[entity_id] = GpuInstanceEntity(parent, instance_id, profile)
                self._slot[entity_id] = len(self._entity_ids)
                self._entity_ids.append(entity_id)
            self._widen(width, len(new_ids))
            self._children[parent] = list(new_ids)
            self._plan_reads()
            return new_ids

    def _widen(self, width: int, count: int) -> None:
        """``count`` new slots in every column that was ``width`` wide: no value, never stamped."""
        for cells in self._cells.values():
            cells[width:width] = [None] * count
            cells.extend([0.0] * count)

    def _plan_reads(self) -> None:
        exported: list[int] = []
        plan: list[tuple[int, int]] = []
        for entity_id in self._entity_ids:
            if entity_id in self._instances:
                continue
            children = self._children.get(entity_id)
            if children is None:
                exported.append(entity_id)
                plan.append((self._slot[entity_id], -1))
            else:
                exported.extend(children)
                plan.extend((self._slot[child], self._slot[entity_id]) for child in children)
        self._exported, self._read_plan = exported, plan

    def watch_samples(self, field_ids: Sequence[int], max_keep_age_s: float) -> None:
        if max_keep_age_s <= 0:
            raise EngineError(f"cannot keep samples for {max_keep_age_s} s")
        with self._lock:
            for field_id in field_ids:
                history = self._histories.get(field_id)
                if history is None:
                    self._histories[field_id] = _History(max_keep_age_s)
                else:
                    history.max_keep_age_s = max(history.max_keep_age_s, max_keep_age_s)

    def inject(self, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        self._store([(entity_id, {field_id: value}) for entity_id, field_id, value in updates], timestamp)

    def inject_rows(self, rows: Iterable[tuple[int, Mapping[int, Value | None]]], timestamp: float) -> None:
        # Drawn before the lock is taken: a simulator passes a generator that runs its physics, and a cycle's
        # read must not wait for that.
        self._store(list(rows), timestamp)

    def _store(self, rows: list[tuple[int, Mapping[int, Value | None]]], timestamp: float) -> None:
        with self._lock:
            width = len(self._entity_ids)
            slots = self._slot
            samples: dict[int, tuple[list[int], list[Value | None]]] = {}
            # Per field: its value column, its stamp column and its sample lists (None when not watched), looked
            # up once per call rather than once per reading: a fleet's worker injects millions of readings.
            columns: dict[int, tuple[list[Value | None], tuple[list[int], list[Value | None]] | None]]
            columns = {}
            for entity_id, readings in rows:
                slot = slots.get(entity_id)
                if slot is None:
                    raise EngineError(f"no GPU entity {entity_id}")
                stamp = width + slot
                for field_id, value in readings.items():
                    entry = columns.get(field_id)
                    if entry is None:
                        entry = columns[field_id] = self._columns_of(field_id, width, samples)
                    cells, sample = entry
                    plain = value == value and value not in MAYBE_BLANK  # noqa: PLR0124 - NaN: the full test (blank.py)
                    stored = cells[slot] = value if plain or not is_blank(value) else None
                    cells[stamp] = timestamp
                    if sample is not None:
                        sample[0].append(entity_id)
                        sample[1].append(stored)
            if samples:
                self._updates += 1
                for field_id, (ids, values) in samples.items():
                    self._histories[field_id].append(self._updates, SampleBatch(timestamp, tuple(ids), tuple(values)))

    def _columns_of(
        self, field_id: int, width: int, samples: dict[int, tuple[list[int], list[Value | None]]]
    ) -> tuple[list[Value | None], tuple[list[int], list[Value | None]] | None]:
        """``field_id``'s column (created on first use) and, if watched, its sample lists."""
        cells = self._cells.get(field_id)
        if cells is None:
            unset: list[Value | None] = [None] * width
            cells = self._cells[field_id] = unset + [0.0] * width  # exact size: extend() would over-allocate
        sample = samples.setdefault(field_id, ([], [])) if field_id in self._histories else None
        return cells, sample

    def read_latest(self, field_ids: Sequence[int], samples_after: int | None = None) -> Snapshot:
        with self._lock:
            self._reads += 1
            exported = tuple(self._exported)
            columns: dict[int, Column] = {}
            width = len(self._entity_ids)
            for field_id in field_ids:
                cells = self._cells.get(field_id)
                if cells is None:
                    columns[field_id] = (None,) * len(exported)
                elif not self._instances:
                    columns[field_id] = tuple(cells[:width])  # its values, not its stamps
                else:
                    columns[field_id] = self._instance_column(cells, width)
            instances = {eid: self._instances[eid] for eid in exported if eid in self._instances}
            now = self._clock()
            if samples_after is None:
                snapshot = Snapshot.build(exported, columns, now, instances=instances)
            else:
                samples = self._samples_since(samples_after)
                snapshot = Snapshot.build(exported, columns, now, samples, self._updates, instances)
            processes = {eid: self._processes[eid] for eid in exported if eid in self._processes}
            return snapshot.with_groups(self._read_groups(field_ids, now)).with_processes(processes)

    def inject_processes(self, processes: Mapping[int, tuple[ProcessUsage, ...]]) -> None:
        with self._lock:
            self._processes.update({eid: procs for eid, procs in processes.items() if procs})
            for eid in [eid for eid, procs in processes.items() if not procs]:
                self._processes.pop(eid, None)

    def _instance_column(self, cells: list[Value | None], width: int) -> Column:
        """An instance's own value where it has one (it was ever stamped), else its parent GPU's."""
        plan = self._read_plan
        return tuple(cells[slot] if parent < 0 or cells[width + slot] else cells[parent] for slot, parent in plan)

    def _read_groups(self, field_ids: Sequence[int], now: float) -> dict[str, Snapshot]:
        groups = {}
        for group, table in self._tables.items():
            read = table.snapshot(field_ids, now)
            if read is not None:
                groups[group] = read
        return groups

    def create_entities(self, group: str, entity_ids: Sequence[int]) -> tuple[int, ...]:
        if group not in ENTITY_GROUPS:
            raise EngineError(f"unknown entity group {group!r}")
        with self._lock:
            try:
                return self._tables.setdefault(group, EntityTable()).add(entity_ids)
            except ValueError as exc:
                raise EngineError(str(exc)) from None

    def inject_entities(self, group: str, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        self._change_table(group, lambda table: table.set_all(updates))

    def inject_entity_field(
        self, group: str, field_id: int, entity_ids: Sequence[int], value: Value | None, timestamp: float
    ) -> None:
        self._change_table(group, lambda table: table.fill(field_id, entity_ids, value))

    def _change_table(self, group: str, change: Callable[[EntityTable], None]) -> None:
        with self._lock:
            try:  # a group never created has no entities: its first update is refused
                change(self._tables.get(group, EntityTable()))
            except KeyError as exc:
                raise EngineError(f"no {group} entity {exc.args[0]}") from None

    def _samples_since(self, after: int) -> dict[int, tuple[SampleBatch, ...]]:
        for field_id, history in self._histories.items():
            if history.dropped_through > after:
                log.warning(
                    "samples of field %d aged out before they were read (kept %.0f s): events were lost",
                    field_id,
                    history.max_keep_age_s,
                )
        return {field_id: history.since(after) for field_id, history in self._histories.items()}

    def latest_timestamp(self, entity_id: int, field_id: int) -> float:
        """When (entity, field) was last injected; 0.0 if never."""
        with self._lock:
            cells = self._cells.get(field_id)
            return float(cells[len(self._entity_ids) + self._slot[entity_id]] or 0.0) if cells is not None else 0.0

    # status() and reads_total are asked by HTTP handlers on the event loop. They read one int without the
    # lock (atomic under the GIL): the lock is held for whole injection batches (about 0.1 s at 4096 GPUs),
    # and waiting for it would stall every scrape on the loop.
    def status(self) -> EngineStatus:
        instances = len(self._instances)
        count = len(self._entity_ids) - instances
        if count == 0:
            return EngineStatus(self.kind, EngineState.STARTING, "no GPU entities yet")
        detail = f"{count} GPU entities" + (f", {instances} MIG GPU instances" if instances else "")
        return EngineStatus(self.kind, EngineState.OK, detail)

    @property
    def reads_total(self) -> int:
        return self._reads
