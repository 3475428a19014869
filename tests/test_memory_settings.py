"""The processes' memory settings (otel_fakegpu/runtime/memory.py): glibc's mmap threshold is pinned unless the
user set one, the garbage collector runs at the raised thresholds after start-up, and the heap's free pages go back
to the system after each worker pass."""

from __future__ import annotations

import ctypes.util
import gc

import pytest

from otel_fakegpu.runtime.memory import GC_THRESHOLDS, hold_collection, pin_mmap_threshold, settle_memory, trim_heap


@pytest.mark.process  # ctypes.util.find_library runs ldconfig
@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to ask (not glibc)")
def test_mmap_threshold_is_pinned_unless_the_user_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert pin_mmap_threshold() is True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    assert pin_mmap_threshold() is False


def test_settle_memory_raises_the_collector_thresholds() -> None:
    before = gc.get_threshold()
    try:
        settle_memory()
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_held_collection_runs_again_once_memory_is_settled() -> None:
    """A worker's start-up runs without collections (hold_collection); settling turns the collector back on."""
    before = gc.get_threshold()
    try:
        hold_collection()
        assert not gc.isenabled()
        settle_memory()
        assert gc.isenabled() and gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to ask (not glibc)")
def test_the_heap_is_trimmed_on_glibc() -> None:
    """malloc_trim answers 1 when it gave memory back: after freeing many large blocks it has some to give."""
    blocks = [bytearray(100_000) for _ in range(50)]  # under any mmap threshold (128 KiB at least): the heap
    del blocks
    assert trim_heap() is True
