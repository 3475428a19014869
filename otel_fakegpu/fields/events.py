"""Event fields and how one sample of each splits into the codes dcgm-exporter counts.

A sample of DCGM_FI_DEV_XID_ERRORS is one XID, labelled by its number; a sample of the clock-event
bitmask counts once for every reason bit set in it, labelled by the reason's name as ``dcgmi`` spells it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

XID_ERRORS_FIELD = 230
CLOCK_EVENT_REASONS_FIELD = 112
# dcgm-exporter's computed fields that count them (DCGM_EXP_XID_ERRORS_COUNT, DCGM_EXP_CLOCK_EVENTS_COUNT).
XID_COUNT_FIELD = 9001
CLOCK_EVENTS_COUNT_FIELD = 9002

# Bit -> name, as DCGM's dcgmi and dcgm-exporter's clock_event label spell them.
CLOCK_EVENT_NAMES: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "clocks_setting"),
    (0x004, "power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal"),
    (0x040, "hw_thermal"),
    (0x080, "hw_power_brake"),
    (0x100, "display_clocks"),
)


@lru_cache(maxsize=1024)
def xid_codes(value: int) -> tuple[str, ...]:
    """The XID a sample reports; none for 0, which is the "no XID yet" value and not an XID."""
    return (str(value),) if value > 0 else ()


@lru_cache(maxsize=1024)
def clock_event_names(value: int) -> tuple[str, ...]:
    """Every known reason set in the bitmask; bits DCGM does not name are not counted."""
    return tuple(name for bit, name in CLOCK_EVENT_NAMES if value & bit)


@dataclass(frozen=True)
class EventDecoder:
    """How samples of one event field become labelled counts."""

    label: str
    decode: Callable[[int], tuple[str, ...]]


EVENT_DECODERS: dict[int, EventDecoder] = {
    XID_ERRORS_FIELD: EventDecoder("xid", xid_codes),
    CLOCK_EVENT_REASONS_FIELD: EventDecoder("clock_event", clock_event_names),
}
