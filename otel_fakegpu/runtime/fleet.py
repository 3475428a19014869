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


def plan_fleet(base: str, hosts: int, shard: tuple[int, int], workers: int) -> FleetPlan:
    """Shard ``(I, N)``'s hosts (fleet index ``i % N == I``) dealt round-robin to at most ``workers`` processes."""
    index, count_of_shards = shard
    mine = tuple(HostSpec(i, host_name(base, i, hosts)) for i in range(index, hosts, count_of_shards))
    if not mine:
        raise ValueError(f"shard {index}/{count_of_shards} of {hosts} hosts has no host")
    count = max(1, min(workers, len(mine)))
    return FleetPlan(mine, tuple(mine[w::count] for w in range(count)))
