"""Fake of DCGM's dcgm_structs (testing/python3), for tests only (the real one loads libdcgm, which needs
DCGM installed): the same ctypes layouts for the structs the engine touches, the error classes, and
``_dcgmInit``, which fails like a missing libdcgm when the fake hostengine says so."""

from __future__ import annotations

import os
from ctypes import Structure, Union, c_char, c_double, c_int, c_int64, c_short, c_uint, c_uint32, c_ushort

import fake_hostengine

DCGM_ST_OK = 0
DCGM_ST_BADPARAM = -1
DCGM_ST_GENERIC_ERROR = -3
DCGM_ST_NOT_SUPPORTED = -6
DCGM_ST_NO_DATA = -14
DCGM_ST_DUPLICATE_KEY = -26
DCGM_ST_CONNECTION_NOT_VALID = -21
DCGM_ST_LIBRARY_NOT_FOUND = -25
DCGM_OPERATION_MODE_AUTO = 1
DCGM_GROUP_EMPTY = 1
DCGM_MAX_NUM_DEVICES = 32
DCGM_MAX_STR_LENGTH = 256
DCGM_MAX_HIERARCHY_INFO = DCGM_MAX_NUM_DEVICES * 14


class DCGMError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {
            DCGM_ST_CONNECTION_NOT_VALID: "The connection to the host engine is not valid any longer",
            DCGM_ST_LIBRARY_NOT_FOUND: "DCGM library could not be found",
            DCGM_ST_NOT_SUPPORTED: "Feature not supported",
        }.get(self.value, f"DCGM error {self.value}")


class DCGMError_ConnectionNotValid(DCGMError):
    def __init__(self) -> None:
        super().__init__(DCGM_ST_CONNECTION_NOT_VALID)


class DCGMError_LibraryNotFound(DCGMError):
    def __init__(self) -> None:
        super().__init__(DCGM_ST_LIBRARY_NOT_FOUND)


class DCGMError_NotSupported(DCGMError):
    def __init__(self) -> None:
        super().__init__(DCGM_ST_NOT_SUPPORTED)


def _dcgmInit(libDcgmPath: str | None = None) -> None:
    fake_hostengine.CALLS.append(("_dcgmInit",))
    if fake_hostengine.STATE.library_missing or os.environ.get("FAKE_DCGM_NO_LIBRARY"):
        raise DCGMError_LibraryNotFound()


def make_dcgm_version(struct: type, ver: int) -> int:
    return ver << 24


class c_dcgmConnectV2Params_v2(Structure):
    _fields_ = [("version", c_uint), ("persistAfterDisconnect", c_uint), ("timeoutMs", c_uint),
                ("addressIsUnixSocket", c_uint)]  # fmt: skip


c_dcgmConnectV2Params_version2 = make_dcgm_version(c_dcgmConnectV2Params_v2, 2)


class c_dcgmGroupEntityPair_t(Structure):
    _fields_ = [("entityGroupId", c_uint32), ("entityId", c_uint32)]


class c_dcgmMigHierarchyInfo_t(Structure):
    _fields_ = [("entity", c_dcgmGroupEntityPair_t), ("parent", c_dcgmGroupEntityPair_t), ("sliceProfile", c_uint)]


class c_dcgmMigEntityInfo_t(Structure):
    _fields_ = [("gpuUuid", c_char * 128), ("nvmlGpuIndex", c_uint), ("nvmlInstanceId", c_uint),
                ("nvmlComputeInstanceId", c_uint), ("nvmlMigProfileId", c_uint),
                ("nvmlProfileSlices", c_uint)]  # fmt: skip


class c_dcgmMigHierarchyInfo_v2(Structure):
    _fields_ = [("entity", c_dcgmGroupEntityPair_t), ("parent", c_dcgmGroupEntityPair_t),
                ("info", c_dcgmMigEntityInfo_t)]  # fmt: skip


class c_dcgmMigHierarchy_v2(Structure):
    _fields_ = [
        ("version", c_uint),
        ("count", c_uint),
        ("entityList", c_dcgmMigHierarchyInfo_v2 * DCGM_MAX_HIERARCHY_INFO),
    ]


class c_dcgmFieldValue_v1_value(Union):
    _fields_ = [("i64", c_int64), ("dbl", c_double), ("str", c_char * DCGM_MAX_STR_LENGTH)]


class c_dcgmFieldValue_v1(Structure):
    _fields_ = [("version", c_uint), ("fieldId", c_ushort), ("fieldType", c_short), ("status", c_int),
                ("ts", c_int64), ("value", c_dcgmFieldValue_v1_value)]  # fmt: skip


class c_dcgmFieldValue_v2(Structure):
    _fields_ = [("version", c_uint), ("entityGroupId", c_uint), ("entityId", c_uint), ("fieldId", c_ushort),
                ("fieldType", c_short), ("status", c_int), ("unused", c_uint), ("ts", c_int64),
                ("value", c_dcgmFieldValue_v1_value)]  # fmt: skip
