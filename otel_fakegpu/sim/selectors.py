"""Which hosts and which GPUs a fleet-wide event reaches: names, a rack, a label match or a seeded fraction.

A seeded fraction draws from the sorted candidates with its own ``random.Random``, so the same selector on
the same fleet touches the same hosts (and GPUs) every run, whatever the process split. Bad selectors raise
ValueError with one line naming the key at fault.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HOST_KEYS = ("hosts", "rack", "labels", "fraction", "seed")
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class HostFacts:
    """What a host selector can match: its name, its rack and the labels /sd gives its target."""

    name: str
    rack: str | None
    labels: Mapping[str, str]


def _fraction(value: object, key: str) -> float:
    if type(value) not in (int, float) or not 0 < float(value) <= 1:  # type: ignore[arg-type]
        raise ValueError(f"{key}: expected a number above 0 and at most 1, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _seed(value: object, key: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{key}: expected a whole number from 0 to {MAX_SEED}, got {value!r}")
    return value


def _draw(candidates: Sequence[str], fraction: float, seed: int, salt: str = "") -> list[str]:
    """``fraction`` of ``candidates`` (at least one), the same ones for the same seed and candidates."""
    count = max(1, round(fraction * len(candidates)))
    chosen = set(random.Random(f"{seed}/{salt}").sample(sorted(candidates), count))
    return [name for name in candidates if name in chosen]


def select_hosts(selector: object, fleet: Sequence[HostFacts]) -> list[str]:
    """The hosts ``selector`` names, in fleet order: ``{"hosts": [...]}``, ``{"rack": "r2"}``,
    ``{"labels": {"rack": "r2"}}``, ``{"fraction": 0.05, "seed": 3}`` (keys combine: each narrows the set)."""
    if selector == "all":
        return [host.name for host in fleet]
    if not isinstance(selector, Mapping) or not selector:
        raise ValueError(f'hosts: expected "all" or a mapping of {", ".join(HOST_KEYS)}, got {selector!r}')
    unknown = [key for key in selector if key not in HOST_KEYS]
    if unknown:
        raise ValueError(f"hosts: unknown key {unknown[0]!r} (known: {', '.join(HOST_KEYS)})")
    chosen = list(fleet)
    if "hosts" in selector:
        names = selector["hosts"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"hosts.hosts: expected a list of host names, got {names!r}")
        known = {host.name for host in fleet}
        missing = [n for n in names if n not in known]
        if missing:
            raise LookupError(f"hosts.hosts: no host {missing[0]!r} in this process")
        chosen = [host for host in chosen if host.name in names]
    if "rack" in selector:
        rack = selector["rack"]
        if not isinstance(rack, str) or not any(host.rack == rack for host in fleet):
            racks = sorted({host.rack for host in fleet if host.rack})
            raise LookupError(f"hosts.rack: no rack {rack!r} (racks: {', '.join(racks) or 'none'})")
        chosen = [host for host in chosen if host.rack == rack]
    if "labels" in selector:
        labels = selector["labels"]
        if not isinstance(labels, Mapping) or not labels or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError(f"hosts.labels: expected a mapping of label names to values, got {labels!r}")
        chosen = [host for host in chosen if all(host.labels.get(k) == v for k, v in labels.items())]
    if "fraction" in selector or "seed" in selector:
        fraction = _fraction(selector.get("fraction"), "hosts.fraction")
        seed = _seed(selector.get("seed", 0), "hosts.seed")
        names = _draw([host.name for host in chosen], fraction, seed) if chosen else []
        chosen = [host for host in chosen if host.name in names]
    if not chosen:
        raise LookupError("hosts: the selector matches no host")
    return [host.name for host in chosen]


def check_gpu_selector(selector: object) -> None:
    """Raise ValueError unless ``selector`` is ``"all"``, an index, a list of indices or ``{"fraction", "seed"}``."""
    select_gpus(selector, 1 << 16, "")


def select_gpus(selector: object, count: int, host: str) -> list[int]:
    """GPU indices of a host with ``count`` GPUs; a fraction is drawn per host (salted with its name)."""
    if selector is None or selector == "all":
        return list(range(count))
    if type(selector) is int:
        selector = [selector]
    if isinstance(selector, list):
        if not selector or not all(type(i) is int for i in selector):
            raise ValueError(f"gpus: expected GPU indices, got {selector!r}")
        out_of_range = [i for i in selector if not 0 <= i < count]
        if out_of_range:
            raise LookupError(f"gpus: no GPU {out_of_range[0]} on {host or 'the host'} ({count} GPUs)")
        return sorted(set(selector))
    if isinstance(selector, Mapping) and set(selector) <= {"fraction", "seed"} and "fraction" in selector:
        fraction = _fraction(selector["fraction"], "gpus.fraction")
        seed = _seed(selector.get("seed", 0), "gpus.seed")
        return [int(i) for i in _draw([str(i) for i in range(count)], fraction, seed, host)]
    raise ValueError(f'gpus: expected "all", indices or {{"fraction": F, "seed": S}}, got {selector!r}')
