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
from otel_fakegpu.engine.nvml_fields import READERS, Reader
from otel_fakegpu.engine.selection import EngineSettings
from otel_fakegpu.engine.snapshot import Column, SampleBatch, Snapshot
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
    """Reads the selected GPUs (``--devices g:...``; by NVML index) field by field, once per cycle."""

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
        self._handles: list[tuple[int, Any]] = []
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
        handles = []
        for index in range(nv.nvmlDeviceGetCount()):
            if wanted.wants_gpu(index):
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                handles.append((index, handle))
                if self._mig_enabled(handle):
                    log.warning("GPU %d has MIG enabled; the NVML engine reads it as a whole GPU", index)
        self._handles = handles

    def _mig_enabled(self, handle: Any) -> bool:
        try:
            current, _pending = self._nv.nvmlDeviceGetMigMode(handle)
        except (self._nv.NVMLError, AttributeError):  # pre-Ampere GPUs, old bindings
            return False
        return bool(current == getattr(self._nv, "NVML_DEVICE_MIG_ENABLE", 1))

    def _disconnect(self) -> None:
        self._handles = []
        self._nv.nvmlShutdown()

    def _describe(self) -> str:
        return f"{len(self._handles)} GPUs through NVML"

    def entity_ids(self) -> tuple[int, ...]:
        return tuple(index for index, _ in self._handles)

    def watch_samples(self, field_ids: Sequence[int], max_keep_age_s: float) -> None:
        # NVML keeps no history: each read's value is the sample (the clock-event bitmask sampled per cycle).
        self._sample_fields = tuple(dict.fromkeys((*self._sample_fields, *field_ids)))

    def _read(self, field_ids: Sequence[int], samples_after: int | None) -> Snapshot:
        sample_fields = self._sample_fields if samples_after is not None else ()
        columns: dict[int, Column] = {}
        for field_id in dict.fromkeys((*field_ids, *sample_fields)):
            reader = READERS.get(field_id)
            columns[field_id] = (
                tuple(self._value(reader, h) for _, h in self._handles) if reader else ((None,) * len(self._handles))
            )
        entity_ids, now = self.entity_ids(), self._wall()
        if samples_after is None:
            return Snapshot.build(entity_ids, columns, now)
        self._cursor += 1
        samples = {fid: _as_samples(now, entity_ids, columns[fid]) for fid in sample_fields}
        return Snapshot.build(entity_ids, columns, now, samples, self._cursor)

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
