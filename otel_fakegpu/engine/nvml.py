"""The NVML engine: real GPUs through nvidia-ml-py (module ``pynvml``), for GPU hosts without DCGM.

Each catalog field NVML can give is read with its own call (engine/nvml_fields.py); a call the GPU or driver
does not support is a blank, any other NVML error fails the read and the engine re-initialises NVML.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from otel_fakegpu.engine.base import EngineError
from otel_fakegpu.engine.connected import ConnectedEngine, EngineUnavailable
from otel_fakegpu.engine.embedded import INSTANCE_ENTITY_BASE
from otel_fakegpu.engine.nvml_fields import READERS, Reader
from otel_fakegpu.engine.nvml_mig import mig_devices, mig_enabled
from otel_fakegpu.engine.selection import EngineSettings
from otel_fakegpu.engine.snapshot import INSTANCE_FIELDS, Column, GpuInstanceEntity, SampleBatch, Snapshot
from otel_fakegpu.fields import Value, is_blank

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'otel-fakegpu[nvml]' (or nvidia-ml-py)"
# NVML return codes that mean "this GPU or driver has no such reading": a blank, not a failure.
BLANK_CODES = frozenset(
    ("NVML_ERROR_INVALID_ARGUMENT", "NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_NO_PERMISSION",
     "NVML_ERROR_NOT_FOUND", "NVML_ERROR_FUNCTION_NOT_FOUND")
)  # fmt: skip


def load_pynvml() -> Any:
    """Import pynvml; EngineUnavailable names the package and how to install it."""
    try:
        nv = importlib.import_module("pynvml")
    except ImportError:
        raise EngineUnavailable(
            f"--engine nvml: the nvidia-ml-py package (module pynvml) is missing: {INSTALL_HINT}"
        ) from None
    for name in ("nvmlInit", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetTotalEnergyConsumption", "NVMLError"):
        if not hasattr(nv, name):
            raise EngineUnavailable(f"--engine nvml: pynvml is too old (no {name}): {INSTALL_HINT}")
    return nv


class NvmlEngine(ConnectedEngine):
    """Reads the selected GPUs (``--devices g:...``; by NVML index) field by field, once per cycle; a MIG-enabled
    GPU as its MIG devices (``-d f``), each with its own framebuffer and its parent's other readings."""

    kind = "nvml"

    def __init__(
        self, nvml: Any, settings: EngineSettings, clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        super().__init__((nvml.NVMLError,), clock)
        self._nv = nvml
        self._settings = settings
        self._wall = wall_clock
        self._blank_codes = frozenset(getattr(nvml, code) for code in BLANK_CODES if hasattr(nvml, code))
        self._handles: list[tuple[int, Any, Any]] = []  # (seam entity id, its handle, the whole GPU's handle)
        self._instances: dict[int, GpuInstanceEntity] = {}
        self._sample_fields: tuple[int, ...] = ()
        self._cursor = 0
        try:
            nvml.nvmlInit()
            nvml.nvmlShutdown()
        except nvml.NVMLError as exc:
            if exc.value == getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", None):
                raise EngineUnavailable(
                    f"--engine nvml: libnvidia-ml.so cannot be loaded ({exc}): is the NVIDIA driver installed?"
                ) from None
            log.warning("NVML does not initialise yet (%s); retrying with backoff", exc)

    def _connect(self) -> None:
        nv = self._nv
        nv.nvmlInit()
        wanted = self._settings.devices
        handles: list[tuple[int, Any, Any]] = []
        instances: dict[int, GpuInstanceEntity] = {}
        for index in range(nv.nvmlDeviceGetCount()):
            if not wanted.wants_gpu(index):
                continue
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            if not mig_enabled(nv, handle):
                handles.append((index, handle, handle))
            elif wanted.mode == "g":
                log.warning("GPU %d has MIG enabled; read as a whole GPU (-d g)", index)
                handles.append((index, handle, handle))
            else:  # dcgm-exporter's -d f: the GPU's instances in its place
                for device in mig_devices(nv, handle):
                    entity_id = INSTANCE_ENTITY_BASE + len(instances)
                    instances[entity_id] = GpuInstanceEntity(index, device.instance_id, device.profile)
                    handles.append((entity_id, device.handle, handle))
        self._handles, self._instances = handles, instances

    def _disconnect(self) -> None:
        self._handles, self._instances = [], {}
        self._nv.nvmlShutdown()

    def _describe(self) -> str:
        mig = f", {len(self._instances)} MIG GPU instances" if self._instances else ""
        return f"{len(self._handles) - len(self._instances)} GPUs{mig} through NVML"

    def entity_ids(self) -> tuple[int, ...]:
        return tuple(entity_id for entity_id, _, _ in self._handles)

    def watch_samples(self, field_ids: Sequence[int], max_keep_age_s: float) -> None:
        # NVML keeps no history: each read's value is the sample (the clock-event bitmask sampled per cycle).
        self._sample_fields = tuple(dict.fromkeys((*self._sample_fields, *field_ids)))

    def _read(self, field_ids: Sequence[int], samples_after: int | None) -> Snapshot:
        sample_fields = self._sample_fields if samples_after is not None else ()
        columns: dict[int, Column] = {}
        for field_id in dict.fromkeys((*field_ids, *sample_fields)):
            reader = READERS.get(field_id)
            own = field_id in INSTANCE_FIELDS  # a MIG device's own reading; else its whole GPU's
            columns[field_id] = (
                tuple(self._value(reader, h if own else gpu) for _, h, gpu in self._handles)
                if reader
                else ((None,) * len(self._handles))
            )
        entity_ids, now = self.entity_ids(), self._wall()
        if samples_after is None:
            return Snapshot.build(entity_ids, columns, now, instances=self._instances)
        self._cursor += 1
        samples = {fid: _as_samples(now, entity_ids, columns[fid]) for fid in sample_fields}
        return Snapshot.build(entity_ids, columns, now, samples, self._cursor, self._instances)

    def _value(self, reader: Reader, handle: Any) -> Value | None:
        try:
            value = reader(self._nv, handle)
        except self._nv.NVMLError as exc:
            if exc.value in self._blank_codes:
                return None
            raise
        except AttributeError:  # a call these bindings lack: the reading does not exist here
            return None
        return None if is_blank(value) else value

    def create_gpus(self, count: int) -> tuple[int, ...]:
        raise EngineError("the nvml engine reads real GPUs; it cannot create simulated ones")

    def inject(self, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        raise EngineError("the nvml engine reads real GPUs; it takes no injected values")


def _as_samples(now: float, entity_ids: tuple[int, ...], column: Column) -> tuple[SampleBatch, ...]:
    present = [(eid, value) for eid, value in zip(entity_ids, column, strict=True) if value is not None]
    if not present:
        return ()
    return (SampleBatch(now, tuple(e for e, _ in present), tuple(v for _, v in present)),)
