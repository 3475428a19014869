"""GPUs allocated through Dynamic Resource Allocation (``--kubernetes-enable-dra``), as dcgm-exporter labels them
(internal/pkg/transformation/dra.go and kubernetes.go's ``toDeviceToPodsDRA``).

The kubelet's ``List`` names each container's claims: ``dynamic_resources[].claim_resources[]`` with a driver, pool
and device name. Only the NVIDIA GPU driver's (``gpu.nvidia.com``) count. Which GPU a (pool, device) is comes from
the cluster's ResourceSlices: a device of type ``gpu`` carries its ``uuid``, one of type ``mig`` its ``uuid``,
``parentUUID`` and ``profile``. dcgm-exporter watches them through the API server; with no API server here they are
read from a file (``kubectl get resourceslices -o yaml``), re-read when it changes. A MIG device labels its GPU
instance's series (dcgm-exporter labels every series of the parent GPU, its instances alike).

Labels, beside pod/namespace/container: dra_claim_name, dra_claim_namespace, dra_driver_name, dra_pool_name,
dra_device_name, and for MIG dra_mig_profile and dra_mig_device_uuid.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from otel_fakegpu.attribution.devices import DeviceRef
from otel_fakegpu.attribution.limits import check_name
from otel_fakegpu.attribution.model import Claim, WorkloadIdentity
from otel_fakegpu.attribution.source import SourceError
from otel_fakegpu.config.files import load_yaml, read_config_text

DRA_GPU_DRIVER = "gpu.nvidia.com"
MAX_SLICES_BYTES = 16 << 20


@dataclass(frozen=True)
class DraDevice:
    """What a ResourceSlice says of one device: the entity it is and, for MIG, its profile and UUID."""

    ref: DeviceRef
    mig_profile: str | None = None
    mig_uuid: str | None = None


def _attribute(attributes: Mapping[str, Any], key: str) -> str:
    value = attributes.get(key)
    text = value.get("string") if isinstance(value, Mapping) else None
    return text if isinstance(text, str) else ""


def parse_slices(data: Any) -> dict[tuple[str, str], DraDevice]:
    """(pool, device) -> device, from a list of ResourceSlices (or ``{items: [...]}``), resource.k8s.io v1beta1
    (``basic.attributes``) or v1 (``attributes``); other drivers' slices and unknown device types are skipped."""
    items = data.get("items", []) if isinstance(data, Mapping) else data or []
    devices: dict[tuple[str, str], DraDevice] = {}
    for item in items if isinstance(items, list) else []:
        spec = item.get("spec", {}) if isinstance(item, Mapping) else {}
        if spec.get("driver") != DRA_GPU_DRIVER:
            continue
        pool = str((spec.get("pool") or {}).get("name", ""))
        for device in spec.get("devices") or []:
            attributes = (device.get("basic") or {}).get("attributes") or device.get("attributes") or {}
            kind, uuid = _attribute(attributes, "type"), _attribute(attributes, "uuid")
            if kind == "gpu" and uuid:
                devices[(pool, str(device.get("name", "")))] = DraDevice(DeviceRef(uuid=uuid))
            elif kind == "mig" and uuid and _attribute(attributes, "parentUUID"):
                profile = _attribute(attributes, "profile")
                devices[(pool, str(device.get("name", "")))] = DraDevice(DeviceRef(mig_uuid=uuid), profile, uuid)
    return devices


class ResourceSlices:
    """The ResourceSlices file, re-read when its size or modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._devices: dict[tuple[str, str], DraDevice] = {}

    def devices(self) -> dict[tuple[str, str], DraDevice]:
        try:
            stat = os.stat(self.path)
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                text = read_config_text(self.path, MAX_SLICES_BYTES, "ResourceSlices")  # a ConfigError is a ValueError
                self._devices = parse_slices(load_yaml(text, self.path))
                self._stamp = (stat.st_mtime_ns, stat.st_size)
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise SourceError(f"{self.path}: cannot read ResourceSlices: {exc}") from None
        return self._devices


def _check_names(*names: Any) -> None:
    """Every name that becomes a label value, as the kubelet's other names are checked (attribution/limits.py)."""
    claimed = names[-1]
    values = (*names[:-1], claimed.pool_name, claimed.device_name)
    try:
        for value in values:
            check_name(value, "DRA name")
    except ValueError as exc:
        raise SourceError(f"List: {exc}") from None


def dra_claims(
    pod: str, namespace: str, container: str, resources: Iterable[Any], devices: Mapping[tuple[str, str], DraDevice]
) -> list[Claim]:
    """One claim per GPU device the container's DRA claims hold (once per device, as dcgm-exporter dedupes)."""
    claims: dict[DeviceRef, Claim] = {}
    for resource in resources:
        for claimed in resource.claim_resources:
            if claimed.driver_name != DRA_GPU_DRIVER:
                continue
            _check_names(pod, namespace, container, resource.claim_name, resource.claim_namespace, claimed)
            device = devices.get((claimed.pool_name, claimed.device_name))
            if device is None or device.ref in claims:
                continue
            pairs = [
                ("dra_claim_name", resource.claim_name), ("dra_claim_namespace", resource.claim_namespace),
                ("dra_driver_name", claimed.driver_name), ("dra_pool_name", claimed.pool_name),
                ("dra_device_name", claimed.device_name),
            ]  # fmt: skip
            if device.mig_profile is not None:
                pairs += [("dra_mig_profile", device.mig_profile), ("dra_mig_device_uuid", device.mig_uuid or "")]
            identity = WorkloadIdentity(pod, namespace, container, dra=tuple(pairs))
            claims[device.ref] = Claim(device.ref, identity)
    return list(claims.values())
