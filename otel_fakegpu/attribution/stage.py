"""The attribution stage: once per cycle, which workloads use each snapshot entity.

The source is asked once per cycle on a thread of its own. In the running exporter the fetch for the next
cycle starts ``timeout`` before that cycle is due, so the cycle finds the answer waiting and a slow kubelet
costs it nothing; without a cadence (tests, tools) the fetch starts with the cycle's engine read. A cycle waits
for an answer at most the timeout after the fetch began. When the source fails, the last good map stays in use
and its age grows; the failure is counted, and logged once per outage rather than every cycle. Nothing here
runs on a scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from otel_fakegpu.attribution.devices import GPU_UUID_FIELD, MINOR_FIELD, DeviceIndex, Entity, entities_of
from otel_fakegpu.attribution.fetcher import Answer, Fetcher
from otel_fakegpu.attribution.limits import MAX_WORKLOADS_PER_DEVICE, check_claims
from otel_fakegpu.attribution.model import LabelStyle, Pairs, WorkloadIdentity
from otel_fakegpu.attribution.source import Claims, Source, SourceError
from otel_fakegpu.engine import Snapshot

log = logging.getLogger(__name__)

Assignment = tuple[tuple[Pairs, ...], ...]
"""Per snapshot entity, the label sets of the workloads using it (empty: no workload)."""


@dataclass(frozen=True)
class AttributionStatus:
    """What /health and the self-metrics report; replaced whole, so readers on other threads see one moment."""

    source: str
    fetches_total: int = 0
    errors_total: int = 0
    last_ok_at: float | None = None  # wall-clock seconds of the last successful fetch
    last_error: str | None = None  # None while the source answers
    workloads: int = 0  # claims in the map in use
    attributed: int = 0  # entities of the last cycle with at least one workload

    def age_s(self, now: float) -> float | None:
        return None if self.last_ok_at is None else max(0.0, now - self.last_ok_at)

    def facts(self) -> dict[str, Any]:
        """The raw fields, JSON-able (they cross from a worker to the serving process); ``health_entry`` reads them."""
        return dict(self.__dict__)

    def as_dict(self, now: float) -> dict[str, Any]:
        age = self.age_s(now)
        state = "starting" if self.last_ok_at is None else "ok"
        if self.last_error is not None:
            state = "failing"
        return {
            "source": self.source,
            "state": state,
            "age_seconds": None if age is None else round(age, 3),
            "fetches_total": self.fetches_total,
            "errors_total": self.errors_total,
            "last_error": self.last_error,
            "workloads": self.workloads,
            "attributed_entities": self.attributed,
        }


def health_entry(facts: dict[str, Any], now: float) -> dict[str, Any]:
    """/health's ``attribution`` object from a stage's ``facts()``, the map's age taken at ``now``."""
    return AttributionStatus(**facts).as_dict(now)


class AttributionStage:
    """Owns one source; ``begin`` starts the cycle's fetch, ``assign`` finishes it and maps the snapshot."""

    def __init__(
        self,
        source: Source,
        style: LabelStyle,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
        identify: Callable[[Snapshot], tuple[Entity, ...]] = entities_of,
        interval_s: float | None = None,
    ) -> None:
        """``identify`` names each snapshot entity (UUID, nvidiaN, MIG instance) for matching device ids;
        ``interval_s``, the cycle's cadence, lets the next fetch start ``timeout_s`` before the cycle is due."""
        self.source = source
        self._identify = identify
        self._interval_s = interval_s
        self._fetcher = Fetcher(source, timeout_s, clock)
        self.style = style
        self.timeout_s = timeout_s
        self._claims: Claims = ()
        self._resolved: tuple[Claims, tuple[Entity, ...], Assignment] | None = None
        self._entities: tuple[tuple[object, ...], tuple[Entity, ...]] | None = None  # by identity columns
        self.status = AttributionStatus(source.name)

    def begin(self) -> None:
        """Have this cycle's fetch start now unless it already has (at most one per cycle)."""
        self._fetcher.request()

    def assign(self, snapshot: Snapshot) -> Assignment:
        """Take the cycle's answer (waiting at most ``timeout_s`` after its fetch began) and map each entity."""
        self.begin()
        outcome = self._fetcher.take()
        if outcome is not None:
            self._finish(outcome)
        if self._interval_s is not None:
            lead = min(self.timeout_s, self._interval_s / 2)
            self._fetcher.request(time.monotonic() + self._interval_s - lead)
        if not self._claims:  # nobody uses a GPU (the simulator without workloads): nothing to match
            if self.status.attributed:
                self.status = replace(self.status, attributed=0)
            return ((),) * len(snapshot)
        entities = self._entities_of(snapshot)
        cached = self._resolved
        if cached is not None and cached[0] is self._claims and cached[1] is entities:
            assignment = cached[2]
        else:
            assignment = self._resolve(entities)
            self._resolved = (self._claims, entities, assignment)
        attributed = sum(1 for sets in assignment if sets)
        if attributed != self.status.attributed:
            self.status = replace(self.status, attributed=attributed)
        return assignment

    def _entities_of(self, snapshot: Snapshot) -> tuple[Entity, ...]:
        """The entities' identities; last cycle's very tuple while the columns they come from are unchanged."""
        uuids, minors = snapshot.column(GPU_UUID_FIELD), snapshot.column(MINOR_FIELD)
        identity = (snapshot.entity_ids, uuids, minors, snapshot.instances)
        if self._entities is None or self._entities[0] != identity:
            self._entities = (identity, self._identify(snapshot))
        return self._entities[1]

    def _finish(self, outcome: Answer | SourceError) -> None:
        status = self.status
        if isinstance(outcome, SourceError):
            exc = outcome
            if status.last_error is None:
                kept = "no map yet" if status.last_ok_at is None else f"keeping the map of {status.workloads} workloads"
                log.warning("workload attribution: %s failed: %s (%s; logged once until it answers)",
                            self.source.name, exc, kept)  # fmt: skip
            self.status = replace(
                status, fetches_total=status.fetches_total + 1, errors_total=status.errors_total + 1,
                last_error=str(exc),
            )  # fmt: skip
            return
        claims = outcome.claims
        try:
            check_claims(claims, self.source.name)  # a bound the source did not apply itself
        except SourceError as exc:
            self._finish(exc)
            return
        if status.last_error is not None:
            log.warning("workload attribution: %s answers again (%d workloads)", self.source.name, len(claims))
        self._claims = claims
        self.status = replace(
            status, fetches_total=status.fetches_total + 1, last_ok_at=outcome.at, last_error=None,
            workloads=len(claims),
        )  # fmt: skip

    def _resolve(self, entities: tuple[Entity, ...]) -> Assignment:
        index = DeviceIndex(entities)
        per_entity: list[dict[Pairs, None]] = [{} for _ in entities]
        # A workload on several devices is labelled once. Equal pairs from an earlier map need not be the same
        # tuple: the pipeline's workload cache compares them by value.
        labels: dict[WorkloadIdentity, Pairs] = {}
        for claim in self._claims:
            position = index.find(claim.device)
            if position is None:
                continue
            pairs = labels.get(claim.workload)
            if pairs is None:
                pairs = labels[claim.workload] = self.style.labels(claim.workload)
            sets = per_entity[position]
            if len(sets) < MAX_WORKLOADS_PER_DEVICE:  # one device named several ways: the bound still holds
                sets[pairs] = None  # ordered, without repeats
        return tuple(tuple(sets) for sets in per_entity)

    def close(self) -> None:
        self._fetcher.close()
        self.source.close()
