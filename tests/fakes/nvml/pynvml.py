"""Fake of nvidia-ml-py's ``pynvml``, for tests only: the real one loads libnvidia-ml from an NVIDIA driver,
which this machine lacks. Same names, constants and return shapes for the calls the NVML engine makes;
every call is recorded in ``CALLS`` and answered from ``STATE`` (tests set ``STATE.gpus[i][call]``; a value
that is an int in ``ERRORS`` is raised as that NVML error instead). A MIG-enabled GPU's MIG devices are
``STATE.migs[handle]`` (a MIG device handle is 100 * (GPU index + 1) + MIG device index), listed in
``STATE.gpus[i]["mig_devices"]``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2
NVML_TEMPERATURE_GPU = 0
NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 0, 1
NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 0, 1
NVML_VOLATILE_ECC, NVML_AGGREGATE_ECC = 0, 1
NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS, NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 0, 1
NVML_PERF_POLICY_POWER, NVML_PERF_POLICY_THERMAL, NVML_PERF_POLICY_SYNC_BOOST = 0, 1, 2
NVML_PERF_POLICY_BOARD_LIMIT, NVML_PERF_POLICY_LOW_UTILIZATION, NVML_PERF_POLICY_RELIABILITY = 3, 4, 5
NVML_NVLINK_ERROR_DL_REPLAY, NVML_NVLINK_ERROR_DL_RECOVERY = 0, 1
NVML_NVLINK_ERROR_DL_CRC_FLIT, NVML_NVLINK_ERROR_DL_CRC_DATA = 2, 3
NVML_NVLINK_MAX_LINKS = 18
NVML_PCIE_UTIL_TX_BYTES, NVML_PCIE_UTIL_RX_BYTES = 0, 1
NVML_FI_DEV_MEMORY_TEMP = 82
NVML_FEATURE_DISABLED, NVML_FEATURE_ENABLED = 0, 1
NVML_DEVICE_MIG_DISABLE, NVML_DEVICE_MIG_ENABLE = 0, 1

ERRORS = frozenset((NVML_ERROR_INVALID_ARGUMENT, NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NO_PERMISSION,
                    NVML_ERROR_NOT_FOUND, NVML_ERROR_FUNCTION_NOT_FOUND, NVML_ERROR_GPU_IS_LOST,
                    NVML_ERROR_UNKNOWN, NVML_ERROR_DRIVER_NOT_LOADED))  # fmt: skip


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return f"NVML error {self.value}"


class Err:
    """A stored reading that makes its call raise NVMLError(code)."""

    def __init__(self, code: int) -> None:
        self.code = code


def sample_gpu(index: int) -> dict[str, Any]:
    """Every reading of one GPU, keyed by call (and argument where one call answers several fields)."""
    mib = 1 << 20
    return {
        "name": "NVIDIA H100 80GB HBM3", "brand": 2, "serial": f"165432{index}", "uuid": f"GPU-nvml-{index}",
        "minor": index, "busId": f"00000000:1{index}:00.0", "vbios": "96.00.74.00.01", "persistence": 1,
        "clock/1": 1980, "clock/2": 2619, "events": 4, "temp": 40 + index, "thr/0": 92, "thr/1": 89,
        "pstate": 0, "fan": Err(NVML_ERROR_NOT_SUPPORTED), "power": 123456, "power_limit": 700000, "power_default": 700000,
        "power_enforced": 650000, "power_constraints": (200000, 700000), "energy": 5_000_000, "replay": 3,
        "pcie/0": 12000, "pcie/1": 34000,
        "util": SimpleNamespace(gpu=42, memory=17), "enc": [5, 167000], "dec": [6, 167000],
        "violation": [10 * (p + 1) for p in range(6)],
        "memory": SimpleNamespace(total=81559 * mib, free=80000 * mib, used=1024 * mib, reserved=535 * mib),
        "ecc/0/0": 1, "ecc/1/0": 2, "ecc/0/1": 3, "ecc/1/1": 4, "retired/0": [1, 2], "retired/1": [3],
        "retired_pending": 0, "remapped": (5, 6, 0, 0), "links": {0: (1, [7, 8, 9, 10]), 1: (1, [1, 1, 1, 1])},
        "mig": (NVML_DEVICE_MIG_DISABLE, NVML_DEVICE_MIG_DISABLE), "fields/82": Err(NVML_ERROR_NOT_SUPPORTED),
    }  # fmt: skip


@dataclass
class Nvml:
    gpus: list[dict[str, Any]] = field(default_factory=lambda: [sample_gpu(0), sample_gpu(1)])
    migs: dict[int, dict[str, Any]] = field(default_factory=dict)  # MIG device handle -> its readings
    init_error: int | None = None  # nvmlInit raises this code
    initialized: int = 0


STATE = Nvml()
if os.environ.get("FAKE_NVML_NO_LIBRARY"):  # a subprocess test: no driver on this host
    STATE.init_error = NVML_ERROR_LIBRARY_NOT_FOUND
CALLS: list[tuple[Any, ...]] = []


def reset(count: int = 2) -> Nvml:
    global STATE
    STATE = Nvml([sample_gpu(i) for i in range(count)])
    CALLS.clear()
    return STATE


def _answer(call: str, handle: int, key: str, *args: Any) -> Any:
    CALLS.append((call, handle, *args))
    if not STATE.initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    value = STATE.migs[handle][key] if handle in STATE.migs else STATE.gpus[handle][key]
    if isinstance(value, Err):
        raise NVMLError(value.code)
    return value


def nvmlInit() -> None:
    CALLS.append(("nvmlInit",))
    if STATE.init_error is not None:
        raise NVMLError(STATE.init_error)
    STATE.initialized += 1


def nvmlShutdown() -> None:
    CALLS.append(("nvmlShutdown",))
    STATE.initialized = max(0, STATE.initialized - 1)


def nvmlSystemGetDriverVersion() -> str:
    CALLS.append(("nvmlSystemGetDriverVersion",))
    return "550.54.15"


def nvmlSystemGetNVMLVersion() -> str:
    CALLS.append(("nvmlSystemGetNVMLVersion",))
    return "12.550.54.15"


def nvmlDeviceGetCount() -> int:
    CALLS.append(("nvmlDeviceGetCount",))
    if not STATE.initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return len(STATE.gpus)


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    CALLS.append(("nvmlDeviceGetHandleByIndex", index))
    return index


def _simple(call: str, key: str) -> Any:
    return lambda handle: _answer(call, handle, key)


nvmlDeviceGetName = _simple("nvmlDeviceGetName", "name")
nvmlDeviceGetBrand = _simple("nvmlDeviceGetBrand", "brand")
nvmlDeviceGetSerial = _simple("nvmlDeviceGetSerial", "serial")
nvmlDeviceGetUUID = _simple("nvmlDeviceGetUUID", "uuid")
nvmlDeviceGetMinorNumber = _simple("nvmlDeviceGetMinorNumber", "minor")
nvmlDeviceGetVbiosVersion = _simple("nvmlDeviceGetVbiosVersion", "vbios")
nvmlDeviceGetPersistenceMode = _simple("nvmlDeviceGetPersistenceMode", "persistence")
nvmlDeviceGetCurrentClocksEventReasons = _simple("nvmlDeviceGetCurrentClocksEventReasons", "events")
nvmlDeviceGetPerformanceState = _simple("nvmlDeviceGetPerformanceState", "pstate")
nvmlDeviceGetFanSpeed = _simple("nvmlDeviceGetFanSpeed", "fan")
nvmlDeviceGetPowerUsage = _simple("nvmlDeviceGetPowerUsage", "power")
nvmlDeviceGetPowerManagementLimit = _simple("nvmlDeviceGetPowerManagementLimit", "power_limit")
nvmlDeviceGetPowerManagementDefaultLimit = _simple("nvmlDeviceGetPowerManagementDefaultLimit", "power_default")
nvmlDeviceGetPowerManagementLimitConstraints = _simple(
    "nvmlDeviceGetPowerManagementLimitConstraints", "power_constraints"
)
nvmlDeviceGetEnforcedPowerLimit = _simple("nvmlDeviceGetEnforcedPowerLimit", "power_enforced")
nvmlDeviceGetTotalEnergyConsumption = _simple("nvmlDeviceGetTotalEnergyConsumption", "energy")
nvmlDeviceGetPcieReplayCounter = _simple("nvmlDeviceGetPcieReplayCounter", "replay")
nvmlDeviceGetUtilizationRates = _simple("nvmlDeviceGetUtilizationRates", "util")
nvmlDeviceGetEncoderUtilization = _simple("nvmlDeviceGetEncoderUtilization", "enc")
nvmlDeviceGetDecoderUtilization = _simple("nvmlDeviceGetDecoderUtilization", "dec")
nvmlDeviceGetRetiredPagesPendingStatus = _simple("nvmlDeviceGetRetiredPagesPendingStatus", "retired_pending")
nvmlDeviceGetRemappedRows = _simple("nvmlDeviceGetRemappedRows", "remapped")
nvmlDeviceGetMigMode = _simple("nvmlDeviceGetMigMode", "mig")
nvmlDeviceGetGpuInstanceId = _simple("nvmlDeviceGetGpuInstanceId", "gi")
nvmlDeviceGetAttributes = _simple("nvmlDeviceGetAttributes", "attributes")


def add_mig_device(gpu: int, instance_id: int, profile: str, fb_mib: int, used_mib: int, named: bool = True) -> int:
    """Make ``gpu`` MIG-enabled with one more MIG device; its handle. Unnamed: a name without the profile."""
    mib, readings = 1 << 20, STATE.gpus[gpu]
    readings["mig"] = (NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE)
    devices = readings.setdefault("mig_devices", [])
    handle = 100 * (gpu + 1) + len(devices)
    devices.append(handle)
    slices, memory_gb = profile.split(".", maxsplit=1)[0].rstrip("g"), profile.split(".")[1]
    STATE.migs[handle] = {
        "gi": instance_id, "name": f"{readings['name']} MIG {profile}" if named else readings["name"],
        "attributes": SimpleNamespace(gpuInstanceSliceCount=int(slices), memorySizeMB=int(memory_gb[:-2]) * 1000),
        "memory": SimpleNamespace(total=fb_mib * mib, free=(fb_mib - used_mib) * mib, used=used_mib * mib,
                                  reserved=0),
    }  # fmt: skip
    return handle


def nvmlDeviceGetMaxMigDeviceCount(handle: int) -> int:
    CALLS.append(("nvmlDeviceGetMaxMigDeviceCount", handle))
    return 7


def nvmlDeviceGetMigDeviceHandleByIndex(handle: int, index: int) -> int:
    CALLS.append(("nvmlDeviceGetMigDeviceHandleByIndex", handle, index))
    devices = STATE.gpus[handle].get("mig_devices", [])
    if index >= len(devices):
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return int(devices[index])


_MEMORY_V2 = 0x02000028  # nvmlMemory_v2_t's version word
nvmlMemory_v2 = _MEMORY_V2


def nvmlDeviceGetMemoryInfo(handle: int, version: int | None = None) -> Any:
    """Version 1: used includes the driver's reservation; version 2 reports it apart."""
    memory = _answer("nvmlDeviceGetMemoryInfo", handle, "memory", *([version] if version else []))
    if version != _MEMORY_V2:
        return SimpleNamespace(total=memory.total, free=memory.free, used=memory.total - memory.free)
    return memory


def nvmlDeviceGetPciInfo(handle: int) -> Any:
    return SimpleNamespace(busId=_answer("nvmlDeviceGetPciInfo", handle, "busId").encode())  # bytes, as older bindings


def nvmlDeviceGetClockInfo(handle: int, clock: int) -> int:
    return int(_answer("nvmlDeviceGetClockInfo", handle, f"clock/{clock}", clock))


def nvmlDeviceGetPcieThroughput(handle: int, counter: int) -> int:
    return int(_answer("nvmlDeviceGetPcieThroughput", handle, f"pcie/{counter}", counter))


def nvmlDeviceGetTemperature(handle: int, sensor: int) -> int:
    return int(_answer("nvmlDeviceGetTemperature", handle, "temp", sensor))


def nvmlDeviceGetTemperatureThreshold(handle: int, threshold: int) -> int:
    return int(_answer("nvmlDeviceGetTemperatureThreshold", handle, f"thr/{threshold}", threshold))


def nvmlDeviceGetViolationStatus(handle: int, policy: int) -> Any:
    times = _answer("nvmlDeviceGetViolationStatus", handle, "violation", policy)
    return SimpleNamespace(referenceTime=0, violationTime=times[policy])


def nvmlDeviceGetTotalEccErrors(handle: int, error_type: int, counter_type: int) -> int:
    return int(
        _answer("nvmlDeviceGetTotalEccErrors", handle, f"ecc/{error_type}/{counter_type}", error_type, counter_type)
    )


def nvmlDeviceGetRetiredPages(handle: int, cause: int) -> list[int]:
    return list(_answer("nvmlDeviceGetRetiredPages", handle, f"retired/{cause}", cause))


def nvmlDeviceGetNvLinkState(handle: int, link: int) -> int:
    links = _answer("nvmlDeviceGetNvLinkState", handle, "links", link)
    if link not in links:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return int(links[link][0])


def nvmlDeviceGetNvLinkErrorCounter(handle: int, link: int, counter: int) -> int:
    return int(_answer("nvmlDeviceGetNvLinkErrorCounter", handle, "links", link, counter)[link][1][counter])


def nvmlDeviceGetFieldValues(handle: int, field_ids: list[int]) -> list[Any]:
    """Per-value status, as NVML reports it: the call itself succeeds."""
    out = []
    for field_id in field_ids:
        try:
            value, code = _answer("nvmlDeviceGetFieldValues", handle, f"fields/{field_id}", field_id), NVML_SUCCESS
        except NVMLError as exc:
            if exc.value == NVML_ERROR_UNINITIALIZED:
                raise
            value, code = 0, exc.value
        out.append(SimpleNamespace(fieldId=field_id, nvmlReturn=code, value=SimpleNamespace(uiVal=value)))
    return out
