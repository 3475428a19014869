"""The GPU models ``--gpu-model`` offers, with the public source of their figures (docs/gpu-models.md).

Names and memory are what the driver reports (nvidia-smi / DCGM_FI_DEV_NAME, DCGM_FI_DEV_FB_TOTAL). Power
limit, clocks, memory, NVLink and PCIe figures are from NVIDIA's datasheets named in ``source``; MIG
profiles from NVIDIA's MIG User Guide (docs.nvidia.com/datacenter/tesla/mig-user-guide, "Supported MIG
Profiles"); idle power, idle clock and temperature thresholds are typical ``nvidia-smi -q`` readings
(DCGM_FI_DEV_SLOWDOWN_TEMP/SHUTDOWN_TEMP) and are approximate. SM counts are the datasheets' (what CUDA's
deviceQuery reports; B200's is CUDA's, its datasheet gives none).
"""

from __future__ import annotations

from otel_fakegpu.sim.mig import mig_profiles
from otel_fakegpu.sim.skus import FanCurve, GpuSku

GB = 1_000_000_000
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100)"
_H100 = "NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100)"


def _thermal(tdp_w: float) -> float:
    # Cooling is sized to the board power: a fully loaded board settles about 50 C above a 28 C inlet.
    return 50.0 / tdp_w


PRESETS: tuple[GpuSku, ...] = (
    GpuSku(
        key="h100-sxm", model_name="NVIDIA H100 80GB HBM3", fb_total_mib=81559, fb_reserved_mib=579,
        tdp_w=700.0, idle_w=72.0, sm_clock_max_mhz=1980, sm_clock_idle_mhz=345, mem_clock_mhz=2619,
        slowdown_temp_c=87, shutdown_temp_c=92, thermal_c_per_w=0.072, pcie_bytes_per_s=64 * GB,
        nvlink_bytes_per_s=900 * GB, nvlink_links=18, vbios="96.00.99.00.01",
        mig_profiles=mig_profiles(81559, (10, 20, 40, 80)), architecture="hopper", sm_count=132, source=_H100,
        nvswitch_links=(5, 4, 4, 5),  # HGX H100: 4 third-generation NVSwitches, 18 NVLinks per GPU
    ),
    GpuSku(
        key="h100-pcie", model_name="NVIDIA H100 PCIe", fb_total_mib=81559, fb_reserved_mib=579,
        tdp_w=350.0, idle_w=48.0, sm_clock_max_mhz=1755, sm_clock_idle_mhz=345, mem_clock_mhz=1593,
        slowdown_temp_c=87, shutdown_temp_c=92, thermal_c_per_w=_thermal(350.0), pcie_bytes_per_s=64 * GB,
        nvlink_bytes_per_s=600 * GB, nvlink_links=12, vbios="96.00.5E.00.01",
        mig_profiles=mig_profiles(81559, (10, 20, 40, 80)), architecture="hopper", sm_count=114, source=_H100,
    ),
    GpuSku(
        key="h200", model_name="NVIDIA H200", fb_total_mib=143771, fb_reserved_mib=1006,
        tdp_w=700.0, idle_w=75.0, sm_clock_max_mhz=1980, sm_clock_idle_mhz=345, mem_clock_mhz=3201,
        slowdown_temp_c=87, shutdown_temp_c=92, thermal_c_per_w=0.072, pcie_bytes_per_s=64 * GB,
        nvlink_bytes_per_s=900 * GB, nvlink_links=18, vbios="96.00.AF.00.01",
        mig_profiles=mig_profiles(143771, (18, 35, 71, 141)), architecture="hopper", sm_count=132,
        nvswitch_links=(5, 4, 4, 5),
        source="NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200)",
    ),
    GpuSku(
        key="b200", model_name="NVIDIA B200", fb_total_mib=183359, fb_reserved_mib=1283,
        tdp_w=1000.0, idle_w=140.0, sm_clock_max_mhz=1965, sm_clock_idle_mhz=120, mem_clock_mhz=3996,
        slowdown_temp_c=87, shutdown_temp_c=92, thermal_c_per_w=_thermal(1000.0), pcie_bytes_per_s=64 * GB,
        nvlink_bytes_per_s=1800 * GB, nvlink_links=18, vbios="97.00.4B.00.01",
        mig_profiles=mig_profiles(183359, (23, 45, 90, 180)), architecture="blackwell", sm_count=148,
        nvswitch_links=(9, 9),
        source="NVIDIA DGX B200 / HGX B200 datasheets (nvidia.com/en-us/data-center/dgx-b200, /hgx)",
    ),
    GpuSku(
        key="a100-80gb", model_name="NVIDIA A100-SXM4-80GB", fb_total_mib=81920, fb_reserved_mib=613,
        tdp_w=400.0, idle_w=61.0, sm_clock_max_mhz=1410, sm_clock_idle_mhz=210, mem_clock_mhz=1593,
        slowdown_temp_c=89, shutdown_temp_c=92, thermal_c_per_w=0.118, pcie_bytes_per_s=32 * GB,
        nvlink_bytes_per_s=600 * GB, nvlink_links=12, vbios="92.00.36.00.02",
        mig_profiles=mig_profiles(81920, (10, 20, 40, 80)), architecture="ampere", sm_count=108, source=_A100,
        nvswitch_links=(2,) * 6,  # HGX A100: 6 second-generation NVSwitches, 12 NVLinks per GPU
    ),
    GpuSku(
        key="a100-40gb", model_name="NVIDIA A100-SXM4-40GB", fb_total_mib=40960, fb_reserved_mib=507,
        tdp_w=400.0, idle_w=55.0, sm_clock_max_mhz=1410, sm_clock_idle_mhz=210, mem_clock_mhz=1215,
        slowdown_temp_c=89, shutdown_temp_c=92, thermal_c_per_w=0.118, pcie_bytes_per_s=32 * GB,
        nvlink_bytes_per_s=600 * GB, nvlink_links=12, vbios="92.00.25.00.08",
        mig_profiles=mig_profiles(40960, (5, 10, 20, 40)), architecture="ampere", sm_count=108, source=_A100,
        nvswitch_links=(2,) * 6,
    ),
    GpuSku(
        key="a100-pcie-80gb", model_name="NVIDIA A100 80GB PCIe", fb_total_mib=81920, fb_reserved_mib=613,
        tdp_w=300.0, idle_w=45.0, sm_clock_max_mhz=1410, sm_clock_idle_mhz=210, mem_clock_mhz=1512,
        slowdown_temp_c=89, shutdown_temp_c=92, thermal_c_per_w=_thermal(300.0), pcie_bytes_per_s=32 * GB,
        nvlink_bytes_per_s=600 * GB, nvlink_links=12, vbios="92.00.90.00.04",
        mig_profiles=mig_profiles(81920, (10, 20, 40, 80)), architecture="ampere", sm_count=108, source=_A100,
    ),
    GpuSku(
        key="l40s", model_name="NVIDIA L40S", fb_total_mib=46068, fb_reserved_mib=468,
        tdp_w=350.0, idle_w=32.0, sm_clock_max_mhz=2520, sm_clock_idle_mhz=210, mem_clock_mhz=9001,
        slowdown_temp_c=90, shutdown_temp_c=95, thermal_c_per_w=_thermal(350.0), pcie_bytes_per_s=32 * GB,
        nvlink_bytes_per_s=0, vbios="95.02.66.00.02", architecture="ada", sm_count=142,
        source="NVIDIA L40S datasheet (nvidia.com/en-us/data-center/l40s): passively cooled",
    ),
    GpuSku(
        key="l4", model_name="NVIDIA L4", fb_total_mib=23034, fb_reserved_mib=363,
        tdp_w=72.0, idle_w=16.0, sm_clock_max_mhz=2040, sm_clock_idle_mhz=210, mem_clock_mhz=6251,
        slowdown_temp_c=90, shutdown_temp_c=95, thermal_c_per_w=_thermal(72.0), pcie_bytes_per_s=32 * GB,
        nvlink_bytes_per_s=0, vbios="95.04.5E.00.03", architecture="ada", sm_count=58,
        source="NVIDIA L4 datasheet (nvidia.com/en-us/data-center/l4): passively cooled",
    ),
    GpuSku(
        key="t4", model_name="Tesla T4", fb_total_mib=15360, fb_reserved_mib=257,
        tdp_w=70.0, idle_w=9.0, sm_clock_max_mhz=1590, sm_clock_idle_mhz=300, mem_clock_mhz=5001,
        slowdown_temp_c=93, shutdown_temp_c=96, thermal_c_per_w=_thermal(70.0), pcie_bytes_per_s=16 * GB,
        nvlink_bytes_per_s=0, vbios="90.04.96.00.02", architecture="turing", sm_count=40,
        source="NVIDIA T4 datasheet (nvidia.com/en-us/data-center/tesla-t4): passively cooled",
    ),
    GpuSku(
        key="rtx6000-ada", model_name="NVIDIA RTX 6000 Ada Generation", fb_total_mib=49140, fb_reserved_mib=511,
        tdp_w=300.0, idle_w=22.0, sm_clock_max_mhz=2505, sm_clock_idle_mhz=210, mem_clock_mhz=10001,
        slowdown_temp_c=90, shutdown_temp_c=95, thermal_c_per_w=_thermal(300.0), pcie_bytes_per_s=32 * GB,
        nvlink_bytes_per_s=0, vbios="95.02.5D.00.01", architecture="ada", sm_count=142, fan=FanCurve(30, 45.0, 85.0),
        source="NVIDIA RTX 6000 Ada Generation datasheet (nvidia.com/en-us/design-visualization/rtx-6000): "
        "blower fan",
    ),
)  # fmt: skip

SKUS: dict[str, GpuSku] = {sku.key: sku for sku in PRESETS}
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
