"""Which hosts this process simulates, and which worker simulates each: names independent of the split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from otel_fakegpu.config.model import Config
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


def named_racks(base: str, hosts: int, racks: Sequence[tuple[str, Sequence[str]]]) -> dict[str, tuple[str, int]]:
    """A scenario's ``hosts.racks``: each fleet host's rack and place in it; ValueError unless every host of the
    fleet stands in exactly one rack and every name is a host of the fleet."""
    fleet = [host_name(base, i, hosts) for i in range(hosts)]
    placed = {host: (rack, position) for rack, members in racks for position, host in enumerate(members)}
    strangers = [host for host in placed if host not in fleet]
    if strangers:
        raise ValueError(f"hosts.racks names {strangers[0]!r}, not a host of this fleet ({fleet[0]} ... {fleet[-1]})")
    missing = [host for host in fleet if host not in placed]
    if missing:
        raise ValueError(f"hosts.racks: host {missing[0]!r} stands in no rack ({len(missing)} hosts in none)")
    return placed


def plan_fleet(
    base: str, hosts: int, shard: tuple[int, int], workers: int, racks: int | Mapping[str, tuple[str, int]] = 1
) -> FleetPlan:
    """Shard ``(I, N)``'s hosts (fleet index ``i % N == I``) dealt round-robin to at most ``workers`` processes;
    ``racks``: how many (contiguous runs), or each host's rack and place (``named_racks``)."""
    index, count_of_shards = shard
    names = [host_name(base, i, hosts) for i in range(index, hosts, count_of_shards)]
    mine = tuple(
        HostSpec(i, name, *(racks[name] if isinstance(racks, Mapping) else rack_of(i, hosts, racks)))
        for i, name in zip(range(index, hosts, count_of_shards), names, strict=True)
    )
    if not mine:
        raise ValueError(f"shard {index}/{count_of_shards} of {hosts} hosts has no host")
    count = max(1, min(workers, len(mine)))
    return FleetPlan(mine, tuple(mine[w::count] for w in range(count)))


def fleet_racks(config: Config) -> int | dict[str, tuple[str, int]]:
    """--racks, or the scenario's hosts.racks (ValueError when they do not fit the fleet, or both are given)."""
    scenario = config.scenario
    if scenario is None or not scenario.racks:
        return config.racks
    if config.racks != 1:
        raise ValueError(f"{scenario.source}: hosts.racks and --racks {config.racks} both set the racks")
    return named_racks(config.host_identity, config.hosts, scenario.racks)
