"""Which hosts this process simulates, and which worker simulates each: names independent of the split."""

from __future__ import annotations

from dataclasses import dataclass

from otel_fakegpu.host.spec import HostSpec


@dataclass(frozen=True)
class FleetPlan:
    hosts: tuple[HostSpec, ...]  # this shard's hosts, in fleet order
    assignments: tuple[tuple[HostSpec, ...], ...]  # one tuple of hosts per worker process


def host_name(base: str, index: int, hosts: int) -> str:
    """A one-host fleet keeps the host's own name; a larger one numbers them ``base-0``, ``base-1``, ..."""
    return base if hosts == 1 else f"{base}-{index}"


def rack_of(index: int, hosts: int, racks: int) -> tuple[str, int]:
    """Rack ``r<k>`` of fleet host ``index`` and its place in it: ``racks`` contiguous runs of hosts, as even as
    they divide (64 hosts in 4 racks: hosts 0-15 in r0, 16-31 in r1, ...)."""
    rack = index * racks // hosts
    first = -(-rack * hosts // racks)  # the smallest index whose rack is ``rack``
    return f"r{rack}", index - first


def plan_fleet(base: str, hosts: int, shard: tuple[int, int], workers: int, racks: int = 1) -> FleetPlan:
    """Shard ``(I, N)``'s hosts (fleet index ``i % N == I``) dealt round-robin to at most ``workers`` processes."""
    index, count_of_shards = shard
    mine = tuple(
        HostSpec(i, host_name(base, i, hosts), *rack_of(i, hosts, racks)) for i in range(index, hosts, count_of_shards)
    )
    if not mine:
        raise ValueError(f"shard {index}/{count_of_shards} of {hosts} hosts has no host")
    count = max(1, min(workers, len(mine)))
    return FleetPlan(mine, tuple(mine[w::count] for w in range(count)))
