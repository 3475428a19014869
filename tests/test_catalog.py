"""The field catalog holds every field of compat §3 with the right id, type and kind."""

from __future__ import annotations

import pytest

from otel_fakegpu.fields import CATALOG, MetricKind, UnknownFieldError, ValueType

# id -> name, straight from the reference table; a wrong id here is a wrong metric for every user.
REFERENCE_IDS = {
    1: "DCGM_FI_DRIVER_VERSION", 2: "DCGM_FI_NVML_VERSION", 4: "DCGM_FI_DEV_COUNT", 50: "DCGM_FI_DEV_NAME",
    51: "DCGM_FI_DEV_BRAND", 53: "DCGM_FI_DEV_SERIAL", 54: "DCGM_FI_DEV_UUID", 55: "DCGM_FI_DEV_MINOR_NUMBER",
    57: "DCGM_FI_DEV_PCI_BUSID", 85: "DCGM_FI_DEV_VBIOS_VERSION", 100: "DCGM_FI_DEV_SM_CLOCK",
    101: "DCGM_FI_DEV_MEM_CLOCK", 112: "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", 140: "DCGM_FI_DEV_MEMORY_TEMP",
    150: "DCGM_FI_DEV_GPU_TEMP", 155: "DCGM_FI_DEV_POWER_USAGE", 156: "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    202: "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 203: "DCGM_FI_DEV_GPU_UTIL", 204: "DCGM_FI_DEV_MEM_COPY_UTIL",
    206: "DCGM_FI_DEV_ENC_UTIL", 207: "DCGM_FI_DEV_DEC_UTIL", 230: "DCGM_FI_DEV_XID_ERRORS",
    240: "DCGM_FI_DEV_POWER_VIOLATION", 241: "DCGM_FI_DEV_THERMAL_VIOLATION",
    242: "DCGM_FI_DEV_SYNC_BOOST_VIOLATION", 243: "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION",
    244: "DCGM_FI_DEV_LOW_UTIL_VIOLATION", 245: "DCGM_FI_DEV_RELIABILITY_VIOLATION", 250: "DCGM_FI_DEV_FB_TOTAL",
    251: "DCGM_FI_DEV_FB_FREE", 252: "DCGM_FI_DEV_FB_USED", 253: "DCGM_FI_DEV_FB_RESERVED",
    254: "DCGM_FI_DEV_FB_USED_PERCENT", 310: "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", 311: "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    312: "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", 313: "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", 390: "DCGM_FI_DEV_RETIRED_SBE",
    391: "DCGM_FI_DEV_RETIRED_DBE", 392: "DCGM_FI_DEV_RETIRED_PENDING",
    393: "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", 394: "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    395: "DCGM_FI_DEV_ROW_REMAP_FAILURE", 396: "DCGM_FI_DEV_ROW_REMAP_PENDING",
    409: "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", 419: "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
    429: "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", 439: "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
    449: "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", 526: "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    1001: "DCGM_FI_PROF_GR_ENGINE_ACTIVE", 1002: "DCGM_FI_PROF_SM_ACTIVE", 1003: "DCGM_FI_PROF_SM_OCCUPANCY",
    1004: "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 1005: "DCGM_FI_PROF_DRAM_ACTIVE",
    1006: "DCGM_FI_PROF_PIPE_FP64_ACTIVE", 1007: "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
    1008: "DCGM_FI_PROF_PIPE_FP16_ACTIVE", 1009: "DCGM_FI_PROF_PCIE_TX_BYTES", 1010: "DCGM_FI_PROF_PCIE_RX_BYTES",
    1011: "DCGM_FI_PROF_NVLINK_TX_BYTES", 1012: "DCGM_FI_PROF_NVLINK_RX_BYTES",
}  # fmt: skip


@pytest.mark.parametrize(("field_id", "name"), sorted(REFERENCE_IDS.items()))
def test_every_reference_field_resolves_by_id_and_name(field_id: int, name: str) -> None:
    assert CATALOG.by_id(field_id).name == name
    assert CATALOG.by_name(name).id == field_id
    assert CATALOG.lookup(str(field_id)).id == field_id


def test_renamed_field_resolves_under_both_spellings() -> None:
    legacy = CATALOG.by_name("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS")
    assert CATALOG.by_name("DCGM_FI_DEV_CLOCKS_EVENT_REASONS") is legacy
    assert legacy.id == 112


def test_types_units_and_kinds_follow_dcgm() -> None:
    assert CATALOG.by_id(155).value_type is ValueType.DOUBLE and CATALOG.by_id(155).unit == "W"
    assert CATALOG.by_id(156).kind is MetricKind.COUNTER and CATALOG.by_id(156).unit == "mJ"
    assert CATALOG.by_id(1).value_type is ValueType.STRING and CATALOG.by_id(1).kind is MetricKind.LABEL
    assert CATALOG.by_id(1004).is_profiling and not CATALOG.by_id(150).is_profiling
    assert CATALOG.by_id(252).unit == "MiBy"


def test_unknown_field_is_a_clear_error() -> None:
    with pytest.raises(UnknownFieldError, match="DCGM_FI_DEV_NOPE"):
        CATALOG.by_name("DCGM_FI_DEV_NOPE")
    with pytest.raises(UnknownFieldError, match="9999"):
        CATALOG.by_id(9999)
