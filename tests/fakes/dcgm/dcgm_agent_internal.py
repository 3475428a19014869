"""Fake of DCGM's dcgm_agent_internal (source tree testing/python3 only), for tests only: fake-entity
creation and injection, recorded in fake_hostengine.CALLS and stored in fake_hostengine.STATE."""

from __future__ import annotations

from typing import Any

import dcgm_structs
import dcgm_structs_internal
import fake_hostengine as fake


def dcgmCreateFakeEntities(dcgmHandle: Any, cfe: Any) -> Any:
    fake.CALLS.append(("dcgmCreateFakeEntities", cfe.numToCreate,
                       tuple(cfe.entityList[i].entity.entityGroupId for i in range(cfe.numToCreate))))  # fmt: skip
    fake.check(dcgmHandle)
    cfe.version = dcgm_structs_internal.dcgmCreateFakeEntities_version2
    first = max([*fake.STATE.gpus, *fake.STATE.fakes, -1]) + 1
    for i in range(cfe.numToCreate):
        cfe.entityList[i].entity.entityId = first + i
        fake.STATE.fakes.append(first + i)
    return cfe


def dcgmInjectEntityFieldValue(dcgmHandle: Any, entityGroupId: int, entityId: int, value: Any) -> int:
    kind = chr(value.fieldType)
    stored = value.value.str.decode() if kind == "s" else value.value.dbl if kind == "d" else value.value.i64
    fake.CALLS.append(("dcgmInjectEntityFieldValue", entityGroupId, entityId, value.fieldId, kind, stored, value.ts))
    fake.check(dcgmHandle)
    if entityId not in fake.STATE.fakes and entityId not in fake.STATE.gpus:
        raise dcgm_structs.DCGMError(dcgm_structs.DCGM_ST_BADPARAM)
    fake.store(entityGroupId, entityId, value.fieldId, kind, stored, value.ts)
    return 0
