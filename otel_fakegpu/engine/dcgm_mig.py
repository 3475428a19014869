"""MIG GPU instances on a hostengine: found in its GPU instance hierarchy, named by their profile, and read as
dcgm-exporter reads them (docs/mig.md): a GPU instance's own value for the fields kept per instance
(snapshot.INSTANCE_FIELDS), the parent GPU's for every other field (XIDs too, as the simulator raises them)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_fakegpu.engine.dcgm_values import read_value
from otel_fakegpu.engine.selection import DeviceSelection
from otel_fakegpu.engine.snapshot import INSTANCE_FIELDS, Column
from otel_fakegpu.fields import Value

log = logging.getLogger(__name__)

PROFILE_NAME_FIELD = 50  # DCGM_FI_DEV_NAME: DCGM answers it for a GPU instance with its profile name
DCGM_FV_FLAG_LIVE_DATA = 1  # read now, not from the cache: the name field is not watched


@dataclass(frozen=True)
class FoundInstance:
    """A GPU instance entity: its DCGM entity id, parent DCGM GPU id, GPU instance id and profile name."""

    dcgm_id: int
    parent: int
    instance_id: int
    profile: str


def discover_instances(modules: Any, handle: Any, devices: DeviceSelection) -> list[FoundInstance]:
    """The GPU instances ``devices`` selects, from ``dcgmGetGpuInstanceHierarchy``; none where MIG is off."""
    if devices.mode == "g":
        return []  # dcgm-exporter's -d g reads a MIG-enabled GPU as one GPU
    try:
        hierarchy = modules.agent.dcgmGetGpuInstanceHierarchy(handle)
    except modules.structs.DCGMError as exc:  # no MIG support on this host
        log.debug("no MIG hierarchy: %s", exc)
        return []
    rows = []
    for i in range(hierarchy.count):
        entry = hierarchy.entityList[i]
        if entry.entity.entityGroupId == modules.fields.DCGM_FE_GPU_I and devices.wants_instance(entry.entity.entityId):
            rows.append((int(entry.entity.entityId), int(entry.parent.entityId), entry.info))
    if not rows:
        return []
    names = _profile_names(modules, handle, [dcgm_id for dcgm_id, _, _ in rows])
    found = []
    for dcgm_id, parent, info in rows:
        profile = names.get(dcgm_id)
        if profile is None:  # the slice count is all the hierarchy says about the profile
            profile = f"{int(info.nvmlProfileSlices)}g"
            log.warning("GPU instance entity %d has no profile name; labelled GPU_I_PROFILE=%r", dcgm_id, profile)
        found.append(FoundInstance(dcgm_id, parent, int(info.nvmlInstanceId), profile))
    return found


def _profile_names(modules: Any, handle: Any, dcgm_ids: Sequence[int]) -> dict[int, str]:
    """Profile names as dcgm-exporter gets them: DCGM_FI_DEV_NAME of each GPU instance entity."""
    pair, group = modules.structs.c_dcgmGroupEntityPair_t, modules.fields.DCGM_FE_GPU_I
    pairs = [pair(group, dcgm_id) for dcgm_id in dcgm_ids]
    values = modules.agent.dcgmEntitiesGetLatestValues(handle, pairs, [PROFILE_NAME_FIELD], DCGM_FV_FLAG_LIVE_DATA)
    names = {}
    for fv in values:
        value = read_value(fv)
        if isinstance(value, str) and value:
            names[int(fv.entityId)] = value
    return names


def exported_column(
    read: Mapping[tuple[int, int, int], Value | None],
    field_id: int,
    exported: Sequence[tuple[bool, int]],
    parent_of: Mapping[int, int],
    kinds: tuple[int, int],
) -> Column:
    """One field for every exported (is instance, DCGM id): a GPU's value; an instance's own value for a
    per-instance field, else its parent GPU's, as the embedded engine repeats it. ``kinds``: (FE_GPU, FE_GPU_I)."""
    gpu_entity, instance_entity = kinds
    column: list[Value | None] = []
    for is_instance, dcgm_id in exported:
        if not is_instance:
            column.append(read.get((gpu_entity, dcgm_id, field_id)))
        elif field_id in INSTANCE_FIELDS:
            column.append(read.get((instance_entity, dcgm_id, field_id)))
        else:
            column.append(read.get((gpu_entity, parent_of[dcgm_id], field_id)))
    return tuple(column)
