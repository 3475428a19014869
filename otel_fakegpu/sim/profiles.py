"""Metric profiles: what a simulated GPU is asked to do at each moment (its load), and how it misbehaves.

A profile only says *what the workload does*; physics.py turns that into readings, so every profile
produces readings that obey the same conservation laws.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from otel_fakegpu.fields import Value
from otel_fakegpu.sim.load import EngineLoad, clamp

# XID codes a datacenter GPU actually raises: 13 graphics exception, 31 MMU fault, 43 reset channel,
# 48 double-bit ECC, 63/64 row remap, 74 NVLink error, 79 fallen off the bus, 94/95 contained/uncontained ECC.
COMMON_XIDS = (13, 31, 43, 48, 63, 64, 74, 79, 94, 95)

# Fields a faulty GPU may fail to report in a step. Power and energy are never among them: energy is the
# integral of the reported power, which must stay checkable.
FAULTABLE_FIELDS = (
    140,
    150,
    100,
    101,
    203,
    204,
    206,
    207,
    250,
    251,
    252,
    253,
    254,
    1001,
    1004,
    1005,
    1009,
    1010,
)


@dataclass(frozen=True, slots=True)
class Demand:
    """What the workload asks of the GPU during one step."""

    load: float  # compute load, 0..1
    memory: float  # fraction of usable framebuffer allocated, 0..1
    media: float = 0.0  # encoder/decoder load, 0..1
    thermal_factor: float = 1.0  # >1 models cooling that has degraded
    errors_per_hour: float = 0.05  # memory/link error events
    xid: int | None = None  # an XID raised in this step
    blanks: frozenset[int] = frozenset()  # fields that read blank this step
    glitches: dict[int, Value] = field(default_factory=dict)  # implausible readings this step
    engines: EngineLoad | None = None  # per-engine load; None: the generic mix of ``load`` (EngineLoad.from_scalar)

    def engine_load(self) -> EngineLoad:
        return self.engines if self.engines is not None else EngineLoad.from_scalar(self.load, self.memory, self.media)


class Profile(ABC):
    name: str = "abstract"

    @abstractmethod
    def demand(self, t: float, rng: random.Random) -> Demand:
        """The demand at ``t`` seconds since the simulation started."""


class StaticProfile(Profile):
    """Constant values: the baseline for building a dashboard."""

    name = "static"

    def demand(self, t: float, rng: random.Random) -> Demand:
        return Demand(load=0.5, memory=0.5, errors_per_hour=0.0)


class StableProfile(Profile):
    """A steady training job: small (±5%) fluctuations around a high load."""

    name = "stable"

    def demand(self, t: float, rng: random.Random) -> Demand:
        return Demand(load=clamp(0.75 + rng.uniform(-0.05, 0.05)), memory=clamp(0.6 + rng.uniform(-0.01, 0.01)))


class SpikeProfile(Profile):
    """Mostly light inference traffic with random bursts to twice the normal load and beyond."""

    name = "spike"

    def demand(self, t: float, rng: random.Random) -> Demand:
        if rng.random() < 0.15:
            return Demand(load=clamp(rng.uniform(0.9, 1.0)), memory=clamp(rng.uniform(0.7, 0.9)))
        return Demand(load=clamp(0.4 + rng.uniform(-0.05, 0.05)), memory=0.35)


class WaveProfile(Profile):
    """A diurnal-style sine wave of load (period about 6 minutes, as in the seed prototype)."""

    name = "wave"

    def demand(self, t: float, rng: random.Random) -> Demand:
        phase = math.sin(t / 60.0)
        return Demand(
            load=clamp(0.5 + 0.4 * phase + rng.uniform(-0.02, 0.02)),
            memory=clamp(0.45 + 0.3 * phase),
            media=clamp(0.1 * phase),
        )


class DegradingProfile(Profile):
    """A GPU wearing out: cooling degrades over an hour, so it runs hotter, throttles, and errors accumulate."""

    name = "degrading"

    def demand(self, t: float, rng: random.Random) -> Demand:
        wear = min(1.0, t / 3600.0)
        return Demand(
            load=clamp(0.8 + rng.uniform(-0.03, 0.03)),
            memory=0.7,
            thermal_factor=1.0 + 0.6 * wear,
            errors_per_hour=0.5 + 60.0 * wear,
        )


class FaultyProfile(Profile):
    """A sick GPU: fields go blank (no series), readings glitch to implausible values, XIDs fire."""

    name = "faulty"

    def demand(self, t: float, rng: random.Random) -> Demand:
        blanks = frozenset(fid for fid in FAULTABLE_FIELDS if rng.random() < 0.2)
        glitches: dict[int, Value] = {}
        if rng.random() < 0.1:
            glitches[150] = rng.choice((0, 127))  # a sensor that reads nonsense
        if rng.random() < 0.1:
            glitches[100] = 0  # SM clock reading 0 MHz under load
        xid = rng.choice(COMMON_XIDS) if rng.random() < 0.05 else None
        return Demand(
            load=clamp(0.6 + rng.uniform(-0.2, 0.2)),
            memory=0.5,
            errors_per_hour=20.0,
            xid=xid,
            blanks=blanks,
            glitches=glitches,
        )


class ChaosProfile(Profile):
    """Anything goes within physics: load, memory and cooling jump at random every step."""

    name = "chaos"

    def demand(self, t: float, rng: random.Random) -> Demand:
        return Demand(
            load=rng.random(),
            memory=rng.random(),
            media=rng.uniform(0.0, 0.3),
            thermal_factor=rng.uniform(0.8, 1.5),
            errors_per_hour=rng.uniform(0.0, 30.0),
            xid=rng.choice(COMMON_XIDS) if rng.random() < 0.02 else None,
        )


PROFILES: dict[str, type[Profile]] = {
    cls.name: cls
    for cls in (
        StaticProfile,
        StableProfile,
        SpikeProfile,
        WaveProfile,
        DegradingProfile,
        FaultyProfile,
        ChaosProfile,
    )
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def make_profile(name: str) -> Profile:
    try:
        return PROFILES[name.strip().lower()]()
    except KeyError:
        raise KeyError(f"unknown profile {name!r} (known: {', '.join(PROFILE_NAMES)})") from None
