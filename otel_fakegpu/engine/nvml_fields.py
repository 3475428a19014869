"""Which NVML call answers each DCGM field, in DCGM's unit. Fields NVML cannot give by polling are absent
(blank): the XID (an event), NVLink bandwidth (a rate DCGM computes), the vGPU licence status, and the
profiling fields 1001+ (DCGM's own profiling module); so are NVSwitch and NVLink-entity fields (GPUs only here), and
DCGM 4.6's unaveraged power (157: NVML's instant reading needs a newer field query) and fabric health (174, 175)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otel_fakegpu.fields import Value

Reader = Callable[[Any, Any], "Value | None"]  # (the pynvml module, a device handle)
MIB = 1 << 20
NVLINK_DEFAULT_MAX_LINKS = 18
BRANDS = {0: "Unknown", 1: "Quadro", 2: "Tesla", 3: "NVS", 4: "Grid", 5: "GeForce", 6: "Titan"}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _clock_events(nv: Any, handle: Any) -> int:
    # Renamed in NVML 12.2 (throttle -> clocks event); older bindings have only the first name.
    call = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or nv.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(call(handle))


def _memory(nv: Any, handle: Any) -> tuple[int, int, int, int]:
    """(total, free, used, reserved) in MiB. Version 2 (drivers >= 510) reports the driver's reservation apart,
    as DCGM does; version 1 counts it in ``used``, leaving reserved as what the others do not cover."""
    version = getattr(nv, "nvmlMemory_v2", None)
    info = nv.nvmlDeviceGetMemoryInfo(handle, version=version) if version is not None else None
    if info is None:
        info = nv.nvmlDeviceGetMemoryInfo(handle)
    total, free, used = info.total // MIB, info.free // MIB, info.used // MIB
    reserved = getattr(info, "reserved", None)
    return total, free, used, reserved // MIB if reserved is not None else max(0, total - free - used)


def _memory_temp(nv: Any, handle: Any) -> int:
    # No dedicated call: NVML's field-value API (NVML_FI_DEV_MEMORY_TEMP), as nvidia-smi reads it.
    value = nv.nvmlDeviceGetFieldValues(handle, [nv.NVML_FI_DEV_MEMORY_TEMP])[0]
    if value.nvmlReturn != nv.NVML_SUCCESS:
        raise nv.NVMLError(value.nvmlReturn)
    return int(value.value.uiVal)


def _used_ratio(nv: Any, handle: Any) -> float | None:
    total, _, used, reserved = _memory(nv, handle)
    usable = total - reserved
    return used / usable if usable > 0 else None


def _nvlink_errors(counter: str) -> Reader:
    def read(nv: Any, handle: Any) -> int | None:
        links = getattr(nv, "NVML_NVLINK_MAX_LINKS", NVLINK_DEFAULT_MAX_LINKS)
        total, active = 0, 0
        for link in range(links):
            try:
                if nv.nvmlDeviceGetNvLinkState(handle, link) != nv.NVML_FEATURE_ENABLED:
                    continue
            except nv.NVMLError:  # no such link on this GPU
                continue
            active += 1
            total += int(nv.nvmlDeviceGetNvLinkErrorCounter(handle, link, getattr(nv, counter)))
        return total if active else None

    return read


def _violation(policy: str) -> Reader:
    return lambda nv, h: int(nv.nvmlDeviceGetViolationStatus(h, getattr(nv, policy)).violationTime)


def _ecc(error_type: str, counter_type: str) -> Reader:
    return lambda nv, h: int(nv.nvmlDeviceGetTotalEccErrors(h, getattr(nv, error_type), getattr(nv, counter_type)))


def _retired(cause: str) -> Reader:
    return lambda nv, h: len(nv.nvmlDeviceGetRetiredPages(h, getattr(nv, cause)))


READERS: dict[int, Reader] = {
    1: lambda nv, h: _text(nv.nvmlSystemGetDriverVersion()),
    2: lambda nv, h: _text(nv.nvmlSystemGetNVMLVersion()),
    4: lambda nv, h: int(nv.nvmlDeviceGetCount()),
    50: lambda nv, h: _text(nv.nvmlDeviceGetName(h)),
    51: lambda nv, h: BRANDS.get(int(nv.nvmlDeviceGetBrand(h)), "Unknown"),
    53: lambda nv, h: _text(nv.nvmlDeviceGetSerial(h)),
    54: lambda nv, h: _text(nv.nvmlDeviceGetUUID(h)),
    55: lambda nv, h: int(nv.nvmlDeviceGetMinorNumber(h)),
    57: lambda nv, h: _text(nv.nvmlDeviceGetPciInfo(h).busId),
    66: lambda nv, h: int(nv.nvmlDeviceGetPersistenceMode(h)),
    85: lambda nv, h: _text(nv.nvmlDeviceGetVbiosVersion(h)),
    100: lambda nv, h: int(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
    101: lambda nv, h: int(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
    112: _clock_events,
    140: _memory_temp,
    150: lambda nv, h: int(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
    155: lambda nv, h: nv.nvmlDeviceGetPowerUsage(h) / 1000.0,  # mW -> W
    156: lambda nv, h: int(nv.nvmlDeviceGetTotalEnergyConsumption(h)),  # mJ, as DCGM
    160: lambda nv, h: nv.nvmlDeviceGetPowerManagementLimit(h) / 1000.0,  # mW -> W
    162: lambda nv, h: nv.nvmlDeviceGetPowerManagementLimitConstraints(h)[1] / 1000.0,  # (min, max) in mW
    163: lambda nv, h: nv.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1000.0,
    164: lambda nv, h: nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0,
    158: lambda nv, h: int(nv.nvmlDeviceGetTemperatureThreshold(h, nv.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)),
    159: lambda nv, h: int(nv.nvmlDeviceGetTemperatureThreshold(h, nv.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN)),
    190: lambda nv, h: int(nv.nvmlDeviceGetPerformanceState(h)),
    191: lambda nv, h: int(nv.nvmlDeviceGetFanSpeed(h)),
    200: lambda nv, h: int(nv.nvmlDeviceGetPcieThroughput(h, nv.NVML_PCIE_UTIL_TX_BYTES)),  # KB/s, as DCGM
    201: lambda nv, h: int(nv.nvmlDeviceGetPcieThroughput(h, nv.NVML_PCIE_UTIL_RX_BYTES)),
    202: lambda nv, h: int(nv.nvmlDeviceGetPcieReplayCounter(h)),
    203: lambda nv, h: int(nv.nvmlDeviceGetUtilizationRates(h).gpu),
    204: lambda nv, h: int(nv.nvmlDeviceGetUtilizationRates(h).memory),
    206: lambda nv, h: int(nv.nvmlDeviceGetEncoderUtilization(h)[0]),
    207: lambda nv, h: int(nv.nvmlDeviceGetDecoderUtilization(h)[0]),
    240: _violation("NVML_PERF_POLICY_POWER"),
    241: _violation("NVML_PERF_POLICY_THERMAL"),
    242: _violation("NVML_PERF_POLICY_SYNC_BOOST"),
    243: _violation("NVML_PERF_POLICY_BOARD_LIMIT"),
    244: _violation("NVML_PERF_POLICY_LOW_UTILIZATION"),
    245: _violation("NVML_PERF_POLICY_RELIABILITY"),
    250: lambda nv, h: _memory(nv, h)[0],
    251: lambda nv, h: _memory(nv, h)[1],
    252: lambda nv, h: _memory(nv, h)[2],
    253: lambda nv, h: _memory(nv, h)[3],
    254: _used_ratio,
    310: _ecc("NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_VOLATILE_ECC"),
    311: _ecc("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_VOLATILE_ECC"),
    312: _ecc("NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_AGGREGATE_ECC"),
    313: _ecc("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_AGGREGATE_ECC"),
    390: _retired("NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS"),
    391: _retired("NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR"),
    392: lambda nv, h: int(nv.nvmlDeviceGetRetiredPagesPendingStatus(h)),
    393: lambda nv, h: int(nv.nvmlDeviceGetRemappedRows(h)[1]),
    394: lambda nv, h: int(nv.nvmlDeviceGetRemappedRows(h)[0]),
    395: lambda nv, h: int(nv.nvmlDeviceGetRemappedRows(h)[3]),
    396: lambda nv, h: int(nv.nvmlDeviceGetRemappedRows(h)[2]),
    409: _nvlink_errors("NVML_NVLINK_ERROR_DL_CRC_FLIT"),
    419: _nvlink_errors("NVML_NVLINK_ERROR_DL_CRC_DATA"),
    429: _nvlink_errors("NVML_NVLINK_ERROR_DL_REPLAY"),
    439: _nvlink_errors("NVML_NVLINK_ERROR_DL_RECOVERY"),
}
