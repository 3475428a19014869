"""OpenTelemetry semantic-convention names for GPUs (``--naming otel``), derived from DCGM fields.

| instrument | kind | unit | from | conversion |
|---|---|---|---|---|
| hw.gpu.utilization | gauge | 1 | DCGM_FI_DEV_GPU_UTIL (203) | % / 100 |
| hw.gpu.memory.usage | up-down counter | By | DCGM_FI_DEV_FB_USED (252) | MiB * 2^20 |
| hw.gpu.memory.limit | up-down counter | By | DCGM_FI_DEV_FB_TOTAL (250) | MiB * 2^20 |
| hw.power | gauge | W | DCGM_FI_DEV_POWER_USAGE (155) | as is |
| hw.energy | counter | J | DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (156) | mJ / 1000 |
| hw.temperature | gauge | Cel | GPU_TEMP (150), MEMORY_TEMP (140) | ``hw.sensor_location`` gpu / memory |
| hw.errors | counter | {error} | ECC SBE (310), DBE (311), PCIe replay (202) | ``error.type`` (below) |

``error.type`` is ``corrected``, ``uncorrected`` or ``pcie_replay``. Every point carries ``hw.id``
(the GPU UUID), ``hw.type`` = ``gpu``, ``hw.name`` (model) and ``hw.vendor``.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class SemconvSeries:
    """One DCGM field feeding one semconv instrument, with a scale and fixed extra attributes."""

    field_id: int
    scale: float
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SemconvInstrument:
    name: str
    kind: str  # "gauge", "counter" or "updown"
    unit: str
    help: str
    series: tuple[SemconvSeries, ...]


SEMCONV_INSTRUMENTS: tuple[SemconvInstrument, ...] = (
    SemconvInstrument("hw.gpu.utilization", "gauge", "1", "GPU utilization.", (SemconvSeries(203, 0.01),)),
    SemconvInstrument("hw.gpu.memory.usage", "updown", "By", "GPU memory used.", (SemconvSeries(252, MIB),)),
    SemconvInstrument("hw.gpu.memory.limit", "updown", "By", "GPU memory size.", (SemconvSeries(250, MIB),)),
    SemconvInstrument("hw.power", "gauge", "W", "Instantaneous power drawn.", (SemconvSeries(155, 1.0),)),
    SemconvInstrument("hw.energy", "counter", "J", "Energy consumed.", (SemconvSeries(156, 0.001),)),
    SemconvInstrument(
        "hw.temperature",
        "gauge",
        "Cel",
        "Temperature.",
        (
            SemconvSeries(150, 1.0, (("hw.sensor_location", "gpu"),)),
            SemconvSeries(140, 1.0, (("hw.sensor_location", "memory"),)),
        ),
    ),
    SemconvInstrument(
        "hw.errors",
        "counter",
        "{error}",
        "Errors encountered by the GPU.",
        (
            SemconvSeries(310, 1.0, (("error.type", "corrected"),)),
            SemconvSeries(311, 1.0, (("error.type", "uncorrected"),)),
            SemconvSeries(202, 1.0, (("error.type", "pcie_replay"),)),
        ),
    ),
)

SEMCONV_FIELD_IDS: tuple[int, ...] = tuple(
    dict.fromkeys(s.field_id for inst in SEMCONV_INSTRUMENTS for s in inst.series)
)
