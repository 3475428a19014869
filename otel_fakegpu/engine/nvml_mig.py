"""MIG devices through NVML: a MIG-enabled GPU's GPU instances, found with ``nvmlDeviceGetMigDeviceHandleByIndex``,
named by their profile and read as dcgm-exporter shows them (docs/mig.md)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

PROFILE_IN_NAME = re.compile(r"\b(\d+g\.\d+gb(?:\+me)?)\b")  # "NVIDIA A100-SXM4-80GB MIG 1g.10gb"


@dataclass(frozen=True)
class MigDevice:
    """One GPU instance's MIG device: its handle, GPU instance id and profile name."""

    handle: Any
    instance_id: int
    profile: str


def mig_enabled(nv: Any, handle: Any) -> bool:
    try:
        current, _pending = nv.nvmlDeviceGetMigMode(handle)
    except (nv.NVMLError, AttributeError):  # pre-Ampere GPUs, old bindings
        return False
    return bool(current == getattr(nv, "NVML_DEVICE_MIG_ENABLE", 1))


def mig_devices(nv: Any, handle: Any) -> list[MigDevice]:
    """The MIG devices of a MIG-enabled GPU, by index; an empty slot (NOT_FOUND) is skipped."""
    found = []
    for index in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)
        except nv.NVMLError as exc:
            if exc.value == nv.NVML_ERROR_NOT_FOUND:
                continue
            raise
        found.append(MigDevice(mig, int(nv.nvmlDeviceGetGpuInstanceId(mig)), _profile(nv, mig)))
    return found


def _profile(nv: Any, mig: Any) -> str:
    """The profile name NVML puts in a MIG device's name; else built from its slices and memory."""
    name = nv.nvmlDeviceGetName(mig)
    match = PROFILE_IN_NAME.search(name.decode() if isinstance(name, bytes) else str(name))
    if match:
        return match.group(1)
    attributes = nv.nvmlDeviceGetAttributes(mig)
    return f"{attributes.gpuInstanceSliceCount}g.{math.ceil(attributes.memorySizeMB / 1024)}gb"
