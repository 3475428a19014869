"""Every event applied to the fleet (control API or scenario), with an id to undo it by: held by the serving process,
so it outlives a reload (SIGHUP) and a worker's restart. Bounded: the oldest records go first, and are counted."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_RECORDS = 1000


@dataclass
class EventRecord:
    """One applied event: ``targets`` maps each host it touched to its GPUs, ``undo`` each host to its token."""

    id: int
    wall_time: float
    scenario_time_s: float | None
    source: str  # "api" or "scenario"
    event: Mapping[str, Any]
    targets: dict[str, list[int]]
    undo: dict[str, Any] = field(default_factory=dict)  # host -> token; empty when the event cannot be undone
    undone_at: float | None = None

    @property
    def kind(self) -> str:
        return next(iter(self.event), "")

    def view(self) -> dict[str, Any]:
        """The record as the control API lists it (tokens stay inside)."""
        return {
            "id": self.id,
            "wall_time": round(self.wall_time, 3),
            "scenario_time_s": self.scenario_time_s,
            "source": self.source,
            "kind": self.kind,
            "event": dict(self.event),
            "targets": [{"host": host, "gpus": gpus} for host, gpus in self.targets.items()],
            "undoable": bool(self.undo) and self.undone_at is None,
            "undone_at": None if self.undone_at is None else round(self.undone_at, 3),
        }


class EventHistory:
    """Records by id, oldest first; at most ``limit`` of them."""

    def __init__(self, limit: int = MAX_RECORDS) -> None:
        self._records: OrderedDict[int, EventRecord] = OrderedDict()
        self._ids = itertools.count(1)
        self._limit = limit
        self.dropped = 0

    def add(
        self,
        source: str,
        event: Mapping[str, Any],
        targets: dict[str, list[int]],
        undo: dict[str, Any],
        scenario_time_s: float | None,
        wall_time: float | None = None,
    ) -> EventRecord:
        record = EventRecord(next(self._ids), wall_time or time.time(), scenario_time_s, source, event, targets, undo)
        self._records[record.id] = record
        while len(self._records) > self._limit:
            self._records.popitem(last=False)
            self.dropped += 1
        return record

    def get(self, record_id: int) -> EventRecord | None:
        return self._records.get(record_id)

    def listing(self, host: str | None = None, gpu: int | None = None, kind: str | None = None) -> dict[str, Any]:
        """The records that touched ``host`` (and ``gpu`` of it), of ``kind``; with how many were dropped."""
        chosen = [
            r.view()
            for r in self._records.values()
            if (host is None or host in r.targets)
            and (gpu is None or any(gpu in gpus for h, gpus in r.targets.items() if host is None or h == host))
            and (kind is None or r.kind == kind)
        ]
        return {"events": chosen, "dropped": self.dropped, "limit": self._limit}
