"""Entities beside GPUs: NVSwitches and their NVLinks, held apart from the GPU columns so the GPU path is untouched.

A link's entity id packs its switch and port the way DCGM's ``dcgm_link_t`` does (switch id, port index), so one id
names one link and both labels dcgm-exporter prints (``nvswitch``, ``nvlink``) come back out of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from otel_fakegpu.engine.snapshot import Column, Snapshot
from otel_fakegpu.fields import ENTITY_LINK, ENTITY_SWITCH, Value, is_blank

ENTITY_GROUPS = (ENTITY_SWITCH, ENTITY_LINK)
_PORT_BITS = 8


def link_entity_id(switch_id: int, port: int) -> int:
    """The entity id of port ``port`` (0-255) of switch ``switch_id``."""
    if not 0 <= port < 1 << _PORT_BITS:
        raise ValueError(f"NVSwitch port {port} out of range")
    return (switch_id << _PORT_BITS) | port


def link_parts(entity_id: int) -> tuple[int, int]:
    """(switch id, port) of a link entity id."""
    return entity_id >> _PORT_BITS, entity_id & ((1 << _PORT_BITS) - 1)


@dataclass
class EntityTable:
    """Latest values per (entity, field) of one entity group; callers hold the engine's lock."""

    ids: list[int] = field(default_factory=list)
    slots: dict[int, int] = field(default_factory=dict)
    values: dict[int, list[Value | None]] = field(default_factory=dict)

    def add(self, entity_ids: Iterable[int]) -> tuple[int, ...]:
        added = tuple(entity_ids)
        if len(set(added)) != len(added) or not self.slots.keys().isdisjoint(added):  # none added: say which
            taken = set(self.slots)
            for entity_id in added:
                if entity_id in taken:
                    raise ValueError(f"entity {entity_id} exists already")
                taken.add(entity_id)
        self.slots.update(zip(added, range(len(self.ids), len(self.ids) + len(added)), strict=True))
        self.ids.extend(added)
        for column in self.values.values():
            column.extend([None] * len(added))
        return added

    def set_all(self, updates: Iterable[tuple[int, int, Value | None]]) -> None:
        """Store each (entity, field, value); KeyError(entity id) at the first entity not in the table."""
        slots, values = self.slots, self.values
        for entity_id, field_id, value in updates:
            slot = slots.get(entity_id)
            if slot is None:
                raise KeyError(entity_id)
            column = values.get(field_id)
            if column is None:
                column = values[field_id] = [None] * len(self.ids)
            column[slot] = None if is_blank(value) else value  # a few per switch per step: no quick test needed

    def fill(self, field_id: int, entity_ids: Sequence[int], value: Value | None) -> None:
        """``set_all`` of one value for one field on each of ``entity_ids``: for the whole group (compared in C), one
        column made at once, its blank test made once."""
        if entity_ids != self.ids:
            self.set_all((entity_id, field_id, value) for entity_id in entity_ids)
            return
        self.values[field_id] = [None if is_blank(value) else value] * len(self.ids)

    def snapshot(self, field_ids: Sequence[int], taken_at: float) -> Snapshot | None:
        """The fields this group holds, or None when it holds none of them."""
        columns: dict[int, Column] = {fid: tuple(self.values[fid]) for fid in field_ids if fid in self.values}
        return Snapshot.build(tuple(self.ids), columns, taken_at) if columns else None
