"""Readings that follow from load per engine: utilisations, profiling ratios, tensor pipes, PCIe/NVLink
throughput and the framebuffer, for a whole GPU or for one MIG instance. Every value here is a gauge.

Throughputs are rates over the sample interval, never running totals (compat §3): 1009-1012 in bytes/s,
200/201 (NVML's PCIe throughput) in KB/s,
449 (NVLINK_BANDWIDTH_TOTAL) in DCGM's unit, NVML's KiB over the interval / 1000 (about MiB/s, TX+RX).
"""

from __future__ import annotations

from otel_fakegpu.fields import Value
from otel_fakegpu.sim.load import EngineLoad
from otel_fakegpu.sim.mig import MigInstance
from otel_fakegpu.sim.placement import DeviceDemand
from otel_fakegpu.sim.skus import GpuSku


def nvlink_bandwidth_total(tx_bytes_per_s: float, rx_bytes_per_s: float) -> int:
    """Field 449 as DCGM computes it: KiB moved (TX+RX, all links) per second, divided by 1000."""
    return round((tx_bytes_per_s + rx_bytes_per_s) / 1024 / 1000)


def activity(sku: GpuSku, engines: EngineLoad, share: float = 1.0) -> dict[int, Value | None]:
    """Profiling ratios, tensor pipes, utilisations and link throughput of a device at ``engines``.

    ``share`` is the device's part of the GPU's links (a MIG instance's compute fraction); ratios are
    relative to the device itself. Pipe ratios never exceed SM activity, which never exceeds GR activity.
    EngineLoad's ratios are in 0..1 already, so nothing is clamped here (this runs for every GPU each update).
    """
    sm = engines.sm
    gr = min(1.0, sm * 1.04 + 0.01) if sm > 0 else engines.copy * 0.1
    tensor = min(sm, engines.tensor)
    pcie = sku.pcie_bytes_per_s * share * engines.pcie
    nvlink_each = round(sku.nvlink_bytes_per_s / 2 * share * engines.nvlink)
    dram = engines.dram
    # Ratios carry six decimals, what the exposition prints, so every output (text, OTLP) holds the same value.
    readings: dict[int, Value | None] = {
        1001: round(gr, 6),
        1002: round(sm, 6),
        1003: round(sm * 0.55, 6),
        1004: round(tensor, 6),
        1005: round(dram, 6),
        1006: round(min(sm, engines.fp64), 6),
        1007: round(min(sm, engines.fp32), 6),
        1008: round(min(sm, engines.fp16), 6),
        1009: round(pcie * 0.85),
        1010: round(pcie),
        200: round(pcie * 0.85 / 1024),  # NVML's PCIe throughput, KB/s
        201: round(pcie / 1024),
        1011: nvlink_each,
        1012: nvlink_each,
        203: round(100 * gr),
        204: round(80 * dram + 20 * engines.copy),
        206: round(100 * engines.encoder),
        207: round(100 * engines.decoder),
    }
    add_tensor_pipes(readings, sku, engines, tensor)
    return readings


def add_tensor_pipes(readings: dict[int, Value | None], sku: GpuSku, engines: EngineLoad, tensor: float) -> None:
    """HMMA/IMMA/DFMA ratios: the tensor load split by the precision mix over the pipes this architecture
    has (a share for a missing pipe moves to the others), blank where the pipe does not exist."""
    pipes = sku.tensor_pipes
    hmma = engines.hmma if "hmma" in pipes else 0.0
    imma = engines.imma if "imma" in pipes else 0.0
    dfma = engines.dfma if "dfma" in pipes else 0.0
    total = hmma + imma + dfma
    if total <= 0:
        hmma, total = 1.0, 1.0
    scale = tensor / total
    readings[1013] = round(imma * scale, 6) if "imma" in pipes else None
    readings[1014] = round(hmma * scale, 6) if "hmma" in pipes else None
    readings[1015] = round(dfma * scale, 6) if "dfma" in pipes else None


def framebuffer(total_mib: int, reserved_mib: int, used_mib: int) -> dict[int, Value | None]:
    """FB fields 250-254: used + free + reserved = total."""
    usable = total_mib - reserved_mib
    used = max(0, min(usable, used_mib))
    return {
        250: total_mib,
        251: usable - used,
        252: used,
        253: reserved_mib,
        254: round(used / usable, 6) if usable else 0.0,
    }


def instance_readings(sku: GpuSku, instance: MigInstance, demand: DeviceDemand) -> dict[int, Value | None]:
    """What DCGM reports per MIG instance: its framebuffer slice and its own activity ratios (the fields
    dcgm_fields.cpp registers at instance level: FB, XID, 1001-1008, 1013-1015). GPU_UTIL is not available
    under MIG (blank); every other field, PCIe/NVLink throughput included, reads as the parent GPU's."""
    readings = activity(sku, demand.engines, instance.compute_fraction)
    for field_id in (200, 201, 203, 204, 206, 207, 1009, 1010, 1011, 1012):
        del readings[field_id]
    readings[203] = None
    readings.update(framebuffer(instance.profile.fb_mib, 0, demand.fb_used_mib))
    return readings
