"""Fake of DCGM's dcgm_structs_internal (source tree testing/python3 only), for tests only: the injection
and fake-entity structs with DCGM's layouts."""

from __future__ import annotations

from ctypes import Structure, c_int64, c_short, c_uint, c_uint32

import dcgm_structs


class c_dcgmInjectFieldValue_v1(Structure):
    _fields_ = [("version", c_uint), ("fieldId", c_short), ("fieldType", c_short), ("status", c_uint),
                ("ts", c_int64), ("value", dcgm_structs.c_dcgmFieldValue_v1_value)]  # fmt: skip


dcgmInjectFieldValue_version1 = dcgm_structs.make_dcgm_version(c_dcgmInjectFieldValue_v1, 1)


class c_dcgmCreateFakeEntities_v2(Structure):
    _fields_ = [("version", c_uint32), ("numToCreate", c_uint32),
                ("entityList", dcgm_structs.c_dcgmMigHierarchyInfo_t * dcgm_structs.DCGM_MAX_HIERARCHY_INFO)]  # fmt: skip


dcgmCreateFakeEntities_version2 = dcgm_structs.make_dcgm_version(c_dcgmCreateFakeEntities_v2, 2)
