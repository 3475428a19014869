"""``--list-gpu-models``: the SKU presets as a plain-text table."""

from __future__ import annotations

from collections.abc import Iterable

from otel_fakegpu.sim.skus import GpuSku

_COLUMNS = (
    "model", "name reported by the driver", "memory MiB", "power W", "idle W", "SM MHz", "mem MHz",
    "slowdown/shutdown C", "NVLink", "fan", "arch", "MIG profiles",
)  # fmt: skip


def _row(sku: GpuSku) -> tuple[str, ...]:
    nvlink = f"{sku.nvlink_links} x {sku.nvlink_link_bytes_per_s // 10**9} GB/s" if sku.nvlink_links else "-"
    mig = " ".join(p.name for p in sku.mig_profiles if not p.name.endswith("+me")) or "-"
    return (
        sku.key,
        sku.model_name,
        str(sku.fb_total_mib),
        f"{sku.tdp_w:g}",
        f"{sku.idle_w:g}",
        f"{sku.sm_clock_idle_mhz}-{sku.sm_clock_max_mhz}",
        str(sku.mem_clock_mhz),
        f"{sku.slowdown_temp_c}/{sku.shutdown_c}",
        nvlink,
        "yes" if sku.fan is not None else "-",
        sku.architecture,
        mig,
    )


def format_gpu_models(skus: Iterable[GpuSku]) -> str:
    """One line per SKU, columns padded to the widest cell; sources are in docs/gpu-models.md."""
    rows = [_COLUMNS, *(_row(sku) for sku in skus)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"
