"""The DCGM engine against a fake of DCGM's Python bindings (tests/fakes/dcgm; the real ones need DCGM and an
NVIDIA GPU): the exact calls, every value type and blank, injection of simulated GPUs, reconnecting."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from otel_fakegpu.engine import (
    EmbeddedEngine,
    EngineError,
    EngineSettings,
    EngineState,
    EngineUnavailable,
    SampleBatch,
    parse_devices,
)
from otel_fakegpu.engine.dcgm import DcgmEngine
from otel_fakegpu.engine.dcgm_loader import load_dcgm
from otel_fakegpu.fields import CATALOG, load_collectors
from otel_fakegpu.fields.blank import DOUBLE_BLANK, STRING_BLANK
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.sim import SKUS, FleetSpec, Simulator
from otel_fakegpu.telemetry import CycleStats, LabelScheme, TelemetryPipeline, default_resource
from tests.conftest import FakeClock

FAKE_BINDINGS = Path(__file__).parent / "fakes" / "dcgm"
ENV = {"DCGM_PYTHON_BINDINGS": str(FAKE_BINDINGS)}


@pytest.fixture
def hostengine() -> Any:
    load_dcgm(ENV, inject=True)  # puts the fakes on sys.path
    fake = sys.modules["fake_hostengine"]
    fake.reset((0, 1))
    return fake


def calls(fake: Any, name: str) -> list[tuple[Any, ...]]:
    return [c for c in fake.CALLS if c[0] == name]


def make_engine(settings: EngineSettings, clock: FakeClock | None = None, wall: FakeClock | None = None) -> DcgmEngine:
    modules = load_dcgm(ENV, settings.inject)
    return DcgmEngine(modules, settings, 0.5, clock=clock or FakeClock(0.0), wall_clock=wall or FakeClock())


def test_remote_read_makes_dcgm_exporters_calls_and_maps_every_value_type(hostengine: Any) -> None:
    values = hostengine.STATE.values
    values[(1, 0, 203)] = ("status", -14, 0)  # DCGM_ST_NO_DATA for this one value
    values[(1, 1, 155)] = ("d", DOUBLE_BLANK, 5)
    values[(1, 1, 85)] = ("s", STRING_BLANK, 5)
    values[(1, 0, 85)] = ("s", "96.00.74.00.01", 5)
    values[(1, 0, 156)] = ("t", 1_700_000_000_000_000, 5)  # a timestamp-typed value reads as an integer
    engine = make_engine(EngineSettings("dcgm", "localhost:5555"))
    engine.watch_samples([230], 90.0)
    fields = [50, 54, 100, 155, 156, 203, 85]
    snapshot = engine.read_latest(fields, samples_after=0)

    assert [
        ("_dcgmInit",),
        ("dcgmInit",),
        ("dcgmConnect_v2", "localhost:5555", 0, 0),
        ("dcgmGetAllSupportedDevices",),
        ("dcgmGetGpuInstanceHierarchy",),
        ("dcgmGroupCreate", 1),
        ("dcgmGroupAddEntity", 1, 0),
        ("dcgmGroupAddEntity", 1, 1),
        ("dcgmFieldGroupCreate", tuple(fields)),
        ("dcgmWatchFields", 500_000, 90.0, 0),
        ("dcgmUpdateAllFields", 1),
        ("dcgmEntitiesGetLatestValues", ((1, 0), (1, 1)), tuple(fields), 0),
        ("dcgmFieldGroupCreate", (230,)),  # the event fields, for every sample since the last read
        ("dcgmWatchFields", 500_000, 90.0, 0),
        ("dcgmUpdateAllFields", 1),
        ("dcgmGetValuesSince_v2", (230,), 0),
    ] == hostengine.CALLS
    assert snapshot.entity_ids == (0, 1)
    assert snapshot.column(50) == ("NVIDIA H100 80GB HBM3",) * 2
    assert snapshot.column(54) == ("GPU-fake-0", "GPU-fake-1")
    assert snapshot.column(100) == (1980, 1980) and all(type(v) is int for v in snapshot.column(100))
    assert snapshot.column(155) == (123.5, None) and type(snapshot.column(155)[0]) is float
    assert snapshot.column(156) == (1_700_000_000_000_000, 5_000_000)
    assert snapshot.column(203) == (None, 42)
    assert snapshot.column(85) == ("96.00.74.00.01", None)
    assert engine.status().state is EngineState.OK and engine.status().detail == "2 GPUs on localhost:5555"

    hostengine.CALLS.clear()
    engine.read_latest(fields, samples_after=snapshot.samples_cursor)
    assert [c[0] for c in hostengine.CALLS] == ["dcgmEntitiesGetLatestValues", "dcgmGetValuesSince_v2"]  # watched once
    assert engine.reads_total == 2 and engine.errors_total == 0


def test_event_samples_are_every_value_stored_since_the_last_read(hostengine: Any) -> None:
    engine = make_engine(EngineSettings("dcgm", "localhost:5555"))
    engine.watch_samples([230, 112], 60.0)
    hostengine.store(1, 1, 230, "i", 79, 2_000_000)
    first = engine.read_latest([150], samples_after=0)
    assert first.samples == {230: (SampleBatch(2.0, (1,), (79,)),), 112: ()}
    assert first.samples_cursor == 2_000_001
    again = engine.read_latest([150], samples_after=first.samples_cursor)
    assert again.samples[230] == () and again.samples_cursor == first.samples_cursor
    for ts, gpu, xid in ((3_000_000, 0, 48), (3_000_000, 1, 31), (3_500_000, 0, 63)):  # two XIDs of GPU 0
        hostengine.store(1, gpu, 230, "i", xid, ts)
    hostengine.store(1, 1, 112, "i", 0x4, 3_200_000)
    third = engine.read_latest([150], samples_after=again.samples_cursor)
    assert third.samples[230] == (SampleBatch(3.0, (0, 1), (48, 31)), SampleBatch(3.5, (0,), (63,)))
    assert third.samples[112] == (SampleBatch(3.2, (1,), (4,)),)
    assert ("dcgmGetValuesSince_v2", (230, 112), 2_000_001) in hostengine.CALLS


def test_unix_socket_embedded_hostengine_and_device_selection(hostengine: Any) -> None:
    make_engine(EngineSettings("dcgm", "/run/dcgm/hostengine.sock")).read_latest([150])
    assert calls(hostengine, "dcgmConnect_v2") == [("dcgmConnect_v2", "/run/dcgm/hostengine.sock", 0, 1)]

    hostengine.reset((0, 1, 2, 3))
    hostengine.STATE.instances = [(2, 7)]
    engine = make_engine(EngineSettings("dcgm", None, parse_devices("g:1-2")))
    snapshot = engine.read_latest([150])
    assert calls(hostengine, "dcgmStartEmbedded") == [("dcgmStartEmbedded", 1)]
    assert calls(hostengine, "dcgmGroupAddEntity") == [("dcgmGroupAddEntity", 1, 1), ("dcgmGroupAddEntity", 1, 2)]
    assert snapshot.entity_ids == (1, 2) and snapshot.column(150) == (41, 42)
    assert engine.status().detail == "2 GPUs on embedded hostengine"
    engine.close()
    assert calls(hostengine, "dcgmStopEmbedded") == [("dcgmStopEmbedded",)]


def test_lost_hostengine_fails_reads_backs_off_and_reconnects(hostengine: Any) -> None:
    clock = FakeClock(0.0)
    engine = make_engine(EngineSettings("dcgm", "localhost:5555"), clock)
    assert engine.read_latest([150]).column(150) == (40, 41)
    hostengine.STATE.down = True
    with pytest.raises(EngineError, match="read failed"):
        engine.read_latest([150])
    assert engine.status().state is EngineState.FAILED and engine.errors_total == 1
    assert calls(hostengine, "dcgmDisconnect") == [("dcgmDisconnect",)]
    connects = len(calls(hostengine, "dcgmConnect_v2"))
    with pytest.raises(EngineError, match=r"next reconnect in 1\.0 s"):
        engine.read_latest([150])  # inside the backoff: no attempt at all
    assert len(calls(hostengine, "dcgmConnect_v2")) == connects
    clock.advance(1.0)
    with pytest.raises(EngineError, match="connect failed"):
        engine.read_latest([150])
    assert engine.errors_total == 2
    hostengine.STATE.down = False
    clock.advance(1.5)
    with pytest.raises(EngineError, match=r"next reconnect in 0\.5 s"):  # backoff doubled to 2 s
        engine.read_latest([150])
    clock.advance(0.5)
    assert engine.read_latest([150]).column(150) == (40, 41)
    assert engine.status().state is EngineState.OK and engine.errors_total == 2


def test_inject_creates_fake_entities_and_drives_them(hostengine: Any) -> None:
    hostengine.reset((0,))  # one real GPU: the fake ones get DCGM ids 1 and 2
    wall = FakeClock()
    engine = make_engine(EngineSettings("dcgm", "localhost:5555", inject=True), wall=wall)
    simulator = Simulator(FleetSpec(2, ("stable",), (SKUS["h100-sxm"],), "node-1", 7), engine, clock=wall)
    simulator.watch_switches()  # what a field set with a switch field asks for
    simulator.start()
    gpus, switches, links = calls(hostengine, "dcgmCreateFakeEntities")
    assert gpus == ("dcgmCreateFakeEntities", 2, (1, 1))
    assert switches == ("dcgmCreateFakeEntities", 4, (3, 3, 3, 3))  # the HGX board's NVSwitches
    assert links[1] > 0 and links[2] == (6,) * links[1]  # their up links, each under its switch:
    assert {parent for (group, _), parent in hostengine.STATE.parents.items() if group == 6} <= {
        (3, i) for i in range(100, 104)
    }
    assert calls(hostengine, "dcgmGroupAddEntity")[:2] == [("dcgmGroupAddEntity", 1, 1), ("dcgmGroupAddEntity", 1, 2)]
    assert ("dcgmGroupAddEntity", 3, 100) in calls(hostengine, "dcgmGroupAddEntity")
    injected = calls(hostengine, "dcgmInjectEntityFieldValue")
    uuid = simulator.gpus[1].identity.uuid
    ts = int(wall.now * 1e6)
    assert ("dcgmInjectEntityFieldValue", 1, 2, 54, "s", uuid, ts) in injected
    assert ("dcgmInjectEntityFieldValue", 1, 1, 4, "i", 2, ts) in injected
    assert {c[4] for c in injected} == {"i", "d", "s"}

    snapshot = engine.read_latest([54, 150, 155, 252])
    assert snapshot.entity_ids == (0, 1)  # the simulator's ids, not DCGM's
    assert snapshot.column(54) == tuple(g.identity.uuid for g in simulator.gpus)
    assert all(type(v) is float for v in snapshot.column(155)) and all(type(v) is int for v in snapshot.column(150))
    assert not calls(hostengine, "dcgmUpdateAllFields")  # fake GPUs are never polled

    engine.inject([(0, 150, None), (1, 155, None), (0, 50, None)], wall.now + 1)
    blanks = engine.read_latest([150, 155, 50])
    assert blanks.column(150)[0] is None and blanks.column(155)[1] is None and blanks.column(50)[0] is None
    kinds = {c[3]: c[4] for c in calls(hostengine, "dcgmInjectEntityFieldValue")[-3:]}
    assert kinds == {150: "i", 155: "d", 50: "s"}  # each blank injected as its field type's sentinel


def test_fields_an_older_dcgm_lacks_are_left_out_of_injection(hostengine: Any) -> None:
    """DCGM 4.6's cycle counters on a hostengine that does not define them: the rest is injected as before."""
    hostengine.reset((0,))
    hostengine.STATE.undefined_fields = set(range(1085, 1091))
    wall = FakeClock()
    engine = make_engine(EngineSettings("dcgm", "localhost:5555", inject=True), wall=wall)
    Simulator(FleetSpec(1, ("stable",), (SKUS["h100-sxm"],), "node-1", 7), engine, clock=wall).start()
    injected = {c[3] for c in calls(hostengine, "dcgmInjectEntityFieldValue")}
    assert {150, 155, 157, 164} <= injected and not injected & hostengine.STATE.undefined_fields
    assert engine.read_latest([150]).column(150)[0] is not None  # the update went through


def test_injected_gpus_come_back_after_a_hostengine_restart(hostengine: Any) -> None:
    clock, wall = FakeClock(0.0), FakeClock()
    engine = make_engine(EngineSettings("dcgm", "localhost:5555", inject=True), clock, wall)
    engine.watch_samples([230], 60.0)
    simulator = Simulator(FleetSpec(2, ("wave",), (SKUS["a100-80gb"],), "node-1", 3), engine, clock=wall)
    simulator.watch_switches()
    simulator.start()
    engine.inject([(1, 230, 79)], wall.now)
    before = engine.read_latest([54, 150, 859])
    hostengine.STATE.down = True
    wall.advance(1.0)
    simulator.step()  # kept for replay, not raised
    with pytest.raises(EngineError):
        engine.read_latest([54, 150])
    hostengine.STATE.down = False
    clock.advance(1.0)
    hostengine.CALLS.clear()
    after = engine.read_latest([54, 150, 859])
    assert [c[0] for c in hostengine.CALLS[:4]] == [
        "dcgmConnect_v2", "dcgmGetAllDevices", "dcgmCreateFakeEntities", "dcgmGroupCreate",
    ]  # fmt: skip
    assert after.column(54) == before.column(54)  # identities replayed into the new fake entities
    assert [c[2][0] for c in calls(hostengine, "dcgmCreateFakeEntities")] == [1, 3, 6]  # GPUs, switches, links
    limits = before.groups["switch"].column(859)
    assert None not in limits and after.groups["switch"].column(859) == limits  # switch limits replayed
    replayed = {c[3] for c in calls(hostengine, "dcgmInjectEntityFieldValue")}
    assert 54 in replayed and 230 not in replayed  # state, not events: the XID is not counted twice
    assert after.column(150) != (None, None)


def test_a_dropped_connection_reuses_the_fake_entities_in_a_new_group(hostengine: Any) -> None:
    clock, wall = FakeClock(0.0), FakeClock()
    engine = make_engine(EngineSettings("dcgm", "localhost:5555", inject=True), clock, wall)
    simulator = Simulator(FleetSpec(8, ("wave",), (SKUS["h100-sxm"],), "node-1", 3), engine, clock=wall)
    simulator.watch_switches()
    simulator.start()
    before = engine.read_latest([54, 859, 870])
    hostengine.STATE.drop_once = True
    with pytest.raises(EngineError):
        engine.read_latest([54, 859, 870])
    clock.advance(1.0)
    hostengine.CALLS.clear()
    after = engine.read_latest([54, 859, 870])
    assert not calls(hostengine, "dcgmCreateFakeEntities")  # the hostengine still holds them
    added = {c[1] for c in calls(hostengine, "dcgmGroupAddEntity")}
    assert added == {1, 3, 6}  # GPUs, switches and links all in the new connection's group
    assert after.column(54) == before.column(54)
    assert after.groups["link"].column(870) == before.groups["link"].column(870) and None not in after.groups[
        "link"
    ].column(870)


def test_missing_bindings_and_library_are_one_line_errors(tmp_path: Path, hostengine: Any) -> None:
    with pytest.raises(EngineUnavailable) as missing:
        load_dcgm({"DCGM_PYTHON_BINDINGS": str(tmp_path)}, inject=False)
    message = str(missing.value)
    assert str(tmp_path) in message and "/usr/local/dcgm/bindings/python3" in message and "\n" not in message
    (tmp_path / "dcgm_agent.py").write_text("")
    with pytest.raises(EngineUnavailable, match="testing/python3"):
        load_dcgm({"DCGM_PYTHON_BINDINGS": str(tmp_path)}, inject=True)
    hostengine.STATE.library_missing = True
    with pytest.raises(EngineUnavailable, match="libdcgm cannot be loaded"):
        make_engine(EngineSettings("dcgm"))


def test_device_option_parses_as_dcgm_exporter() -> None:
    assert parse_devices("f").mode == "f"
    assert parse_devices("g").ids is None
    assert parse_devices("g:0,2-4").ids == (0, 2, 3, 4)
    assert parse_devices("i:1").wants_instance(1) and not parse_devices("i:1").wants_gpu(1)
    for bad in ("f:1", "x", "g:1:2", "g:a", "g:1-2-3"):
        with pytest.raises(ValueError):
            parse_devices(bad)


def _every_field_csv(path: Path) -> Path:
    rows = [f'{spec.name}, {"gauge" if spec.is_computed else spec.kind.value}, "{spec.help}"' for spec in CATALOG]
    path.write_text("\n".join(rows) + "\n")
    return path


def node_pipeline(collectors: Any) -> TelemetryPipeline:
    """The pipeline both render comparisons use: host ``node-1``, no engine read counter."""
    return TelemetryPipeline(
        collectors, LabelScheme("node-1", collectors.labels), default_resource("t", "node-1"), CycleStats(), lambda: 0
    )


def _render_simulated(engine: Any, clock: FakeClock, collectors: Any) -> list[str]:
    simulator = Simulator(
        FleetSpec(3, ("faulty", "chaos", "degrading"), (SKUS["h100-sxm"],), "node-1", 11), engine, clock=clock
    )
    pipeline = node_pipeline(collectors)
    pipeline.watch(engine, 3600.0)
    if collectors.reads_switches:  # as build_host asks
        simulator.watch_switches()
    simulator.start()
    for _ in range(40):
        clock.advance(5.0)
        simulator.step()
    body, _ = PrometheusTextRenderer().render(pipeline.collect(pipeline.read(engine)))
    return [line for line in body.decode().splitlines() if line.startswith("DCGM_")]


def test_injected_gpus_export_exactly_what_the_embedded_engine_exports(hostengine: Any, tmp_path: Path) -> None:
    """Every field's value type and blank survives the round trip through DCGM's structs, and every XID and
    clock-event sample reaches the window counts (DCGM_EXP_*_COUNT)."""
    hostengine.reset(())
    collectors = load_collectors(_every_field_csv(tmp_path / "all.csv"))
    embedded_clock, dcgm_clock = FakeClock(), FakeClock()
    embedded = _render_simulated(EmbeddedEngine(embedded_clock), embedded_clock, collectors)
    injected = make_engine(EngineSettings("dcgm", "localhost:5555", inject=True), wall=dcgm_clock)
    through_dcgm = _render_simulated(injected, dcgm_clock, collectors)
    assert len(embedded) > 100
    assert any(line.startswith("DCGM_EXP_XID_ERRORS_COUNT{") and 'xid="' in line for line in embedded)
    assert any(line.startswith("DCGM_EXP_CLOCK_EVENTS_COUNT{") and "clock_event=" in line for line in embedded)
    assert any(line.startswith("DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT{") for line in embedded)
    assert any(line.startswith("DCGM_FI_DEV_NVSWITCH_LINK_STATUS{") for line in embedded)
    assert through_dcgm == embedded


def test_bindings_without_a_needed_call_are_too_old(hostengine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys.modules["dcgm_agent"], "dcgmGetValuesSince_v2")
    with pytest.raises(EngineUnavailable, match=r"too old \(no dcgm_agent\.dcgmGetValuesSince_v2\)"):
        load_dcgm(ENV, inject=False)
