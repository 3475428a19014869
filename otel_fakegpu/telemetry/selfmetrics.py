"""The exporter's own metrics: declared as data, observed once per cycle like every other instrument."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

Reading = tuple[float | int, Mapping[str, str]]


@dataclass(frozen=True)
class SelfMetric:
    """One self-metric; ``read`` returns its points (value, attributes) at collection time."""

    name: str
    counter: bool
    unit: str
    help: str
    read: Callable[[], Iterable[Reading]]


def single(read: Callable[[], float | int | None]) -> Callable[[], Iterable[Reading]]:
    """Adapt a reader of one unlabelled value (None: no point this cycle)."""

    def points() -> Iterable[Reading]:
        value = read()
        return [] if value is None else [(value, {})]

    return points


class ResultCounter:
    """How often something occasional (a reload) succeeded and failed: one self-metric labelled ``result``."""

    def __init__(self, name: str, help_text: str) -> None:
        self._lock = threading.Lock()
        self._counts = {"ok": 0, "failed": 0}
        self.metric = SelfMetric(name, True, "{event}", help_text, self._read)

    def record(self, ok: bool) -> None:
        with self._lock:
            self._counts["ok" if ok else "failed"] += 1

    def _read(self) -> list[Reading]:
        with self._lock:
            return [(count, {"result": result}) for result, count in self._counts.items()]


def merge_by_name(metrics: Iterable[SelfMetric]) -> list[SelfMetric]:
    """One SelfMetric per name, in first-seen order: several sources (one per push target) of the same family
    become one instrument whose points are all of theirs, told apart by their attributes. Two instruments of
    one name would print the family twice, which Prometheus refuses."""
    groups: dict[str, list[SelfMetric]] = {}
    for metric in metrics:
        groups.setdefault(metric.name, []).append(metric)
    return [group[0] if len(group) == 1 else _joined(group) for group in groups.values()]


def _joined(group: list[SelfMetric]) -> SelfMetric:
    first = group[0]
    if any((m.counter, m.unit) != (first.counter, first.unit) for m in group):
        raise ValueError(f"self-metric {first.name} is declared differently by its sources")
    reads = [m.read for m in group]

    def points() -> Iterable[Reading]:
        return [reading for read in reads for reading in read()]

    return SelfMetric(first.name, first.counter, first.unit, first.help, points)
