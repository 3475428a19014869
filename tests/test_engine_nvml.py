"""The NVML engine against a fake of nvidia-ml-py's pynvml (tests/fakes/nvml; the real one needs an NVIDIA
driver): which call answers each catalog field, in which unit, what is blank, and how an NVML error fails."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from otel_fakegpu.engine import (
    EngineError,
    EngineSettings,
    EngineState,
    EngineUnavailable,
    GpuInstanceEntity,
    SampleBatch,
    parse_devices,
)
from otel_fakegpu.engine.nvml import NvmlEngine, load_pynvml
from otel_fakegpu.fields import CATALOG, ENTITY_GPU
from tests.conftest import FakeClock

FAKE_NVML = Path(__file__).parent / "fakes" / "nvml"

# GPU 0 of the fake (pynvml.sample_gpu(0)), as DCGM would report it: MiB, W, mJ, ns, counts.
EXPECTED_GPU0: dict[int, object] = {
    1: "550.54.15", 2: "12.550.54.15", 4: 2, 50: "NVIDIA H100 80GB HBM3", 51: "Tesla", 53: "1654320",
    54: "GPU-nvml-0", 55: 0, 66: 1, 57: "00000000:10:00.0", 85: "96.00.74.00.01", 100: 1980, 101: 2619, 112: 4,
    140: None, 150: 40, 155: 123.456, 156: 5_000_000, 157: None, 160: 700.0, 162: 700.0, 163: 700.0, 164: 650.0,
    174: None, 175: None, 158: 89, 159: 92, 190: 0, 191: None, 200: 12000, 201: 34000, 202: 3, 203: 42,
    204: 17, 206: 5, 207: 6, 230: None, 240: 10, 241: 20, 242: 30, 243: 40, 244: 50, 245: 60, 250: 81559,
    251: 80000, 252: 1024, 253: 535, 254: 1024 / (81559 - 535), 310: 1, 311: 2, 312: 3, 313: 4, 390: 2, 391: 1,
    392: 0, 393: 6, 394: 5, 395: 0, 396: 0, 409: 9 + 1, 419: 10 + 1, 429: 7 + 1, 439: 8 + 1, 449: None, 526: None,
    **{fid: None for fid in (*range(1001, 1016), *range(1085, 1091))},
}  # fmt: skip


@pytest.fixture
def nvml() -> Any:
    if str(FAKE_NVML) not in sys.path:
        sys.path.insert(0, str(FAKE_NVML))
    module = load_pynvml()
    module.reset(2)
    return module


def make_engine(nvml: Any, clock: FakeClock | None = None, devices: str = "f") -> NvmlEngine:
    return NvmlEngine(
        nvml, EngineSettings("nvml", devices=parse_devices(devices)), clock or FakeClock(0.0), FakeClock()
    )


def test_every_catalog_field_maps_to_its_nvml_call_and_unit_or_is_blank(nvml: Any) -> None:
    read_ids = [spec.id for spec in CATALOG if not spec.is_computed and spec.entity == ENTITY_GPU]
    assert sorted(EXPECTED_GPU0) == sorted(read_ids)  # the table above covers every GPU field of the catalog
    engine = make_engine(nvml)
    assert nvml.CALLS == [("nvmlInit",), ("nvmlShutdown",)]  # the library probe at construction
    snapshot = engine.read_latest(read_ids)
    assert snapshot.entity_ids == (0, 1)
    for field_id, expected in EXPECTED_GPU0.items():
        got = snapshot.value(0, field_id)
        assert got == expected, f"field {field_id}"
        assert type(got) is type(expected), f"field {field_id}"
    assert snapshot.value(1, 150) == 41 and snapshot.value(1, 54) == "GPU-nvml-1"
    assert nvml.CALLS[2:7] == [
        ("nvmlInit",), ("nvmlDeviceGetCount",), ("nvmlDeviceGetHandleByIndex", 0), ("nvmlDeviceGetMigMode", 0),
        ("nvmlDeviceGetHandleByIndex", 1),
    ]  # fmt: skip
    for call in [
        ("nvmlDeviceGetPowerUsage", 0), ("nvmlDeviceGetTotalEnergyConsumption", 1),
        ("nvmlDeviceGetTemperature", 0, 0), ("nvmlDeviceGetClockInfo", 0, 1), ("nvmlDeviceGetClockInfo", 0, 2),
        ("nvmlDeviceGetTotalEccErrors", 0, 1, 1), ("nvmlDeviceGetViolationStatus", 0, 5),
        ("nvmlDeviceGetNvLinkErrorCounter", 0, 1, 2), ("nvmlDeviceGetCurrentClocksEventReasons", 1),
    ]:  # fmt: skip
        assert call in nvml.CALLS, call
    assert engine.status().state is EngineState.OK and engine.status().detail == "2 GPUs through NVML"


def test_framebuffer_reserved_from_memory_info_v2_or_what_v1_leaves(nvml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_engine(nvml).read_latest([250, 251, 252, 253]).columns[253] == (535, 535)
    assert ("nvmlDeviceGetMemoryInfo", 0, nvml.nvmlMemory_v2) in nvml.CALLS
    monkeypatch.delattr(nvml, "nvmlMemory_v2")  # older bindings: version 1 only, used includes the reservation
    old = make_engine(nvml).read_latest([250, 251, 252, 253])
    assert (old.value(0, 250), old.value(0, 251), old.value(0, 252), old.value(0, 253)) == (81559, 80000, 1559, 0)


def test_memory_temperature_comes_from_the_field_value_api(nvml: Any) -> None:
    nvml.STATE.gpus[1]["fields/82"] = 38
    assert make_engine(nvml).read_latest([140]).column(140) == (None, 38)
    assert ("nvmlDeviceGetFieldValues", 1, 82) in nvml.CALLS


def test_clock_event_samples_are_one_per_read(nvml: Any) -> None:
    engine = make_engine(nvml)
    engine.watch_samples([112], 60.0)
    first = engine.read_latest([150], samples_after=0)
    assert first.samples[112] == (SampleBatch(first.taken_at, (0, 1), (4, 4)),) and first.samples_cursor == 1
    nvml.STATE.gpus[1]["events"] = 32
    second = engine.read_latest([150], samples_after=1)
    assert second.samples[112] == (SampleBatch(second.taken_at, (0, 1), (4, 32)),) and second.samples_cursor == 2


def test_an_nvml_error_fails_the_read_and_the_engine_reinitialises(nvml: Any) -> None:
    clock = FakeClock(0.0)
    engine = make_engine(nvml, clock)
    engine.read_latest([150])
    nvml.STATE.gpus[1]["temp"] = nvml.Err(nvml.NVML_ERROR_GPU_IS_LOST)
    with pytest.raises(EngineError, match="read failed"):
        engine.read_latest([150])
    assert engine.status().state is EngineState.FAILED and engine.errors_total == 1
    assert nvml.CALLS[-1] == ("nvmlShutdown",)
    nvml.STATE.gpus[1]["temp"] = 55
    clock.advance(1.0)
    assert engine.read_latest([150]).column(150) == (40, 55)
    assert engine.status().state is EngineState.OK


def test_device_selection_and_missing_library(nvml: Any) -> None:
    assert make_engine(nvml, devices="g:1").read_latest([150]).column(150) == (41,)
    nvml.STATE.init_error = nvml.NVML_ERROR_LIBRARY_NOT_FOUND
    with pytest.raises(EngineUnavailable, match=r"libnvidia-ml\.so"):
        make_engine(nvml)
    nvml.STATE.init_error = nvml.NVML_ERROR_DRIVER_NOT_LOADED  # not fatal: retried with backoff
    engine = make_engine(nvml)
    with pytest.raises(EngineError, match="connect failed"):
        engine.read_latest([150])
    assert engine.status().state is EngineState.FAILED


def test_bindings_without_a_needed_call_are_too_old(nvml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(nvml, "nvmlDeviceGetTotalEnergyConsumption")
    with pytest.raises(EngineUnavailable, match=r"pynvml is too old \(no nvmlDeviceGetTotalEnergyConsumption\)"):
        load_pynvml()


def test_a_mig_enabled_gpu_is_read_as_its_mig_devices(nvml: Any) -> None:
    nvml.reset(3)
    nvml.STATE.gpus[1]["util"] = nvml.Err(nvml.NVML_ERROR_NOT_SUPPORTED)  # no GPU utilization under MIG
    first = nvml.add_mig_device(1, 7, "1g.10gb", 9728, 100)
    second = nvml.add_mig_device(1, 8, "1g.10gb", 9728, 200, named=False)  # profile from slices and memory
    engine = make_engine(nvml)
    snapshot = engine.read_latest([150, 203, 250, 252])
    assert snapshot.entity_ids == (0, 1_000_000, 1_000_001, 2)
    assert dict(snapshot.instances) == {
        1_000_000: GpuInstanceEntity(1, 7, "1g.10gb"),
        1_000_001: GpuInstanceEntity(1, 8, "1g.10gb"),
    }
    assert snapshot.column(252) == (1024, 100, 200, 1024)  # each MIG device's own framebuffer
    assert snapshot.column(250) == (81559, 9728, 9728, 81559)
    assert snapshot.column(150) == (40, 41, 41, 42)  # the parent GPU's temperature
    assert snapshot.column(203) == (42, None, None, 42)
    assert [c for c in nvml.CALLS if "Mig" in c[0] or c[0] == "nvmlDeviceGetGpuInstanceId"][:12] == [
        ("nvmlDeviceGetMigMode", 0),
        ("nvmlDeviceGetMigMode", 1),
        ("nvmlDeviceGetMaxMigDeviceCount", 1),
        *[("nvmlDeviceGetMigDeviceHandleByIndex", 1, i) for i in range(1)],
        ("nvmlDeviceGetGpuInstanceId", first),
        ("nvmlDeviceGetMigDeviceHandleByIndex", 1, 1),
        ("nvmlDeviceGetGpuInstanceId", second),
        *[("nvmlDeviceGetMigDeviceHandleByIndex", 1, i) for i in range(2, 7)],
    ]
    assert engine.status().detail == "2 GPUs, 2 MIG GPU instances through NVML"
    whole = make_engine(nvml, devices="g").read_latest([252])
    assert whole.entity_ids == (0, 1, 2) and not whole.instances and whole.column(252) == (1024, 1024, 1024)
