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
    for i in range(cfe.numToCreate):
        info = cfe.entityList[i]
        group = info.entity.entityGroupId
        if group == 1:  # a GPU: ids after every GPU there is
            info.entity.entityId = max([*fake.STATE.gpus, *fake.STATE.fakes, -1]) + 1
            fake.STATE.fakes.append(info.entity.entityId)
        else:  # a switch or link: the group's next id (a link names an existing switch as parent)
            if group == 6 and info.parent.entityId not in fake.STATE.others.get(3, []):
                raise dcgm_structs.DCGMError(dcgm_structs.DCGM_ST_BADPARAM)
            ids = fake.STATE.others.setdefault(group, [])
            info.entity.entityId = 100 + len(ids)  # unlike the simulator's ids, to prove the engine maps them
            ids.append(info.entity.entityId)
            fake.STATE.parents[(group, info.entity.entityId)] = (info.parent.entityGroupId, info.parent.entityId)
    return cfe


def dcgmInjectEntityFieldValue(dcgmHandle: Any, entityGroupId: int, entityId: int, value: Any) -> int:
    kind = chr(value.fieldType)
    stored = value.value.str.decode() if kind == "s" else value.value.dbl if kind == "d" else value.value.i64
    fake.CALLS.append(("dcgmInjectEntityFieldValue", entityGroupId, entityId, value.fieldId, kind, stored, value.ts))
    fake.check(dcgmHandle)
    if value.fieldId in fake.STATE.undefined_fields:  # DcgmCacheManager::InjectSamples on a field it lacks
        raise dcgm_structs.DCGMError(dcgm_structs.DCGM_ST_GENERIC_ERROR)
    known = fake.STATE.fakes + fake.STATE.gpus if entityGroupId == 1 else fake.STATE.others.get(entityGroupId, [])
    if entityId not in known:
        raise dcgm_structs.DCGMError(dcgm_structs.DCGM_ST_BADPARAM)
    fake.store(entityGroupId, entityId, value.fieldId, kind, stored, value.ts)
    return 0
