"""The DCGM field catalog: id, name, value type, unit and default metric kind of every field we know.

Ids and names follow DCGM's ``dcgm_fields.h``; where DCGM renamed a field, both spellings resolve to the
same entry and the name a collectors file uses is the name that is exported.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class ValueType(enum.Enum):
    """How DCGM stores a field's value."""

    INT = "int"
    DOUBLE = "double"
    STRING = "str"


# Which DCGM entities a field belongs to (DCGM's entity level): GPUs, NVSwitches, or the NVLinks of a switch.
ENTITY_GPU = "gpu"
ENTITY_SWITCH = "switch"
ENTITY_LINK = "link"


class MetricKind(enum.Enum):
    """How dcgm-exporter exposes a field (the collectors CSV's second column)."""

    GAUGE = "gauge"
    COUNTER = "counter"
    LABEL = "label"


@dataclass(frozen=True)
class FieldSpec:
    """One DCGM field. ``unit`` is UCUM (the OpenTelemetry convention); ``aliases`` are other spellings."""

    id: int
    name: str
    value_type: ValueType
    unit: str
    kind: MetricKind
    help: str
    aliases: tuple[str, ...] = ()
    counts_field: int | None = None  # computed by the exporter: events of this DCGM field in a sliding window
    entity: str = ENTITY_GPU  # ENTITY_SWITCH / ENTITY_LINK: read from those entities, labelled as dcgm-exporter does
    derived_from: tuple[int, ...] = ()  # computed by the exporter from these fields of each GPU (9003, 9004)

    @property
    def is_computed(self) -> bool:
        """Not read from the engine: counted from the samples of ``counts_field`` (DCGM_EXP_*_COUNT)."""
        return self.counts_field is not None or bool(self.derived_from)

    @property
    def is_profiling(self) -> bool:
        """Profiling ("DCP") fields live in 1000-1099 and are not available on every GPU."""
        return 1000 <= self.id < 1100


_I, _D, _S = ValueType.INT, ValueType.DOUBLE, ValueType.STRING
_G, _C, _L = MetricKind.GAUGE, MetricKind.COUNTER, MetricKind.LABEL


def _f(fid: int, name: str, vt: ValueType, unit: str, kind: MetricKind, help_: str, *aliases: str) -> FieldSpec:
    return FieldSpec(fid, name, vt, unit, kind, help_, tuple(aliases))


FIELDS: tuple[FieldSpec, ...] = (
    _f(1, "DCGM_FI_DRIVER_VERSION", _S, "", _L, "Driver version."),
    _f(2, "DCGM_FI_NVML_VERSION", _S, "", _L, "NVML version."),
    _f(4, "DCGM_FI_DEV_COUNT", _I, "{device}", _G, "Number of devices on the node."),
    _f(50, "DCGM_FI_DEV_NAME", _S, "", _L, "Device name (model)."),
    _f(51, "DCGM_FI_DEV_BRAND", _S, "", _L, "Device brand."),
    _f(53, "DCGM_FI_DEV_SERIAL", _S, "", _L, "Device serial number."),
    _f(54, "DCGM_FI_DEV_UUID", _S, "", _L, "Device UUID."),
    _f(55, "DCGM_FI_DEV_MINOR_NUMBER", _I, "", _L, "Device node minor number (/dev/nvidiaN)."),
    _f(57, "DCGM_FI_DEV_PCI_BUSID", _S, "", _L, "PCI bus id."),
    _f(85, "DCGM_FI_DEV_VBIOS_VERSION", _S, "", _L, "VBIOS version."),
    _f(66, "DCGM_FI_DEV_PERSISTENCE_MODE", _I, "1", _G, "Persistence mode: 1 enabled, 0 disabled.",
       "DCGM_FI_DEV_GPU_PERSISTENCE_MODE"),
    _f(100, "DCGM_FI_DEV_SM_CLOCK", _I, "MHz", _G, "SM clock frequency (in MHz)."),
    _f(101, "DCGM_FI_DEV_MEM_CLOCK", _I, "MHz", _G, "Memory clock frequency (in MHz)."),
    _f(
        112,
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        _I,
        "1",
        _G,
        "Bitmask of reasons the clocks are held down.",
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    ),
    _f(140, "DCGM_FI_DEV_MEMORY_TEMP", _I, "Cel", _G, "Memory temperature (in C)."),
    _f(150, "DCGM_FI_DEV_GPU_TEMP", _I, "Cel", _G, "GPU temperature (in C)."),
    _f(158, "DCGM_FI_DEV_SLOWDOWN_TEMP", _I, "Cel", _G, "Temperature at which the GPU slows down (in C)."),
    _f(159, "DCGM_FI_DEV_SHUTDOWN_TEMP", _I, "Cel", _G, "Temperature at which the GPU shuts down (in C)."),
    _f(190, "DCGM_FI_DEV_PSTATE", _I, "1", _G, "Performance state (P-state) 0-15; 0 is the fastest."),
    _f(191, "DCGM_FI_DEV_FAN_SPEED", _I, "%", _G, "Fan speed (in %); blank on fanless SXM modules."),
    _f(155, "DCGM_FI_DEV_POWER_USAGE", _D, "W", _G, "Power draw (in W)."),
    _f(156, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", _I, "mJ", _C, "Energy used since driver load (in mJ)."),
    _f(200, "DCGM_FI_DEV_PCIE_TX_THROUGHPUT", _I, "KiBy/s", _G, "PCIe TX throughput (in KB/s); DCGM prefers 1009."),
    _f(201, "DCGM_FI_DEV_PCIE_RX_THROUGHPUT", _I, "KiBy/s", _G, "PCIe RX throughput (in KB/s); DCGM prefers 1010."),
    _f(202, "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", _I, "{replay}", _C, "Total PCIe retries."),
    _f(203, "DCGM_FI_DEV_GPU_UTIL", _I, "%", _G, "GPU utilization (in %)."),
    _f(204, "DCGM_FI_DEV_MEM_COPY_UTIL", _I, "%", _G, "Memory copy utilization (in %)."),
    _f(206, "DCGM_FI_DEV_ENC_UTIL", _I, "%", _G, "Encoder utilization (in %)."),
    _f(207, "DCGM_FI_DEV_DEC_UTIL", _I, "%", _G, "Decoder utilization (in %)."),
    _f(230, "DCGM_FI_DEV_XID_ERRORS", _I, "1", _G, "Value of the last XID error encountered."),
    _f(240, "DCGM_FI_DEV_POWER_VIOLATION", _I, "ns", _C, "Throttling duration due to power constraints."),
    _f(241, "DCGM_FI_DEV_THERMAL_VIOLATION", _I, "ns", _C, "Throttling duration due to thermal limits."),
    _f(242, "DCGM_FI_DEV_SYNC_BOOST_VIOLATION", _I, "ns", _C, "Throttling duration due to sync boost."),
    _f(243, "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION", _I, "ns", _C, "Throttling duration due to board limits."),
    _f(244, "DCGM_FI_DEV_LOW_UTIL_VIOLATION", _I, "ns", _C, "Throttling duration due to low utilization."),
    _f(245, "DCGM_FI_DEV_RELIABILITY_VIOLATION", _I, "ns", _C, "Throttling duration due to reliability."),
    _f(250, "DCGM_FI_DEV_FB_TOTAL", _I, "MiBy", _G, "Total framebuffer memory (in MiB)."),
    _f(251, "DCGM_FI_DEV_FB_FREE", _I, "MiBy", _G, "Framebuffer memory free (in MiB)."),
    _f(252, "DCGM_FI_DEV_FB_USED", _I, "MiBy", _G, "Framebuffer memory used (in MiB)."),
    _f(253, "DCGM_FI_DEV_FB_RESERVED", _I, "MiBy", _G, "Framebuffer memory reserved (in MiB)."),
    _f(254, "DCGM_FI_DEV_FB_USED_PERCENT", _D, "1", _G, "Ratio of framebuffer used: used/(total-reserved)."),
    _f(310, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", _I, "{error}", _C, "Single-bit volatile ECC errors."),
    _f(311, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", _I, "{error}", _C, "Double-bit volatile ECC errors."),
    _f(312, "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", _I, "{error}", _C, "Single-bit persistent ECC errors."),
    _f(313, "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", _I, "{error}", _C, "Double-bit persistent ECC errors."),
    _f(390, "DCGM_FI_DEV_RETIRED_SBE", _I, "{page}", _C, "Pages retired for single-bit errors."),
    _f(391, "DCGM_FI_DEV_RETIRED_DBE", _I, "{page}", _C, "Pages retired for double-bit errors."),
    _f(392, "DCGM_FI_DEV_RETIRED_PENDING", _I, "{page}", _G, "Pages pending retirement."),
    _f(
        393,
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        _I,
        "{row}",
        _C,
        "Rows remapped for uncorrectable errors.",
    ),
    _f(394, "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", _I, "{row}", _C, "Rows remapped for correctable errors."),
    _f(395, "DCGM_FI_DEV_ROW_REMAP_FAILURE", _I, "1", _G, "Whether remapping of rows has failed."),
    _f(396, "DCGM_FI_DEV_ROW_REMAP_PENDING", _I, "1", _G, "Whether a row remap is pending (reset needed)."),
    _f(
        409,
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
        _I,
        "{error}",
        _C,
        "NVLink flow-control CRC errors.",
    ),
    _f(
        419,
        "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
        _I,
        "{error}",
        _C,
        "NVLink data CRC errors.",
    ),
    _f(429, "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", _I, "{error}", _C, "NVLink replay errors."),
    _f(439, "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL", _I, "{error}", _C, "NVLink recovery errors."),
    _f(
        449,
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        _I,
        "MiBy/s",
        _C,
        "NVLink throughput, TX+RX over all links (an instantaneous rate in about MiB/s, not a running total).",
    ),
    _f(526, "DCGM_FI_DEV_VGPU_LICENSE_STATUS", _I, "1", _G, "vGPU license status."),
    _f(1001, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", _D, "1", _G, "Ratio of time the graphics engine is active."),
    _f(1002, "DCGM_FI_PROF_SM_ACTIVE", _D, "1", _G, "Ratio of cycles an SM has at least one warp."),
    _f(1003, "DCGM_FI_PROF_SM_OCCUPANCY", _D, "1", _G, "Ratio of resident warps to the SM maximum."),
    _f(1004, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", _D, "1", _G, "Ratio of cycles the tensor pipe is active."),
    _f(1005, "DCGM_FI_PROF_DRAM_ACTIVE", _D, "1", _G, "Ratio of cycles the memory interface is busy."),
    _f(1006, "DCGM_FI_PROF_PIPE_FP64_ACTIVE", _D, "1", _G, "Ratio of cycles the FP64 pipe is active."),
    _f(1007, "DCGM_FI_PROF_PIPE_FP32_ACTIVE", _D, "1", _G, "Ratio of cycles the FP32 pipe is active."),
    _f(1008, "DCGM_FI_PROF_PIPE_FP16_ACTIVE", _D, "1", _G, "Ratio of cycles the FP16 pipe is active."),
    _f(1009, "DCGM_FI_PROF_PCIE_TX_BYTES", _I, "By/s", _G, "PCIe bytes transmitted per second."),
    _f(1010, "DCGM_FI_PROF_PCIE_RX_BYTES", _I, "By/s", _G, "PCIe bytes received per second."),
    _f(1011, "DCGM_FI_PROF_NVLINK_TX_BYTES", _I, "By/s", _G, "NVLink bytes transmitted per second."),
    _f(1012, "DCGM_FI_PROF_NVLINK_RX_BYTES", _I, "By/s", _G, "NVLink bytes received per second."),
    # Tensor pipes by precision (dcgm_fields.h: DCGM_FI_PROF_{IMMA,HMMA,DFMA}_UTIL_RATIO, older PIPE_TENSOR_* names).
    _f(
        1013, "DCGM_FI_PROF_PIPE_TENSOR_IMMA_ACTIVE", _D, "1", _G,
        "Ratio of cycles the IMMA (integer) tensor pipe is active.", "DCGM_FI_PROF_IMMA_UTIL_RATIO",
    ),
    _f(
        1014, "DCGM_FI_PROF_PIPE_TENSOR_HMMA_ACTIVE", _D, "1", _G,
        "Ratio of cycles the HMMA (FP16/BF16/TF32) tensor pipe is active.", "DCGM_FI_PROF_HMMA_UTIL_RATIO",
    ),
    _f(
        1015, "DCGM_FI_PROF_PIPE_TENSOR_DFMA_ACTIVE", _D, "1", _G,
        "Ratio of cycles the DFMA (FP64) tensor pipe is active.", "DCGM_FI_PROF_DFMA_UTIL_RATIO",
    ),
    # NVSwitch fields (DigitalOcean's default set spells them with DCGM 3's names; DCGM 4's names are aliases).
    FieldSpec(856, "DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS", _I, "1", _G, "Last fatal SXid of the NVSwitch (0: none).",
              ("DCGM_FI_DEV_SXID_FATAL_ERROR",), entity=ENTITY_SWITCH),
    FieldSpec(857, "DCGM_FI_DEV_NVSWITCH_NON_FATAL_ERRORS", _I, "1", _G,
              "Last non-fatal SXid of the NVSwitch (0: none).", ("DCGM_FI_DEV_SXID_NON_FATAL_ERROR",),
              entity=ENTITY_SWITCH),
    FieldSpec(858, "DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT", _I, "Cel", _G, "NVSwitch temperature (in C).",
              ("DCGM_FI_DEV_NVSWITCH_TEMP_CELSIUS",), entity=ENTITY_SWITCH),
    FieldSpec(859, "DCGM_FI_DEV_NVSWITCH_TEMPERATURE_LIMIT_SLOWDOWN", _I, "Cel", _G,
              "NVSwitch slowdown temperature (in C).", ("DCGM_FI_DEV_NVSWITCH_TEMP_SLOWDOWN_CELSIUS",),
              entity=ENTITY_SWITCH),
    FieldSpec(860, "DCGM_FI_DEV_NVSWITCH_TEMPERATURE_LIMIT_SHUTDOWN", _I, "Cel", _G,
              "NVSwitch shutdown temperature (in C).", ("DCGM_FI_DEV_NVSWITCH_TEMP_SHUTDOWN_CELSIUS",),
              entity=ENTITY_SWITCH),
    FieldSpec(861, "DCGM_FI_DEV_NVSWITCH_THROUGHPUT_TX", _I, "KiBy", _C, "NVSwitch data transmitted (in KiB).",
              entity=ENTITY_SWITCH),
    FieldSpec(862, "DCGM_FI_DEV_NVSWITCH_THROUGHPUT_RX", _I, "KiBy", _C, "NVSwitch data received (in KiB).",
              entity=ENTITY_SWITCH),
    FieldSpec(870, "DCGM_FI_DEV_NVSWITCH_LINK_STATUS", _I, "1", _G,
              "NVLink status: -1 unknown, 0 off, 1 safe, 2 active, 3 error, 4 inactive.", entity=ENTITY_LINK),
    # dcgm-exporter's own fields (ids 9001, 9002): counts of the samples of an event field in a sliding window.
    FieldSpec(
        9001, "DCGM_EXP_XID_ERRORS_COUNT", _I, "{error}", _G,
        "Count of XID errors within the sliding window (--xid-count-window-size), by XID.", counts_field=230,
    ),
    FieldSpec(
        9002, "DCGM_EXP_CLOCK_EVENTS_COUNT", _I, "{event}", _G,
        "Count of clock events within the sliding window (--clock-events-count-window-size), by reason.",
        counts_field=112,
    ),
    # dcgm-exporter's health pseudo-fields (9003, 9004), computed each cycle from these fields of every GPU: the one
    # list of what telemetry/dcgm_health.py reads (test_health_status checks it reads no other).
    FieldSpec(
        9003, "DCGM_EXP_GPU_HEALTH_STATUS", _I, "1", _G,
        "Health of each DCGM health watch (0 pass, 10 warn, 20 fail).",
        derived_from=(230, 112, 150, 155, 311, 395, 396),
    ),
    FieldSpec(
        9004, "DCGM_EXP_P2P_STATUS", _I, "1", _G, "Peer-to-peer status towards each peer GPU (0 OK).",
        derived_from=(230,),
    ),
)  # fmt: skip


class UnknownFieldError(LookupError):
    """A field name or id that the catalog does not hold."""


class FieldCatalog:
    """Lookup of fields by id or by any of their names."""

    def __init__(self, fields: Iterable[FieldSpec]) -> None:
        self._by_id: dict[int, FieldSpec] = {}
        self._by_name: dict[str, FieldSpec] = {}
        for spec in fields:
            if spec.id in self._by_id:
                raise ValueError(f"duplicate field id {spec.id}")
            self._by_id[spec.id] = spec
            for name in (spec.name, *spec.aliases):
                self._by_name[name] = spec

    def by_id(self, field_id: int) -> FieldSpec:
        try:
            return self._by_id[field_id]
        except KeyError:
            raise UnknownFieldError(f"unknown DCGM field id {field_id}") from None

    def by_name(self, name: str) -> FieldSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownFieldError(f"unknown DCGM field {name!r}") from None

    def lookup(self, key: str | int) -> FieldSpec:
        """A field by id (int or digits) or by name."""
        if isinstance(key, int):
            return self.by_id(key)
        return self.by_id(int(key)) if key.isdigit() else self.by_name(key)

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


CATALOG = FieldCatalog(FIELDS)

# Identity fields every engine answers for every GPU: they become the label set of each series.
IDENTITY_FIELD_IDS: tuple[int, ...] = (50, 54, 55, 57)
