"""Workload load shapes beyond the seven profiles: idle, constant, training and inference.

Each is a Profile (``demand(t, rng)``), so the profiles work as shapes too; ``t`` is seconds since the
workload started. A shape object belongs to one workload and may keep state between steps (inference does).
"""

from __future__ import annotations

import math
import random

from otel_fakegpu.sim.load import EngineLoad, clamp
from otel_fakegpu.sim.profiles import Demand, Profile

CHECKPOINT_EVERY_S = 1800.0  # training writes a checkpoint every 30 minutes ...
CHECKPOINT_FOR_S = 90.0  # ... and its GPUs mostly wait on storage meanwhile


class IdleShape(Profile):
    """A pod that holds the GPU and a little memory but runs nothing (a notebook between cells)."""

    name = "idle"

    def demand(self, t: float, rng: random.Random) -> Demand:
        return Demand(load=0.0, memory=0.05, errors_per_hour=0.0, engines=EngineLoad(sm=0.0, tensor=0.0))


class ConstantShape(Profile):
    """A fixed, full load with the generic mixed-precision engine mix: the simplest thing to alert on."""

    name = "constant"

    def demand(self, t: float, rng: random.Random) -> Demand:
        return Demand(load=0.9, memory=0.6, errors_per_hour=0.0)


class TrainingShape(Profile):
    """Data-parallel BF16 training: steady high SM, tensor, DRAM and NVLink (all-reduce), with a dip every
    30 minutes while a checkpoint is written (SMs idle, PCIe busy)."""

    name = "training"

    def demand(self, t: float, rng: random.Random) -> Demand:
        jitter = rng.uniform(-0.02, 0.02)
        if t % CHECKPOINT_EVERY_S >= CHECKPOINT_EVERY_S - CHECKPOINT_FOR_S:
            engines = EngineLoad(sm=0.08, tensor=0.02, fp32=0.03, dram=0.1, copy=0.5, pcie=0.7, nvlink=0.02)
            return Demand(load=0.1, memory=0.82, engines=engines)
        engines = EngineLoad(
            sm=clamp(0.93 + jitter),
            tensor=clamp(0.72 + jitter),
            fp32=clamp(0.18 + jitter / 2),
            fp16=0.08,
            dram=clamp(0.62 + jitter),
            copy=clamp(0.35 + jitter),
            pcie=0.06,
            nvlink=clamp(0.55 + jitter),
            hmma=0.98,
            imma=0.0,
            dfma=0.02,
        )
        return Demand(load=clamp(0.92 + jitter), memory=0.82, engines=engines)


class InferenceShape(Profile):
    """Request-driven serving: load follows a request rate that wanders and bursts; INT8/FP16 tensor mix,
    memory held by the model and its KV cache, PCIe busy with requests, little NVLink."""

    name = "inference"

    def __init__(self) -> None:
        self._rate = 0.35  # requests in flight, as a share of what saturates the GPU

    def demand(self, t: float, rng: random.Random) -> Demand:
        diurnal = 0.15 * math.sin(2 * math.pi * t / 86400.0)
        self._rate += 0.3 * (0.35 + diurnal - self._rate) + rng.gauss(0.0, 0.05)
        if rng.random() < 0.08:
            self._rate += rng.uniform(0.3, 0.6)  # a burst of requests
        self._rate = clamp(self._rate, 0.02, 1.0)
        r = self._rate
        engines = EngineLoad(
            sm=clamp(0.1 + 0.85 * r),
            tensor=clamp(0.05 + 0.6 * r),
            fp32=clamp(0.05 + 0.2 * r),
            fp16=clamp(0.1 * r),
            dram=clamp(0.15 + 0.7 * r),
            copy=clamp(0.05 + 0.3 * r),
            pcie=clamp(0.03 + 0.2 * r),
            nvlink=clamp(0.03 * r),
            hmma=0.6,
            imma=0.4,
            dfma=0.0,
        )
        return Demand(load=clamp(0.1 + 0.85 * r), memory=clamp(0.55 + 0.3 * r), engines=engines)
