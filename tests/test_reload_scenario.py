"""SIGHUP re-reads the scenario file: a good one replaces the scripted events and workloads (its times count from
the reload), a bad one is one logged line and the running scenario stays."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.engine import EmbeddedEngine
from otel_fakegpu.sim import SKUS, FleetSpec, ScenarioClock, Simulator, Workload, WorkloadError
from tests.conftest import ExporterProcess, FakeClock
from tests.pages import reloads
from tests.polling import wait_until

Factory = Callable[..., ExporterProcess]
COLLECTORS = "DCGM_FI_DEV_XID_ERRORS, gauge, last xid.\nDCGM_FI_DEV_GPU_UTIL, gauge, util.\n"
QUIET = "gpus:\n  - {count: 2, model: h100-sxm, profile: static}\nevents:\n  - {at: 10h, gpu: 0, xid: 13}\n"
XID_NOW = "gpus:\n  - {count: 2, model: h100-sxm, profile: static}\nevents:\n  - {at: 0s, gpu: 1, xid: 48}\n"


def _values(body: str, name: str) -> dict[str, float]:
    return {
        s.labels["gpu"]: s.value
        for f in text_string_to_metric_families(body)
        for s in f.samples
        if s.name == name and "gpu" in s.labels
    }


def _start(tmp_path: Path, exporter_factory: Factory) -> tuple[ExporterProcess, Path]:
    scenario, collectors = tmp_path / "scenario.yaml", tmp_path / "collectors.csv"
    scenario.write_text(QUIET)
    collectors.write_text(COLLECTORS)
    args = ("--scenario", str(scenario), "-f", str(collectors), "-c", "200", "--update-interval", "0.2")
    return exporter_factory(*args), scenario


def _metrics(exporter: ExporterProcess) -> str:
    return exporter.get("/metrics")[1].decode()


def test_sighup_with_a_changed_scenario_plays_its_events_from_the_reload(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    exporter, scenario = _start(tmp_path, exporter_factory)
    assert _values(_metrics(exporter), "DCGM_FI_DEV_XID_ERRORS") == {"0": 0, "1": 0}
    scenario.write_text(XID_NOW)
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _values(_metrics(exporter), "DCGM_FI_DEV_XID_ERRORS").get("1") == 48, timeout=30)
    assert reloads(_metrics(exporter)) == {"ok": 1, "failed": 0}
    assert "scenario" in exporter.stderr_text() and "reloaded" in exporter.stderr_text()


def test_sighup_with_a_broken_scenario_keeps_serving_and_logs_one_line(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    exporter, scenario = _start(tmp_path, exporter_factory)
    scenario.write_text(QUIET + "  - {at: 1m, gpu: 7, xid: 48}\n")  # line 5: GPU 7 of 2
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: reloads(_metrics(exporter)).get("failed") == 1, timeout=30)
    # The worker publishes the count before the serving process logs the error it sends back: wait for the line.
    wait_until(lambda: "reload failed" in exporter.stderr_text(), timeout=30)
    assert exporter.proc.poll() is None
    errors = [line for line in exporter.stderr_text().splitlines() if "reload failed" in line]
    assert len(errors) == 1 and f"{scenario}:5:" in errors[0], errors
    assert "Traceback" not in exporter.stderr_text()
    assert _values(_metrics(exporter), "DCGM_FI_DEV_GPU_UTIL").keys() == {"0", "1"}
    scenario.write_text(QUIET.replace("gpus:\n  - {count: 2", "gpus:\n  - {count: 3"))  # a new fleet: refused
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: reloads(_metrics(exporter)).get("failed") == 2, timeout=30)
    wait_until(lambda: "a new fleet needs a restart" in exporter.stderr_text(), timeout=30)
    scenario.write_text(XID_NOW)  # fixed: the next SIGHUP takes it
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _values(_metrics(exporter), "DCGM_FI_DEV_XID_ERRORS").get("1") == 48, timeout=30)
    assert reloads(_metrics(exporter)) == {"ok": 1, "failed": 2}


def test_a_reloaded_script_replaces_the_files_workloads_and_keeps_the_control_apis() -> None:
    engine = EmbeddedEngine(FakeClock())
    scripted = Workload("old", "ml", "train", gpus=(0,), shape="training")
    simulator = Simulator(
        FleetSpec(3, ("static",), (SKUS["h100-sxm"],), "node-1", 1),
        engine,
        scenario_clock=ScenarioClock(FakeClock(), 1.0, 10.0),
        workloads=(scripted,),
    )
    simulator.start()
    for _ in range(3):
        simulator.step()
    simulator.add_workload(Workload("manual", "ml", "debug", gpus=(2,), start_s=simulator.now_s()))
    new = Workload("new", "ml", "serve", gpus=(1,), shape="inference", start_s=5.0, stop_s=60.0)
    simulator.replace_script((), (new,), 2.0)
    placed = {w.key: w for w in simulator.workloads()}
    assert set(placed) == {"ml/manual/debug", "ml/new/serve"}
    assert (placed["ml/new/serve"].start_s, placed["ml/new/serve"].stop_s) == (35.0, 90.0)  # counted from t=30
    assert simulator.clock.time_scale == 2.0
    clash = Workload("manual", "ml", "debug", gpus=(0,))  # the control API's key: refused, nothing changes
    with pytest.raises(WorkloadError, match="control API"):
        simulator.replace_script((), (clash,), 1.0)
    with pytest.raises(WorkloadError, match="GPU 7"):
        simulator.replace_script((), (Workload("far", "ml", "x", gpus=(7,)),), 1.0)
    assert set(w.key for w in simulator.workloads()) == {"ml/manual/debug", "ml/new/serve"}
    assert simulator.clock.time_scale == 2.0


def test_a_fleet_logs_a_broken_scenario_once(tmp_path: Path, exporter_factory: Factory) -> None:
    scenario, collectors = tmp_path / "scenario.yaml", tmp_path / "collectors.csv"
    scenario.write_text(QUIET)
    collectors.write_text(COLLECTORS)
    exporter = exporter_factory(
        "--scenario",
        str(scenario),
        "-f",
        str(collectors),
        "-c",
        "200",
        "--hosts",
        "3",
        "--workers",
        "2",
        env={"NODE_NAME": "node"},
    )
    scenario.write_text("events: [")
    exporter.proc.send_signal(signal.SIGHUP)

    def failed(host: str) -> float | None:
        return reloads(exporter.get(f"/hosts/{host}/metrics")[1].decode()).get("failed")

    wait_until(lambda: [failed(f"node-{i}") for i in range(3)] == [1, 1, 1], timeout=30)  # each host counts its own
    wait_until(lambda: "reload failed" in exporter.stderr_text(), timeout=30)  # logged after the counts publish
    assert exporter.proc.poll() is None
    errors = [line for line in exporter.stderr_text().splitlines() if "reload failed" in line]
    assert len(errors) == 1 and f"{scenario}:" in errors[0], errors
