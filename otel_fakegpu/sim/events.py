"""The event vocabulary shared by scenario files and the live control API: one event for one GPU.

``parse_event`` turns ``{"xid": 79}``, ``{"ecc": {"dbe": 1}}``, ``{"fault": "fall_off_bus"}``,
``{"fabric": "degraded"}`` ... into a
``GpuEvent``; a bad one raises ``EventError`` naming the key at fault, so a file loader can point at its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from otel_fakegpu.sim.board import FABRIC_STATES

FAULTS = ("fall_off_bus", "recover", "thermal_runaway", "power_brake")
ROW_REMAP_STATES = ("pending", "failure")
EVENT_KINDS = ("xid", "ecc", "retired_pages", "row_remap", "nvlink_crc", "pcie_replay", "fault", "load", "fabric")
MAX_XID = 1023  # XIDs are small numbers; NVIDIA's table ends well below this
MAX_BURST = 1_000_000  # errors one event may add: enough for a storm, bounded for a fuzzer


class EventError(ValueError):
    """A bad event; ``key`` is the offending key (for FILE:LINE), None when the event as a whole is wrong."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class GpuEvent:
    """One thing that happens to a GPU. ``counts`` holds the numbers of bursts (ecc, retired_pages)."""

    kind: str
    code: int = 0  # xid code; error count for nvlink_crc / pcie_replay
    name: str = ""  # fault or row-remap state
    counts: tuple[tuple[str, int], ...] = ()
    load: float | None = None  # load override; None releases it

    def describe(self) -> dict[str, object]:
        """The event as the vocabulary writes it (for logs and the control API's answers)."""
        if self.kind == "xid" or self.kind in ("nvlink_crc", "pcie_replay"):
            return {self.kind: self.code}
        if self.kind in ("fault", "row_remap", "fabric"):
            return {self.kind: self.name}
        if self.kind == "load":
            return {"load": self.load}
        return {self.kind: dict(self.counts)}


def _count(value: object, key: str, low: int = 0, high: int = MAX_BURST) -> int:
    if type(value) is not int or not low <= value <= high:
        raise EventError(f"{key}: expected a whole number from {low} to {high}, got {value!r}", key)
    return value


def _counts(value: object, key: str, allowed: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, Mapping) or not value:
        raise EventError(f"{key}: expected a mapping of {', '.join(allowed)} to counts, got {value!r}", key)
    counts = []
    for name, number in value.items():
        if name not in allowed:
            raise EventError(f"{key}: unknown key {name!r} (known: {', '.join(allowed)})", f"{key}.{name}")
        counts.append((str(name), _count(number, f"{key}.{name}")))
    return tuple(counts)


def _choice(value: object, key: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise EventError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}", key)
    return value


def one_kind(body: Mapping[str, object], kinds: tuple[str, ...], allowed: tuple[str, ...], what: str) -> str:
    """The one key of ``kinds`` that ``body`` names (other keys only from ``allowed``); raises EventError."""
    unknown = [key for key in body if key not in allowed]
    if unknown:
        raise EventError(f"unknown {what} key {unknown[0]!r} (known: {', '.join(allowed)})", str(unknown[0]))
    named = [key for key in body if key in kinds]
    if len(named) != 1:
        found = ", ".join(named) or "none"
        article = "an" if what[0] in "aeiou" else "a"
        raise EventError(f"{article} {what} needs exactly one of {', '.join(kinds)} (found: {found})")
    return named[0]


def parse_event(body: Mapping[str, object]) -> GpuEvent:
    """Exactly one of EVENT_KINDS; raises EventError."""
    kind = one_kind(body, EVENT_KINDS, EVENT_KINDS, "event")
    value = body[kind]
    if kind == "xid":
        return GpuEvent(kind, code=_count(value, kind, 1, MAX_XID))
    if kind in ("nvlink_crc", "pcie_replay"):
        return GpuEvent(kind, code=_count(value, kind, 1))
    if kind == "ecc":
        return GpuEvent(kind, counts=_counts(value, kind, ("sbe", "dbe")))
    if kind == "retired_pages":
        return GpuEvent(kind, counts=_counts(value, kind, ("sbe", "dbe", "pending")))
    if kind == "row_remap":
        return GpuEvent(kind, name=_choice(value, kind, ROW_REMAP_STATES))
    if kind == "fault":
        return GpuEvent(kind, name=_choice(value, kind, FAULTS))
    if kind == "fabric":
        return GpuEvent(kind, name=_choice(value, kind, FABRIC_STATES))
    if value is None:
        return GpuEvent(kind, load=None)
    if type(value) not in (int, float) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise EventError(f"load: expected a number from 0 to 1 (or null to release), got {value!r}", kind)
    return GpuEvent(kind, load=float(value))  # type: ignore[arg-type]
