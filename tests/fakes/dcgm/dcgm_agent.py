"""Fake of DCGM's dcgm_agent (testing/python3), for tests only: the real one calls libdcgm, which needs DCGM
and an NVIDIA GPU. Same function names and arguments; every call is recorded in fake_hostengine.CALLS and
answered from fake_hostengine.STATE."""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, POINTER, c_int32, c_uint32, c_void_p
from dataclasses import dataclass
from typing import Any

import dcgm_fields
import dcgm_structs
import fake_hostengine as fake

BLANK_I64 = 0x7FFFFFFFFFFFFFF0


@dataclass(frozen=True)
class FakeHandle:
    value: tuple[int, int]  # (hostengine epoch, handle number): stale after a restart


def _new_handle() -> FakeHandle:
    fake.STATE.handles += 1
    return FakeHandle((fake.STATE.epoch, fake.STATE.handles))


def dcgmInit() -> int:
    fake.CALLS.append(("dcgmInit",))
    return 0


def dcgmStartEmbedded(opMode: int) -> FakeHandle:
    fake.CALLS.append(("dcgmStartEmbedded", opMode))
    fake.check()
    return _new_handle()


def dcgmStopEmbedded(handle: FakeHandle) -> int:
    fake.CALLS.append(("dcgmStopEmbedded",))
    # The embedded hostengine stops: its groups and field groups go with it.
    fake.STATE.group_entities, fake.STATE.field_group_fields, fake.STATE.field_group_names = {}, {}, set()
    return 0


def dcgmConnect_v2(ip_address: str, connectParams: Any, version: int = 0) -> FakeHandle:
    fake.CALLS.append(("dcgmConnect_v2", ip_address, connectParams.persistAfterDisconnect,
                       connectParams.addressIsUnixSocket))  # fmt: skip
    fake.check()
    return _new_handle()


def dcgmDisconnect(handle: FakeHandle) -> int:
    fake.CALLS.append(("dcgmDisconnect",))
    return 0


def dcgmGetAllSupportedDevices(handle: FakeHandle) -> list[int]:
    fake.CALLS.append(("dcgmGetAllSupportedDevices",))
    fake.check(handle)
    return list(fake.STATE.gpus)


def dcgmGetAllDevices(handle: FakeHandle) -> list[int]:
    fake.CALLS.append(("dcgmGetAllDevices",))
    fake.check(handle)
    return [*fake.STATE.gpus, *fake.STATE.fakes]


def dcgmGetGpuInstanceHierarchy(handle: FakeHandle) -> Any:
    fake.CALLS.append(("dcgmGetGpuInstanceHierarchy",))
    fake.check(handle)
    if not fake.STATE.instances:
        raise dcgm_structs.DCGMError_NotSupported()
    hierarchy = dcgm_structs.c_dcgmMigHierarchy_v2()
    hierarchy.count = len(fake.STATE.instances)
    for i, (parent, instance) in enumerate(fake.STATE.instances):
        info = hierarchy.entityList[i]
        info.entity.entityGroupId, info.entity.entityId = dcgm_fields.DCGM_FE_GPU_I, instance
        info.parent.entityGroupId, info.parent.entityId = dcgm_fields.DCGM_FE_GPU, parent
        gpu_instance_id, slices = fake.STATE.instance_info.get(instance, (instance, 1))
        info.info.nvmlGpuIndex, info.info.nvmlInstanceId = parent, gpu_instance_id
        info.info.nvmlProfileSlices = slices
    return hierarchy


def dcgmGroupCreate(handle: FakeHandle, type: int, groupName: str) -> int:
    fake.CALLS.append(("dcgmGroupCreate", type))
    fake.check(handle)
    fake.STATE.groups += 1
    return fake.STATE.groups


def dcgmGroupAddEntity(handle: FakeHandle, group_id: int, entityGroupId: int, entityId: int) -> int:
    fake.CALLS.append(("dcgmGroupAddEntity", entityGroupId, entityId))
    fake.check(handle)
    fake.STATE.group_entities.setdefault(group_id, []).append((entityGroupId, entityId))
    return 0


def dcgmFieldGroupCreate(handle: FakeHandle, fieldIds: list[int], fieldGroupName: str) -> int:
    fake.CALLS.append(("dcgmFieldGroupCreate", tuple(fieldIds)))
    fake.check(handle)
    if fieldGroupName in fake.STATE.field_group_names:  # DCGM_ST_DUPLICATE_KEY, as the real hostengine answers
        raise dcgm_structs.DCGMError(dcgm_structs.DCGM_ST_DUPLICATE_KEY)
    fake.STATE.field_group_names.add(fieldGroupName)
    fake.STATE.groups += 1
    fake.STATE.field_group_fields[fake.STATE.groups] = tuple(fieldIds)
    return fake.STATE.groups


def dcgmWatchFields(handle: FakeHandle, groupId: int, fieldGroupId: int, updateFreq: int,
                    maxKeepAge: float, maxKeepSamples: int) -> int:  # fmt: skip
    fake.CALLS.append(("dcgmWatchFields", updateFreq, maxKeepAge, maxKeepSamples))
    fake.check(handle)
    return 0


def dcgmUpdateAllFields(handle: FakeHandle, waitForUpdate: int) -> int:
    fake.CALLS.append(("dcgmUpdateAllFields", waitForUpdate))
    fake.check(handle)
    return 0


def dcgmEntitiesGetLatestValues(handle: FakeHandle, entities: list[Any], fieldIds: list[int],
                                flags: int) -> list[Any]:  # fmt: skip
    fake.CALLS.append(("dcgmEntitiesGetLatestValues", tuple((e.entityGroupId, e.entityId) for e in entities),
                       tuple(fieldIds), flags))  # fmt: skip
    fake.check(handle)
    out = []
    for entity in entities:
        for field_id in fieldIds:
            fv = dcgm_structs.c_dcgmFieldValue_v2()
            fv.entityGroupId, fv.entityId, fv.fieldId = entity.entityGroupId, entity.entityId, field_id
            kind, value, ts = fake.STATE.values.get(
                (entity.entityGroupId, entity.entityId, field_id), ("i", BLANK_I64, 0)
            )
            fv.ts = ts
            if kind == "status":  # a per-value error status, as DCGM returns for a field it cannot read
                fv.fieldType, fv.status = ord("i"), value
            elif kind in ("i", "t"):
                fv.fieldType, fv.value.i64 = ord(kind), value
            elif kind == "d":
                fv.fieldType, fv.value.dbl = ord(kind), value
            elif kind == "s":
                fv.fieldType, fv.value.str = ord(kind), value.encode()
            out.append(fv)
    return out


dcgmFieldValueEntityEnumeration_f = CFUNCTYPE(
    c_int32, c_uint32, c_uint32, POINTER(dcgm_structs.c_dcgmFieldValue_v1), c_int32, c_void_p
)


def dcgmGetValuesSince_v2(handle: FakeHandle, groupId: int, fieldGroupId: int, sinceTimestamp: int, enumCB: Any,
                          userData: Any) -> int:  # fmt: skip
    """Every stored sample at or after ``sinceTimestamp``, one callback per entity, as DCGM calls back."""
    fake.CALLS.append(("dcgmGetValuesSince_v2", fake.STATE.field_group_fields.get(fieldGroupId), sinceTimestamp))
    fake.check(handle)
    entities = fake.STATE.group_entities.get(groupId, [])
    fields = fake.STATE.field_group_fields[fieldGroupId]
    next_since = sinceTimestamp
    for group, entity in entities:
        rows = [
            h for h in fake.STATE.history if h[:3] in {(group, entity, f) for f in fields} and h[5] >= sinceTimestamp
        ]
        if not rows:
            continue
        array = (dcgm_structs.c_dcgmFieldValue_v1 * len(rows))()
        for fv, (_, _, field_id, kind, value, ts) in zip(array, rows, strict=True):
            fv.fieldId, fv.fieldType, fv.ts = field_id, ord(kind), ts
            if kind == "s":
                fv.value.str = value.encode()
            elif kind == "d":
                fv.value.dbl = value
            else:
                fv.value.i64 = value
            next_since = max(next_since, ts + 1)
        user = ctypes.c_void_p(id(userData))  # a py_object passed through C arrives as the object's address
        enumCB(group, entity, array, len(rows), user)
    return next_since
