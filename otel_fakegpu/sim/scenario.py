"""A scenario: the fleet, its workloads and a timeline of events, in scenario seconds since the start.

``Timeline`` hands out what is due as scenario time advances, in the file's order for equal times, so a
seeded scenario plays out the same way update for update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_fakegpu.sim.events import GpuEvent
from otel_fakegpu.sim.host_events import HostEvent
from otel_fakegpu.sim.mig import MigLayout
from otel_fakegpu.sim.skus import GpuSku
from otel_fakegpu.sim.workloads import Workload


class ScenarioError(ValueError):
    """A bad scenario file; the message is ``FILE:LINE: reason``, one line."""


@dataclass(frozen=True)
class GpuGroup:
    """``count`` GPUs of one SKU; ``profile`` None: the command line's profiles; ``mig``: each GPU's layout."""

    count: int
    sku: GpuSku
    profile: str | None = None
    mig: MigLayout | None = None


@dataclass(frozen=True)
class ScheduledEvent:
    at_s: float
    gpu: int  # -1 for a host event
    event: GpuEvent | HostEvent
    line: int = 0  # where the file says it, for logs
    hosts: tuple[str, ...] = ()  # a host event: the hosts it is for (none named: every host)
    rack: str | None = None  # a host event: the rack it is for

    def for_host(self, name: str, rack: str) -> bool:
        """Whether a host event is for host ``name`` of ``rack`` (every host runs the same scenario)."""
        return (not self.hosts or name in self.hosts) and (self.rack is None or self.rack == rack)


@dataclass(frozen=True)
class Scenario:
    source: str
    seed: int | None = None
    time_scale: float = 1.0
    groups: tuple[GpuGroup, ...] = ()  # empty: the command line's fleet
    workloads: tuple[Workload, ...] = ()
    events: tuple[ScheduledEvent, ...] = ()
    hosts: tuple[Any, ...] = ()  # kept for fleet simulation; not used by a single host
    racks: tuple[tuple[str, tuple[str, ...]], ...] = ()  # hosts.racks: each rack's name and host names

    @property
    def gpu_count(self) -> int | None:
        return sum(g.count for g in self.groups) if self.groups else None

    def per_gpu(self, default_profiles: Sequence[str]) -> tuple[tuple[GpuSku, ...], tuple[str, ...]]:
        """SKU and profile of each GPU, in index order (profiles round-robin where the group names none)."""
        skus: list[GpuSku] = []
        profiles: list[str] = []
        for group in self.groups:
            for _ in range(group.count):
                skus.append(group.sku)
                profiles.append(group.profile or default_profiles[len(profiles) % len(default_profiles)])
        return tuple(skus), tuple(profiles)

    def mig_layouts(self) -> dict[int, MigLayout]:
        """GPU index -> its MIG layout, for the groups that partition their GPUs."""
        layouts: dict[int, MigLayout] = {}
        first = 0
        for group in self.groups:
            if group.mig is not None:
                layouts.update(dict.fromkeys(range(first, first + group.count), group.mig))
            first += group.count
        return layouts


@dataclass
class Timeline:
    """The scenario's events in firing order; ``due(t)`` returns those whose time has come, each once."""

    events: Sequence[ScheduledEvent]
    _next: int = field(default=0)

    def __post_init__(self) -> None:
        self.events = sorted(self.events, key=lambda e: e.at_s)  # stable: file order for equal times

    def due(self, t: float) -> list[ScheduledEvent]:
        start = self._next
        while self._next < len(self.events) and self.events[self._next].at_s <= t:
            self._next += 1
        return list(self.events[start : self._next])
