"""The exporter's own metrics: declared as data, observed once per cycle like every other instrument."""

from __future__ import annotations

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
