"""The simulator's NVSwitches and their NVLinks as fake DCGM entities (``--inject``): which seam ids were asked
for, which DCGM ids the hostengine gave them, and the requests that create them (links under their switch)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_fakegpu.engine.dcgm_loader import DcgmModules
from otel_fakegpu.engine.dcgm_values import inject_struct
from otel_fakegpu.engine.entities import ENTITY_GROUPS, link_parts
from otel_fakegpu.engine.snapshot import Snapshot
from otel_fakegpu.fields import CATALOG, ENTITY_GPU, UnknownFieldError, Value


def field_entity(field_id: int) -> str:
    """Which entities a field belongs to ("gpu", "switch", "link"); unknown fields are read from GPUs."""
    try:
        return CATALOG.by_id(field_id).entity
    except UnknownFieldError:
        return ENTITY_GPU


def gpu_request(fields_module: Any, structs_internal: Any, count: int) -> Any:
    """A dcgmCreateFakeEntities request for ``count`` GPUs."""
    request = structs_internal.c_dcgmCreateFakeEntities_v2()
    request.numToCreate = count
    for i in range(count):
        request.entityList[i].entity.entityGroupId = fields_module.DCGM_FE_GPU
    return request


@dataclass
class FakeEntities:
    """Seam ids wanted per group ("switch", then "link") and, once created, their DCGM ids."""

    wanted: dict[str, list[int]] = field(default_factory=lambda: {g: [] for g in ENTITY_GROUPS})
    dcgm_ids: dict[str, dict[int, int]] = field(default_factory=lambda: {g: {} for g in ENTITY_GROUPS})

    def forget(self) -> None:
        """A restarted hostengine holds none of them any more."""
        self.dcgm_ids = {g: {} for g in ENTITY_GROUPS}

    def missing(self, group: str) -> list[int]:
        return [e for e in self.wanted[group] if e not in self.dcgm_ids[group]]

    def request(self, fields_module: Any, structs_internal: Any, group: str, seam_ids: Sequence[int]) -> Any:
        """A dcgmCreateFakeEntities request for ``seam_ids`` of ``group``; a link names its switch as parent."""
        request = structs_internal.c_dcgmCreateFakeEntities_v2()
        request.numToCreate = len(seam_ids)
        kind = fields_module.DCGM_FE_SWITCH if group == "switch" else fields_module.DCGM_FE_LINK
        for i, seam_id in enumerate(seam_ids):
            request.entityList[i].entity.entityGroupId = kind
            if group == "link":
                request.entityList[i].parent.entityGroupId = fields_module.DCGM_FE_SWITCH
                request.entityList[i].parent.entityId = self.dcgm_ids["switch"][link_parts(seam_id)[0]]
        return request

    def record(self, group: str, seam_ids: Sequence[int], created: Any) -> list[int]:
        new_ids = [created.entityList[i].entity.entityId for i in range(created.numToCreate)]
        self.dcgm_ids[group].update(zip(seam_ids, new_ids, strict=True))
        return new_ids

    def create_missing(self, modules: DcgmModules, handle: Any, group: str) -> list[int]:
        """Create the wanted entities of ``group`` the hostengine lacks; their DCGM ids."""
        missing = self.missing(group)
        if not missing:
            return []
        assert modules.agent_internal is not None and modules.structs_internal is not None
        request = self.request(modules.fields, modules.structs_internal, group, missing)
        return self.record(group, missing, modules.agent_internal.dcgmCreateFakeEntities(handle, request))

    def inject(
        self, modules: DcgmModules, handle: Any, batch: Sequence[tuple[tuple[str, int, int], Value | None]],
        timestamp: float, kind_of: Callable[[str], int],
    ) -> None:  # fmt: skip
        """Inject ``batch`` (keyed by group, seam id, field) into the created entities."""
        internal, structs_internal = modules.agent_internal, modules.structs_internal
        assert internal is not None and structs_internal is not None
        ts_us = int(timestamp * 1e6)
        for (group, entity_id, field_id), value in batch:
            fv = inject_struct(structs_internal, field_id, value, ts_us)
            internal.dcgmInjectEntityFieldValue(handle, kind_of(group), self.dcgm_ids[group][entity_id], fv)

    def pairs(self) -> list[tuple[str, int, int]]:
        """(group, seam id, DCGM id) of every created entity, switches first."""
        return [(g, seam, dcgm) for g in ENTITY_GROUPS for seam, dcgm in self.dcgm_ids[g].items()]

    def snapshots(
        self, read_ids: Sequence[int], values: Mapping[tuple[int, int, int], Value | None],
        kind_of: Callable[[str], int], taken_at: float,
    ) -> dict[str, Snapshot]:  # fmt: skip
        """Switch and link snapshots from one batch read's ``values`` (keyed by DCGM entity group, DCGM id,
        field), each with the fields of its entity level, entities in creation order."""
        groups = {}
        for group in ENTITY_GROUPS:
            dcgm_ids, kind = self.dcgm_ids[group], kind_of(group)
            seam_ids = tuple(e for e in self.wanted[group] if e in dcgm_ids)
            fields = [fid for fid in read_ids if field_entity(fid) == group]
            if seam_ids and fields:
                columns = {fid: tuple(values.get((kind, dcgm_ids[e], fid)) for e in seam_ids) for fid in fields}
                groups[group] = Snapshot.build(seam_ids, columns, taken_at)
        return groups
