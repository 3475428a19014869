"""MIG: the GPU-instance profiles a SKU offers, the ``--mig`` spec, and layouts that are checked to fit.

A spec names, per GPU, the instances to create: ``0-3:1g.10gb*7,4:3g.40gb*2`` (groups separated by ``,``;
several profiles on one GPU joined by ``+``: ``5:3g.40gb+2g.20gb*2``; ``all`` or ``*`` for every GPU).
``parse_mig_spec`` checks the syntax only; ``build_layout`` checks a GPU's list against its SKU (the profile
must be offered, and the instances must find free slices the way the driver places them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

MEMORY_SLICES = 8  # A100/H100/H200/B200 split memory (and L2) into eight slices, compute into seven.
COMPUTE_SLICES = 7


class MigError(ValueError):
    """A spec that does not parse, a profile the SKU does not offer, or instances that do not fit."""


@dataclass(frozen=True)
class MigProfile:
    """One GPU-instance profile: ``name`` as nvidia-smi prints it (``1g.10gb``), the compute and memory
    slices it takes, its framebuffer in MiB, and the memory slices it may start at (the driver's placements)."""

    name: str
    compute_slices: int
    memory_slices: int
    fb_mib: int
    starts: tuple[int, ...]


@dataclass(frozen=True)
class MigInstance:
    """A placed GPU instance: ``instance_id`` is the GPU instance id (dcgm-exporter's ``GPU_I_ID``)."""

    instance_id: int
    profile: MigProfile
    start: int

    @property
    def compute_fraction(self) -> float:
        """Share of the parent GPU's SMs (and of its load) this instance holds."""
        return self.profile.compute_slices / COMPUTE_SLICES


@dataclass(frozen=True)
class MigLayout:
    """The instances of one MIG-enabled GPU, in GPU-instance-id order."""

    instances: tuple[MigInstance, ...]


MigSpec = Mapping[int | None, tuple[str, ...]]  # GPU index (None: every GPU) -> profile names, in order

_GROUP = re.compile(r"^\s*(?P<gpus>all|\*|\d+(?:\s*-\s*\d+)?)\s*:\s*(?P<profiles>.+?)\s*$", re.I)
_ITEM = re.compile(r"^\s*(?P<name>\d+g\.\d+gb(?:\+me)?)\s*(?:\*\s*(?P<count>\d+))?\s*$", re.I)


def parse_mig_spec(text: str) -> dict[int | None, tuple[str, ...]]:
    """Parse ``GPUS:PROFILE[*N][+PROFILE[*N]...]`` groups separated by commas; raises MigError naming the part."""
    spec: dict[int | None, tuple[str, ...]] = {}
    for group in (part for part in text.split(",") if part.strip()):
        match = _GROUP.match(group)
        if match is None:
            raise MigError(f"{group.strip()!r}: expected GPUS:PROFILE*N, e.g. 0-3:1g.10gb*7")
        names: list[str] = []
        for item in match["profiles"].split("+"):
            if item.strip().lower() == "me":  # '1g.10gb+me' is one profile name, rejoin it
                if not names:
                    raise MigError(f"{group.strip()!r}: '+me' must follow a profile")
                names[-1] += "+me"
                continue
            parsed = _ITEM.match(item)
            if parsed is None:
                raise MigError(f"{group.strip()!r}: {item.strip()!r} is not a MIG profile such as 1g.10gb or 3g.40gb*2")
            count = int(parsed["count"] or 1)
            if not 1 <= count <= COMPUTE_SLICES:
                raise MigError(f"{group.strip()!r}: count {count} must be between 1 and {COMPUTE_SLICES}")
            names.extend([parsed["name"].lower()] * count)
        for gpu in _gpu_range(match["gpus"], group):
            if gpu in spec:
                raise MigError(f"{group.strip()!r}: GPU {'all' if gpu is None else gpu} is partitioned twice")
            spec[gpu] = tuple(names)
    if not spec:
        raise MigError(f"{text!r}: no GPU partitioned")
    return spec


def _gpu_range(text: str, group: str) -> list[int | None]:
    if text.strip().lower() in ("all", "*"):
        return [None]
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if last < first:
        raise MigError(f"{group.strip()!r}: GPU range {text} runs backwards")
    return list(range(first, last + 1))


def build_layout(sku_key: str, offered: Sequence[MigProfile], names: Sequence[str]) -> MigLayout:
    """Place ``names`` on one GPU of SKU ``sku_key`` (largest first, like the driver); raises MigError."""
    by_name = {p.name: p for p in offered}
    if not offered:
        raise MigError(f"GPU model {sku_key} does not support MIG")
    profiles = []
    for name in names:
        if name not in by_name:
            raise MigError(f"MIG profile {name} is not offered by {sku_key} (offered: {', '.join(by_name)})")
        profiles.append(by_name[name])
    order = sorted(range(len(profiles)), key=lambda i: (-profiles[i].memory_slices, -profiles[i].compute_slices, i))
    placed = _place([profiles[i] for i in order], [False] * MEMORY_SLICES, 0)
    if placed is None or sum(p.compute_slices for p in profiles) > COMPUTE_SLICES:
        raise MigError(f"MIG layout {'+'.join(names)} does not fit one {sku_key}")
    instances = [
        MigInstance(_instance_id(p, start), p, start)
        for p, start in zip([profiles[i] for i in order], placed, strict=True)
    ]
    return MigLayout(tuple(sorted(instances, key=lambda inst: inst.instance_id)))


def _place(profiles: list[MigProfile], used: list[bool], index: int) -> list[int] | None:
    """Backtracking over the allowed start slices; returns the start of each profile or None."""
    if index == len(profiles):
        return []
    profile = profiles[index]
    for start in profile.starts:
        span = range(start, start + profile.memory_slices)
        if span.stop > MEMORY_SLICES or any(used[s] for s in span):
            continue
        for s in span:
            used[s] = True
        rest = _place(profiles, used, index + 1)
        for s in span:
            used[s] = False
        if rest is not None:
            return [start, *rest]
    return None


def _instance_id(profile: MigProfile, start: int) -> int:
    """The GPU instance id the driver gives a placement (7g: 0, 4g: 1, 3g: 1-2, 2g: 3-5, 1g: 7-14)."""
    size = profile.memory_slices
    if size >= MEMORY_SLICES:
        return 0
    if size == 4:
        return 1 + start // 4 if profile.compute_slices == 3 else 1
    if size == 2 and profile.compute_slices == 2:
        return 3 + start // 2
    return 7 + start


def mig_profiles(fb_total_mib: int, gb: tuple[int, int, int, int]) -> tuple[MigProfile, ...]:
    """The standard profile set of an A100/H100-class GPU; ``gb`` names the sizes of 1, 2, 4 and 8 memory
    slices as NVIDIA's profile names spell them (H100 80GB: ``(10, 20, 40, 80)``, H200: ``(18, 35, 71, 141)``).

    An instance's framebuffer is its memory slices' share of the board less 512 MiB, in 256 MiB steps
    (e.g. 1g.10gb on an 80 GB board: 9728 MiB, the figure nvidia-smi shows for it).
    """
    one, two, four, eight = gb

    def fb(slices: int) -> int:
        return (fb_total_mib * slices // MEMORY_SLICES - 512) // 256 * 256

    return (
        MigProfile(f"1g.{one}gb", 1, 1, fb(1), tuple(range(7))),
        MigProfile(f"1g.{one}gb+me", 1, 1, fb(1), tuple(range(7))),
        MigProfile(f"1g.{two}gb", 1, 2, fb(2), (0, 2, 4, 6)),
        MigProfile(f"2g.{two}gb", 2, 2, fb(2), (0, 2, 4)),
        MigProfile(f"3g.{four}gb", 3, 4, fb(4), (0, 4)),
        MigProfile(f"4g.{four}gb", 4, 4, fb(4), (0,)),
        MigProfile(f"7g.{eight}gb", 7, 8, fb(8), (0,)),
    )


def resolve_mig(
    spec: MigSpec, count: int, offered: Callable[[int], tuple[str, Sequence[MigProfile]]]
) -> dict[int, MigLayout]:
    """Layouts for a fleet of ``count`` GPUs; ``offered(i)`` gives GPU i's SKU key and MIG profiles.

    Raises MigError naming the GPU, its SKU and the profile or layout at fault.
    """
    layouts: dict[int, MigLayout] = {}
    for index in range(count):
        names = spec.get(index, spec.get(None))
        if names is None:
            continue
        sku_key, profiles = offered(index)
        try:
            layouts[index] = build_layout(sku_key, profiles, names)
        except MigError as exc:
            raise MigError(f"GPU {index}: {exc}") from None
    for named in spec:
        if named is not None and named >= count:
            raise MigError(f"GPU {named} does not exist (the fleet has {count} GPUs)")
    return layouts
