"""GPU models the simulator can be: real specifications, so simulated readings sit where real ones do.

The presets themselves, with the public page each figure comes from, are in ``sku_presets.py`` (and in
docs/gpu-models.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_fakegpu.sim.mig import MigProfile

# Tensor pipes by architecture, as DCGM's profiling fields split them (1013 IMMA, 1014 HMMA, 1015 DFMA).
# DFMA needs FP64 tensor cores: the GA100/GH100/GB100 data-centre dies have them, Turing and the graphics
# dies (GA10x, AD10x) do not.
TENSOR_PIPES: dict[str, frozenset[str]] = {
    "turing": frozenset({"hmma", "imma"}),
    "ampere": frozenset({"hmma", "imma", "dfma"}),
    "ada": frozenset({"hmma", "imma"}),
    "hopper": frozenset({"hmma", "imma", "dfma"}),
    "blackwell": frozenset({"hmma", "imma", "dfma"}),
}


@dataclass(frozen=True)
class FanCurve:
    """An actively cooled board's fan: ``min_pct`` up to ``quiet_c``, rising linearly to 100 % at ``full_c``."""

    min_pct: int
    quiet_c: float
    full_c: float

    def percent(self, temp_c: float) -> int:
        if temp_c <= self.quiet_c:
            return self.min_pct
        share = min(1.0, (temp_c - self.quiet_c) / (self.full_c - self.quiet_c))
        return round(self.min_pct + (100 - self.min_pct) * share)


@dataclass(frozen=True)
class GpuSku:
    """One GPU product. Memory sizes are what the driver reports (MiB); clocks in MHz; power in W."""

    key: str
    model_name: str
    fb_total_mib: int
    fb_reserved_mib: int
    tdp_w: float  # the default enforced power limit
    idle_w: float
    sm_clock_max_mhz: int
    sm_clock_idle_mhz: int
    mem_clock_mhz: int
    slowdown_temp_c: int
    # Degrees above ambient per watt at steady state: sets where a loaded GPU settles.
    thermal_c_per_w: float
    pcie_bytes_per_s: int  # one direction
    nvlink_bytes_per_s: int  # all links, both directions (NVIDIA's headline figure)
    vbios: str
    mig_profiles: tuple[MigProfile, ...] = ()
    architecture: str = "hopper"
    shutdown_temp_c: int = 0  # 0: slowdown + 5
    nvlink_links: int = 0
    fan: FanCurve | None = None  # None: no fan of its own (SXM modules, passive PCIe boards)
    source: str = ""  # where the figures come from
    # An HGX board's NVSwitches: how many NVLinks each of its eight GPUs has to each switch (empty: no switches).
    nvswitch_links: tuple[int, ...] = ()
    sm_count: int = 0  # streaming multiprocessors: the raw profiling cycle counters count SM cycles

    @property
    def tensor_pipes(self) -> frozenset[str]:
        return TENSOR_PIPES[self.architecture]

    @property
    def shutdown_c(self) -> int:
        return self.shutdown_temp_c or self.slowdown_temp_c + 5

    @property
    def nvlink_link_bytes_per_s(self) -> int:
        """One link, both directions."""
        return self.nvlink_bytes_per_s // self.nvlink_links if self.nvlink_links else 0
