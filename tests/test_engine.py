"""The embedded engine: injections, blanks, immutable snapshots, and the read counter."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from otel_fakegpu.engine import EmbeddedEngine, EngineError, EngineState
from otel_fakegpu.fields import Value, blank
from otel_fakegpu.fields.catalog import ValueType


def test_inject_then_batch_read() -> None:
    engine = EmbeddedEngine()
    assert engine.status().state is EngineState.STARTING
    ids = engine.create_gpus(3)
    engine.inject([(ids[0], 150, 40), (ids[2], 150, 60), (ids[1], 155, 300.5)], timestamp=10.0)
    snap = engine.read_latest([150, 155, 999])
    assert snap.entity_ids == ids
    assert snap.column(150) == (40, None, 60)
    assert snap.column(155) == (None, 300.5, None)
    assert snap.column(999) == (None, None, None)
    assert snap.value(ids[2], 150) == 60
    assert engine.latest_timestamp(ids[0], 150) == 10.0
    assert engine.reads_total == 1
    assert engine.status().state is EngineState.OK


@pytest.mark.parametrize(
    "sentinel",
    [
        blank.INT32_BLANK,
        blank.INT32_BLANK + 2,
        blank.INT64_BLANK + 1,
        blank.DOUBLE_BLANK,
        blank.DOUBLE_BLANK + 3,
        blank.STRING_BLANK,
        blank.STRING_NOT_SUPPORTED,
        float("nan"),
        None,
    ],
)
def test_dcgm_blank_sentinels_read_as_no_value(sentinel: object) -> None:
    engine = EmbeddedEngine()
    (gpu,) = engine.create_gpus(1)
    engine.inject([(gpu, 150, 55)], 1.0)
    engine.inject([(gpu, 150, sentinel)], 2.0)  # type: ignore[list-item]
    assert engine.read_latest([150]).column(150) == (None,)


@pytest.mark.parametrize("reading", [float(blank.INT32_BLANK), float(blank.INT64_BLANK + 1), 2**47, "140737488355328"])
def test_a_reading_equal_to_another_types_sentinel_is_kept(reading: object) -> None:
    """The engines' quick test lets through what equals no sentinel; one equal to another type's takes is_blank."""
    engine = EmbeddedEngine()
    (gpu,) = engine.create_gpus(1)
    engine.inject_rows([(gpu, {150: reading})], 1.0)  # type: ignore[dict-item]
    engine.create_entities("switch", [0])
    engine.inject_entities("switch", [(0, 858, reading), (0, 859, blank.INT32_BLANK)], 1.0)  # type: ignore[list-item]
    assert engine.read_latest([150]).column(150) == (reading,)
    assert engine.read_latest([858, 859]).groups["switch"].columns == {858: (reading,), 859: (None,)}


def test_rows_store_what_the_same_triples_store() -> None:
    """inject_rows (the simulator's form) is inject of every reading of its rows: values, blanks, samples."""
    rows: list[tuple[int, dict[int, Value | None]]] = [
        (0, {150: 40, 230: 0, 155: float("nan")}), (1, {230: 43, 150: blank.INT32_BLANK}), (0, {150: 41})
    ]  # fmt: skip
    engines = [EmbeddedEngine(clock=lambda: 9.0), EmbeddedEngine(clock=lambda: 9.0)]
    for engine in engines:
        engine.create_gpus(2)
        engine.watch_samples([230], 60.0)
    engines[0].inject_rows(rows, 5.0)
    engines[1].inject([(e, f, v) for e, readings in rows for f, v in readings.items()], 5.0)
    first, second = (engine.read_latest([150, 155, 230], samples_after=0) for engine in engines)
    assert first == second and first.column(150) == (41, None) and first.samples[230][0].entity_ids == (0, 1)


def test_blank_for_each_type_is_blank() -> None:
    for value_type in ValueType:
        assert blank.is_blank(blank.blank_for(value_type))
    assert not blank.is_blank(0) and not blank.is_blank(0.0) and not blank.is_blank("")


def test_snapshot_is_immutable_and_isolated_from_later_injections() -> None:
    engine = EmbeddedEngine()
    (gpu,) = engine.create_gpus(1)
    engine.inject([(gpu, 150, 41)], 1.0)
    snap = engine.read_latest([150])
    engine.inject([(gpu, 150, 99)], 2.0)
    assert snap.column(150) == (41,)
    with pytest.raises(TypeError):
        snap.columns[150] = (0,)  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.taken_at = 0.0  # type: ignore[misc]


def test_unknown_entity_is_refused() -> None:
    engine = EmbeddedEngine()
    engine.create_gpus(1)
    with pytest.raises(EngineError, match="no GPU entity 7"):
        engine.inject([(7, 150, 1)], 1.0)


def test_gpus_created_later_get_blank_columns() -> None:
    engine = EmbeddedEngine()
    engine.create_gpus(1)
    engine.inject([(0, 150, 30)], 1.0)
    engine.create_gpus(2)
    assert engine.read_latest([150]).column(150) == (30, None, None)


def test_status_and_read_count_never_wait_for_an_injection() -> None:
    """/health asks these on the event loop; an injection batch holds the engine lock for a long time."""
    import threading

    engine = EmbeddedEngine()
    engine.create_gpus(2)
    inside, release = threading.Event(), threading.Event()

    def slow_batch() -> Iterator[tuple[int, int, int]]:
        yield (0, 150, 40)
        inside.set()
        release.wait(10)
        yield (1, 150, 41)

    injector = threading.Thread(target=engine.inject, args=(slow_batch(), 1.0))
    injector.start()
    assert inside.wait(10)
    answers: list[object] = []
    asker = threading.Thread(target=lambda: answers.extend([engine.status().state, engine.reads_total]))
    asker.start()
    asker.join(timeout=2)
    release.set()
    injector.join(timeout=10)
    assert answers == [EngineState.OK, 0]  # answered while the batch still held the lock
