"""What a host's collection and the runtime that drives it agree on: the host's identity in the fleet and the shape
of a handler of one control request. Here, below the runtime, so a host's stack never imports the runtime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[dict[str, Any]], Any]  # one request's arguments to its JSON-able answer


@dataclass(frozen=True, order=True)
class HostSpec:
    index: int  # in the whole fleet, whatever the sharding
    name: str  # Hostname label, host.name and the seed of the host's GPU identities
    rack: str = "r0"  # the rack it stands in (fleet order, contiguous): /sd's rack label, rack events
    rack_position: int = 0  # its place in the rack, counted from 0 (a rack's cooling fails host after host)
