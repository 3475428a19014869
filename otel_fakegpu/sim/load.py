"""Load per engine: what a workload keeps busy on a GPU in one step, each figure a ratio in 0..1.

Physics turns an ``EngineLoad`` into every utilisation and profiling field, so they all tell the same story.
The tensor precision mix says which tensor pipes the tensor load runs on: HMMA (FP16/BF16/TF32 matrix ops),
IMMA (INT8/INT4), DFMA (FP64 on tensor cores). The mix is a set of shares that sum to 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """Per-engine activity ratios of one GPU (or one MIG instance) during one step; each must lie in 0..1
    (physics does not clamp them again)."""

    sm: float  # SM active: cycles with at least one warp resident
    tensor: float  # any tensor pipe active
    fp64: float = 0.0
    fp32: float = 0.0
    fp16: float = 0.0  # non-tensor FP16 pipe
    dram: float = 0.0  # memory interface busy
    copy: float = 0.0  # copy engines (DCGM_FI_DEV_MEM_COPY_UTIL)
    encoder: float = 0.0
    decoder: float = 0.0
    pcie: float = 0.0  # share of the PCIe link bandwidth in use
    nvlink: float = 0.0  # share of the NVLink bandwidth in use
    hmma: float = 1.0  # tensor precision mix: shares of the tensor load, summing to 1
    imma: float = 0.0
    dfma: float = 0.0

    @property
    def busy(self) -> float:
        """The scalar load (0..1) that sets power: SM activity, plus tensor and memory traffic, which cost
        the most energy per cycle (a dense BF16 training step runs an H100 into its power cap)."""
        return clamp(0.75 * self.sm + 0.35 * self.tensor + 0.1 * self.dram)

    @classmethod
    def from_scalar(cls, load: float, memory: float = 0.0, media: float = 0.0) -> EngineLoad:
        """The engine mix of a generic mixed-precision job at scalar ``load`` (the profiles' model)."""
        load = min(1.0, max(0.0, load))
        memory = min(1.0, max(0.0, memory))
        media = min(1.0, max(0.0, media))
        gr = load * 0.98
        return cls(
            sm=gr * 0.9,
            tensor=gr * 0.45,
            fp64=gr * 0.02,
            fp32=gr * 0.25,
            fp16=gr * 0.2,
            dram=gr * 0.5 + memory * 0.05,
            copy=gr * 0.45 + memory * 0.045,
            encoder=media,
            decoder=media * 0.8,
            pcie=0.02 + 0.3 * load,
            nvlink=0.4 * load,
            hmma=0.85,
            imma=0.1,
            dfma=0.05,
        )

    def scaled(self, factor: float) -> EngineLoad:
        """The same mix at ``factor`` times the activity (a workload on a share of a GPU, or an intensity)."""
        f = clamp(factor)
        return EngineLoad(
            self.sm * f, self.tensor * f, self.fp64 * f, self.fp32 * f, self.fp16 * f, self.dram * f,
            self.copy * f, self.encoder * f, self.decoder * f, self.pcie * f, self.nvlink * f,
            self.hmma, self.imma, self.dfma,
        )  # fmt: skip


_ACTIVITY = ("sm", "tensor", "fp64", "fp32", "fp16", "dram", "copy", "encoder", "decoder", "pcie", "nvlink")


def combine(loads: Iterable[EngineLoad]) -> EngineLoad | None:
    """Several workloads sharing a GPU: activities add up (capped at 1), the precision mix is tensor-weighted."""
    items = list(loads)
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    sums = {name: clamp(sum(getattr(item, name) for item in items)) for name in _ACTIVITY}
    weight = sum(item.tensor for item in items)
    if weight > 0:
        mix = [sum(getattr(item, name) * item.tensor for item in items) / weight for name in ("hmma", "imma", "dfma")]
    else:
        mix = [1.0, 0.0, 0.0]
    return EngineLoad(**sums, hmma=mix[0], imma=mix[1], dfma=mix[2])
