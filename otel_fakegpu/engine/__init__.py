"""Floor 3: engines, where field values come from (embedded simulator store; DCGM and NVML on GPU hosts)."""

from otel_fakegpu.engine.base import Engine, EngineError, EngineState, EngineStatus
from otel_fakegpu.engine.connected import ConnectedEngine, EngineUnavailable
from otel_fakegpu.engine.embedded import EmbeddedEngine
from otel_fakegpu.engine.entities import link_entity_id, link_parts
from otel_fakegpu.engine.selection import ENGINE_KINDS, DeviceSelection, EngineSettings, parse_devices
from otel_fakegpu.engine.snapshot import EMPTY_SNAPSHOT, Column, GpuInstanceEntity, SampleBatch, Snapshot

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
    "SampleBatch",
    "Snapshot",
    "link_entity_id",
    "link_parts",
    "parse_devices",
]
