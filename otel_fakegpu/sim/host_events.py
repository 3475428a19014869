"""The event vocabulary of a whole host (scenario files and the control API): reachability, power, fabric, cooling.

``{"reachability": "timeout"}``, ``{"reachability": "slow", "delay": "12s"}``, ``{"power": "off"}``,
``{"fabric": "fail"}``, ``{"cooling": "fail"}`` and their ends (``"ok"``, ``"on"``). A GPU event names one GPU's
condition (events.py); a host event changes what the host's scrapers or every GPU of it meet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from otel_fakegpu.sim.clock import parse_duration
from otel_fakegpu.sim.events import EventError, one_kind

# What a scraper meets at the host's /metrics: a node that answers, or one of the ways a real one fails.
REACHABILITY = ("ok", "refused", "timeout", "http_500", "slow", "empty_page", "stale", "truncated")
HOST_EVENT_KINDS = ("reachability", "power", "fabric", "cooling")
_STATES = {"power": ("off", "on"), "fabric": ("fail", "ok"), "cooling": ("fail", "ok")}
DEFAULT_DELAY_S = 10.0
MAX_DELAY_S = 600.0


@dataclass(frozen=True)
class HostEvent:
    """One thing that happens to a host: ``kind`` one of HOST_EVENT_KINDS, ``state`` its new state."""

    kind: str
    state: str
    delay_s: float = 0.0  # reachability "slow" only: how long each scrape waits before its answer

    def describe(self) -> dict[str, object]:
        """The event as the vocabulary writes it."""
        if self.kind == "reachability" and self.state == "slow":
            return {"reachability": "slow", "delay": f"{self.delay_s:g}s"}
        return {self.kind: self.state}


def is_host_event(body: Mapping[str, object]) -> bool:
    """Whether ``body`` names a host event (else it is a GPU event)."""
    return any(key in body for key in HOST_EVENT_KINDS)


def parse_host_event(body: Mapping[str, object]) -> HostEvent:
    """Exactly one of HOST_EVENT_KINDS (``delay`` only with a slow reachability); raises EventError."""
    kind = one_kind(body, HOST_EVENT_KINDS, (*HOST_EVENT_KINDS, "delay"), "host event")
    value = body[kind]
    states = REACHABILITY if kind == "reachability" else _STATES[kind]
    if not isinstance(value, str) or value not in states:
        raise EventError(f"{kind}: expected one of {', '.join(states)}, got {value!r}", kind)
    if "delay" in body and value != "slow":
        raise EventError('delay: only with {"reachability": "slow"}', "delay")
    if value != "slow":
        return HostEvent(kind, value)
    return HostEvent(kind, value, _delay(body.get("delay", f"{DEFAULT_DELAY_S:g}s")))


def _delay(value: object) -> float:
    if type(value) in (int, float):
        value = str(value)
    if not isinstance(value, str):
        raise EventError(f"delay: expected a duration such as 12s, got {value!r}", "delay")
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise EventError(f"delay: {exc}", "delay") from None
    if not 0 < seconds <= MAX_DELAY_S:
        raise EventError(f"delay: expected more than 0 s and at most {MAX_DELAY_S:g} s, got {value!r}", "delay")
    return seconds
