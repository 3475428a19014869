"""MIG GPU instances read from a hostengine (fake DCGM bindings, tests/fakes/dcgm: the real ones need DCGM and an
NVIDIA GPU): discovered from the hierarchy, named by profile, read in the cycle's one batch, and exported exactly
as the embedded engine exports the same layout."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from otel_fakegpu.engine import EmbeddedEngine, Engine, EngineSettings, GpuInstanceEntity, parse_devices
from otel_fakegpu.engine.dcgm_loader import load_dcgm
from otel_fakegpu.engine.embedded import INSTANCE_ENTITY_BASE
from otel_fakegpu.engine.snapshot import INSTANCE_FIELDS
from otel_fakegpu.fields import Value, load_collectors
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.sim import SKUS, FleetSpec, MigRef, Simulator, Workload, parse_mig_spec, resolve_mig
from otel_fakegpu.sim.events import GpuEvent
from tests.conftest import FakeClock
from tests.test_engine_dcgm import ENV, _every_field_csv, calls, make_engine, node_pipeline

GPU_I = 4  # DCGM_FE_GPU_I
BASE = INSTANCE_ENTITY_BASE


@pytest.fixture
def hostengine() -> Any:
    load_dcgm(ENV, inject=False)  # puts the fakes on sys.path
    fake = sys.modules["fake_hostengine"]
    fake.reset((0, 1, 2))
    # GPU 1: two 1g.10gb instances (GPU instance ids 7, 8); GPU 2: one 3g.40gb (id 1) whose name DCGM lacks.
    fake.STATE.instances = [(1, 0), (1, 1), (2, 2)]
    fake.STATE.instance_info = {0: (7, 1), 1: (8, 1), 2: (1, 3)}
    for entity, name in ((0, "1g.10gb"), (1, "1g.10gb")):
        fake.STATE.values[(GPU_I, entity, 50)] = ("s", name, 1)
    for entity, used in ((0, 100), (1, 200), (2, 300)):
        fake.STATE.values[(GPU_I, entity, 252)] = ("i", used, 1)
        fake.STATE.values[(GPU_I, entity, 150)] = ("i", 99, 1)  # not kept per instance: the parent's is read
    return fake


def test_instances_are_discovered_named_and_read_in_one_batch(hostengine: Any) -> None:
    engine = make_engine(EngineSettings("dcgm", "localhost:5555"))
    snapshot = engine.read_latest([150, 252])
    pairs = ((1, 0), (1, 1), (1, 2), (GPU_I, 0), (GPU_I, 1), (GPU_I, 2))
    assert [c for c in hostengine.CALLS if c[0] not in ("_dcgmInit", "dcgmInit")] == [
        ("dcgmConnect_v2", "localhost:5555", 0, 0),
        ("dcgmGetAllSupportedDevices",),
        ("dcgmGetGpuInstanceHierarchy",),
        ("dcgmEntitiesGetLatestValues", ((GPU_I, 0), (GPU_I, 1), (GPU_I, 2)), (50,), 1),  # profile names, live
        ("dcgmGroupCreate", 1),
        *[("dcgmGroupAddEntity", group, entity) for group, entity in pairs],
        ("dcgmFieldGroupCreate", (150, 252)),
        ("dcgmWatchFields", 500_000, 60.0, 0),
        ("dcgmUpdateAllFields", 1),
        ("dcgmEntitiesGetLatestValues", pairs, (150, 252), 0),  # the cycle's one batch read
    ]
    assert snapshot.entity_ids == (0, BASE, BASE + 1, BASE + 2)  # MIG-enabled GPUs 1 and 2: only instances
    assert dict(snapshot.instances) == {
        BASE: GpuInstanceEntity(1, 7, "1g.10gb"),
        BASE + 1: GpuInstanceEntity(1, 8, "1g.10gb"),
        BASE + 2: GpuInstanceEntity(2, 1, "3g"),  # no name from DCGM: the slice count
    }
    assert snapshot.column(252) == (1024, 100, 200, 300)  # framebuffer: each instance its own
    assert snapshot.column(150) == (40, 41, 41, 42)  # temperature: the parent GPU's
    assert engine.status().detail == "1 GPUs, 3 MIG GPU instances on localhost:5555"
    hostengine.CALLS.clear()
    engine.read_latest([150, 252])
    assert calls(hostengine, "dcgmEntitiesGetLatestValues") == [("dcgmEntitiesGetLatestValues", pairs, (150, 252), 0)]


def _read_with(devices: str, field_ids: list[int]) -> Any:
    engine = make_engine(EngineSettings("dcgm", None, parse_devices(devices)))
    try:
        return engine.read_latest(field_ids)
    finally:
        engine.close()  # the embedded hostengine goes, and its field groups with it


def test_devices_option_selects_instances_or_whole_gpus(hostengine: Any) -> None:
    only = _read_with("i:1", [150, 252])
    assert only.entity_ids == (BASE + 1,) and only.column(252) == (200,) and only.column(150) == (41,)
    assert ("dcgmGroupAddEntity", 1, 1) in hostengine.CALLS and ("dcgmGroupAddEntity", 1, 0) not in hostengine.CALLS
    assert _read_with("i", [252]).entity_ids == (BASE, BASE + 1, BASE + 2)
    whole = _read_with("g", [252])
    assert whole.entity_ids == (0, 1, 2) and not whole.instances and whole.column(252) == (1024, 1024, 1024)


class _MirroredEngine(EmbeddedEngine):
    """The embedded engine, also storing every value the simulator injects into the fake hostengine as DCGM holds
    it on a MIG host: GPU instances as FE_GPU_I entities (named by profile), their per-instance fields there."""

    def __init__(self, fake: Any, clock: FakeClock) -> None:
        super().__init__(clock)
        self._fake = fake
        self._mig_parents: set[int] = set()

    def create_gpu_instances(self, parent: int, instances: Sequence[tuple[int, str]]) -> tuple[int, ...]:
        created = super().create_gpu_instances(parent, instances)
        self._mig_parents.add(parent)
        for entity, (instance_id, profile) in zip(created, instances, strict=True):
            self._fake.STATE.instances.append((parent, entity - BASE))
            self._fake.STATE.instance_info[entity - BASE] = (instance_id, int(profile[0]))
            self._fake.STATE.values[(GPU_I, entity - BASE, 50)] = ("s", profile, 0)
        return created

    def inject_rows(self, rows: Iterable[tuple[int, Mapping[int, Value | None]]], timestamp: float) -> None:
        Engine.inject_rows(self, rows, timestamp)  # every reading through inject below, as an engine's default

    def inject(self, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        updates = list(updates)
        super().inject(updates, timestamp)
        for entity, field_id, value in updates:
            group, dcgm_id = (GPU_I, entity - BASE) if entity >= BASE else (1, entity)
            if group == GPU_I and field_id not in INSTANCE_FIELDS:
                continue  # DCGM answers the parent's value there
            # NVML (so DCGM) has no GPU utilization for a MIG-enabled GPU.
            if value is None or (field_id == 203 and entity in self._mig_parents):
                self._fake.STATE.values.pop((group, dcgm_id, field_id), None)
                continue
            kind = "s" if isinstance(value, str) else "d" if isinstance(value, float) else "i"
            self._fake.store(group, dcgm_id, field_id, kind, value, int(timestamp * 1e6))


def _render_mig(engine: Any, simulator_engine: Any, clock: FakeClock, collectors: Any) -> list[str]:
    skus = (SKUS["a100-80gb"], SKUS["h100-sxm"])
    layouts = resolve_mig(parse_mig_spec("0:1g.10gb*3+3g.40gb,1:3g.40gb*2"), 3, lambda i: (skus[i % 2].key,
                          skus[i % 2].mig_profiles))  # fmt: skip
    spec = FleetSpec(3, ("faulty", "chaos", "degrading"), skus, "node-1", 11, layouts)
    simulator = Simulator(spec, simulator_engine, clock=clock)
    pipeline = node_pipeline(collectors)
    pipeline.watch(engine, 3600.0)
    simulator.start()
    simulator.add_workload(Workload("train-0", "ml", "pytorch", instances=(MigRef(1, 1),), shape="training"))
    for step in range(40):
        clock.advance(5.0)
        simulator.step()
        if step == 39:
            simulator.apply_event(0, GpuEvent("xid", 79))  # on a MIG-enabled GPU: its instances count it
    body, _ = PrometheusTextRenderer().render(pipeline.collect(pipeline.read(engine)))
    return [line for line in body.decode().splitlines() if line.startswith("DCGM_")]


def test_a_mig_host_read_through_dcgm_exports_what_the_embedded_engine_exports(hostengine: Any, tmp_path: Path) -> None:
    hostengine.reset((), with_defaults=False)
    hostengine.STATE.gpus = [0, 1, 2]
    collectors = load_collectors(_every_field_csv(tmp_path / "all.csv"))
    embedded_clock, dcgm_clock = FakeClock(), FakeClock()
    embedded = EmbeddedEngine(embedded_clock)
    expected = _render_mig(embedded, embedded, embedded_clock, collectors)
    mirrored = _MirroredEngine(hostengine, dcgm_clock)
    through_dcgm = _render_mig(make_engine(EngineSettings("dcgm", "localhost:5555"), wall=dcgm_clock), mirrored,
                               dcgm_clock, collectors)  # fmt: skip
    assert any('GPU_I_PROFILE="1g.10gb",GPU_I_ID="11"' in line for line in expected)
    assert any('GPU_I_PROFILE="3g.40gb",GPU_I_ID="2"' in line for line in expected)
    assert any(line.startswith('DCGM_FI_DEV_FB_USED{gpu="2",') and "GPU_I_" not in line for line in expected)
    xids = [line for line in expected if line.startswith('DCGM_FI_DEV_XID_ERRORS{gpu="0",')]
    assert len(xids) == 4 and all("GPU_I_ID=" in line and line.endswith(" 79") for line in xids)  # the parent's
    gpu_lines = [line for line in expected if 'gpu="' in line]  # real NVSwitches are not read from a hostengine
    assert through_dcgm == gpu_lines
