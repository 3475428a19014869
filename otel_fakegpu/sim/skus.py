"""GPU models the simulator can be: real specifications, so simulated readings sit where real ones do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuSku:
    """One GPU product. Memory sizes are what the driver reports (MiB); clocks in MHz; power in W."""

    key: str
    model_name: str
    fb_total_mib: int
    fb_reserved_mib: int
    tdp_w: float
    idle_w: float
    sm_clock_max_mhz: int
    sm_clock_idle_mhz: int
    mem_clock_mhz: int
    slowdown_temp_c: int
    # Degrees above ambient per watt at steady state: sets where a loaded GPU settles.
    thermal_c_per_w: float
    pcie_bytes_per_s: int
    nvlink_bytes_per_s: int
    vbios: str
    # An HGX board's NVSwitches: how many NVLinks each of its eight GPUs has to each switch (empty: no switches).
    nvswitch_links: tuple[int, ...] = ()


SKUS: dict[str, GpuSku] = {
    sku.key: sku
    for sku in (
        GpuSku(
            key="h100-sxm",
            model_name="NVIDIA H100 80GB HBM3",
            fb_total_mib=81559,
            fb_reserved_mib=579,
            tdp_w=700.0,
            idle_w=72.0,
            sm_clock_max_mhz=1980,
            sm_clock_idle_mhz=345,
            mem_clock_mhz=2619,
            slowdown_temp_c=87,
            thermal_c_per_w=0.072,
            pcie_bytes_per_s=64_000_000_000,
            nvlink_bytes_per_s=900_000_000_000,
            vbios="96.00.99.00.01",
            nvswitch_links=(5, 4, 4, 5),  # HGX H100: 4 third-generation NVSwitches, 18 NVLinks per GPU
        ),
        GpuSku(
            key="a100-80gb",
            model_name="NVIDIA A100-SXM4-80GB",
            fb_total_mib=81920,
            fb_reserved_mib=613,
            tdp_w=400.0,
            idle_w=61.0,
            sm_clock_max_mhz=1410,
            sm_clock_idle_mhz=210,
            mem_clock_mhz=1593,
            slowdown_temp_c=89,
            thermal_c_per_w=0.118,
            pcie_bytes_per_s=32_000_000_000,
            nvlink_bytes_per_s=600_000_000_000,
            vbios="92.00.36.00.02",
            nvswitch_links=(2,) * 6,  # HGX A100: 6 second-generation NVSwitches, 12 NVLinks per GPU
        ),
        GpuSku(
            key="a100-40gb",
            model_name="NVIDIA A100-SXM4-40GB",
            fb_total_mib=40960,
            fb_reserved_mib=507,
            tdp_w=400.0,
            idle_w=55.0,
            sm_clock_max_mhz=1410,
            sm_clock_idle_mhz=210,
            mem_clock_mhz=1215,
            slowdown_temp_c=89,
            thermal_c_per_w=0.118,
            pcie_bytes_per_s=32_000_000_000,
            nvlink_bytes_per_s=600_000_000_000,
            vbios="92.00.25.00.08",
            nvswitch_links=(2,) * 6,
        ),
    )
}
DEFAULT_SKU = "h100-sxm"


def find_sku(name: str) -> GpuSku:
    """A SKU by key (``h100-sxm``) or model name, with or without ``NVIDIA`` (case-insensitive)."""
    wanted = name.strip().lower()
    for sku in SKUS.values():
        model = sku.model_name.lower()
        if wanted in (sku.key, model, model.removeprefix("nvidia ")):
            return sku
    known = ", ".join(SKUS)
    raise KeyError(f"unknown GPU model {name!r} (known: {known})")
