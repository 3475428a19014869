"""Fake of DCGM's dcgm_fields (testing/python3), for tests only: the constants the engine uses, and the field lookup
(every field is defined but those ``fake_hostengine.STATE.undefined_fields`` names, as on an older DCGM)."""

from __future__ import annotations

import fake_hostengine as fake

DCGM_FT_BINARY = "b"
DCGM_FT_DOUBLE = "d"
DCGM_FT_INT64 = "i"
DCGM_FT_STRING = "s"
DCGM_FT_TIMESTAMP = "t"

DCGM_FE_NONE = 0
DCGM_FE_GPU = 1
DCGM_FE_VGPU = 2
DCGM_FE_SWITCH = 3
DCGM_FE_GPU_I = 4
DCGM_FE_GPU_CI = 5
DCGM_FE_LINK = 6


def DcgmFieldGetById(fieldId: int) -> object | None:
    return None if fieldId in fake.STATE.undefined_fields else object()
