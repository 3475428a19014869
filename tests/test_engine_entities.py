"""Engine: per-entity row injection and MIG GPU-instance entities."""

from __future__ import annotations

import pytest

from otel_fakegpu.engine import EmbeddedEngine, EngineError, GpuInstanceEntity
from otel_fakegpu.fields import Value
from otel_fakegpu.fields.blank import DOUBLE_BLANK, INT32_BLANK, INT64_BLANK, STRING_BLANK


def test_inject_stores_numbers_and_blanks_sentinels() -> None:
    values: dict[int, Value | None] = {1: 5, 2: 2**40, 3: 0.5, 4: float("nan"), 5: DOUBLE_BLANK, 6: INT32_BLANK + 2, 7: INT64_BLANK,
              8: STRING_BLANK, 9: "text", 10: None, 11: -3, 12: float("-inf")}  # fmt: skip
    engine = EmbeddedEngine()
    engine.create_gpus(2)
    engine.inject(((0, f, v) for f, v in values.items()), 10.0)
    engine.inject([(1, 1, 7)], 10.0)
    a = engine.read_latest(tuple(values))
    assert a.column(1) == (5, 7) and a.column(2)[0] == 2**40 and a.column(11)[0] == -3
    assert a.column(3)[0] == 0.5 and a.column(9)[0] == "text" and a.column(12)[0] == float("-inf")
    assert [a.column(f)[0] for f in (4, 5, 6, 7, 8, 10)] == [None] * 6  # NaN and every sentinel: blank
    with pytest.raises(EngineError, match="no GPU entity 9"):
        engine.inject([(9, 1, 1)], 11.0)


def test_gpu_instances_replace_their_parent_and_read_through() -> None:
    engine = EmbeddedEngine()
    engine.create_gpus(3)
    children = engine.create_gpu_instances(1, [(1, "3g.40gb"), (2, "3g.40gb")])
    rows = {0: {150: 40, 252: 1}, 1: {150: 50, 252: 9}, 2: {150: 60, 252: 3}, children[0]: {252: 4}}
    rows[children[1]] = {252: 5}
    engine.inject(((eid, f, v) for eid, row in rows.items() for f, v in row.items()), 1.0)
    snap = engine.read_latest((150, 252))
    assert snap.entity_ids == (0, *children, 2) == engine.entity_ids()
    assert snap.column(150) == (40, 50, 50, 60)  # never injected on an instance: the parent's value
    assert snap.column(252) == (1, 4, 5, 3)
    assert snap.instances[children[1]] == GpuInstanceEntity(1, 2, "3g.40gb")
    with pytest.raises(EngineError, match="already partitioned"):
        engine.create_gpu_instances(1, [(3, "1g.10gb")])
    with pytest.raises(EngineError, match="no GPU entity"):
        engine.create_gpu_instances(children[0], [(3, "1g.10gb")])


@pytest.mark.parametrize("value", [2, INT32_BLANK, 7.5])
def test_one_field_on_many_entities_stores_what_the_same_updates_store(value: Value) -> None:
    """inject_entity_field (the links' status at start) is inject_entities of one update per entity: the whole
    group, a part of it, a blank; an entity not created is refused by name."""
    engines = [EmbeddedEngine(), EmbeddedEngine()]
    for engine in engines:
        engine.create_entities("link", [256, 257, 258, 512])
    engines[0].inject_entity_field("link", 870, [256, 257, 258, 512], value, 1.0)
    engines[1].inject_entities("link", [(e, 870, value) for e in (256, 257, 258, 512)], 1.0)
    engines[0].inject_entity_field("link", 871, [257, 512], value, 1.0)
    engines[1].inject_entities("link", [(e, 871, value) for e in (257, 512)], 1.0)
    reads = [engine.read_latest([870, 871]).groups["link"].columns for engine in engines]
    assert reads[0] == reads[1]
    assert reads[0][871][0] is None and reads[0][870][0] == (None if value == INT32_BLANK else value)
    with pytest.raises(EngineError, match="no link entity 9"):
        engines[0].inject_entity_field("link", 870, [256, 9], 1, 2.0)
