"""Floor 3: engines, where field values come from (embedded simulator store; DCGM and NVML on GPU hosts)."""

from typing import TYPE_CHECKING

from otel_fakegpu import lazy_exports

if TYPE_CHECKING:  # the names load with their module, on first use (lazy_exports)
    from otel_fakegpu.engine.base import Engine, EngineError, EngineState, EngineStatus
    from otel_fakegpu.engine.connected import ConnectedEngine, EngineUnavailable
    from otel_fakegpu.engine.embedded import EmbeddedEngine
    from otel_fakegpu.engine.entities import link_entity_id, link_parts
    from otel_fakegpu.engine.selection import ENGINE_KINDS, DeviceSelection, EngineSettings, parse_devices
    from otel_fakegpu.engine.snapshot import (
        EMPTY_SNAPSHOT,
        Column,
        GpuInstanceEntity,
        ProcessUsage,
        SampleBatch,
        Snapshot,
    )

__all__ = [
    "EMPTY_SNAPSHOT",
    "ENGINE_KINDS",
    "Column",
    "ConnectedEngine",
    "DeviceSelection",
    "EmbeddedEngine",
    "Engine",
    "EngineError",
    "EngineSettings",
    "EngineState",
    "EngineStatus",
    "EngineUnavailable",
    "GpuInstanceEntity",
    "ProcessUsage",
    "SampleBatch",
    "Snapshot",
    "link_entity_id",
    "link_parts",
    "parse_devices",
]

if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ that would accept any name
    __getattr__ = lazy_exports(
        __name__,
        {
            "base": ("Engine", "EngineError", "EngineState", "EngineStatus"),
            "connected": ("ConnectedEngine", "EngineUnavailable"),
            "embedded": ("EmbeddedEngine",),
            "entities": ("link_entity_id", "link_parts"),
            "selection": ("ENGINE_KINDS", "DeviceSelection", "EngineSettings", "parse_devices"),
            "snapshot": ("EMPTY_SNAPSHOT", "Column", "GpuInstanceEntity", "ProcessUsage", "SampleBatch", "Snapshot"),
        },
    )
