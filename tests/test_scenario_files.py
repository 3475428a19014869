"""Scenario files: the shipped examples load and play; every mistake is one FILE:LINE line and exit 2."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_fakegpu.sim import ScenarioError, load_scenario
from otel_fakegpu.sim.scenario_file import MAX_SCENARIO_BYTES as MAX_BYTES
from otel_fakegpu.sim.scenario_file import parse_scenario
from tests.conftest import ROOT, ExporterProcess, build_stack, run_cli
from tests.polling import wait_until

EXAMPLES = sorted((ROOT / "scenarios").glob("*.yaml"))


def _play(path: Path, updates: int, step_s: float = 60.0) -> list[str]:
    scenario = load_scenario(path, 4)
    stack = build_stack(4, ("static",), scenario=scenario, step_s=step_s)
    bodies = [stack.cycle().decode()]
    for _ in range(updates):
        stack.clock.advance(step_s)
        stack.simulator.step()
        bodies.append(stack.cycle().decode())
    return bodies


def test_every_example_is_shipped_and_plays() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"training-job", "inference-fleet", "xid-storm", "thermal-runaway", "mig-inference"} <= names
    for path in EXAMPLES:
        bodies = _play(path, 30)
        assert all("DCGM_FI_DEV_GPU_TEMP{" in body for body in bodies), path


def test_xid_storm_example_loses_gpu_5_and_gets_it_back() -> None:
    bodies = _play(ROOT / "scenarios" / "xid-storm.yaml", 40, step_s=10.0)  # time_scale 6: a minute per update
    temp5 = [re.search(r'^DCGM_FI_DEV_GPU_TEMP\{gpu="5",', body, re.M) is not None for body in bodies]
    assert temp5[11] and not temp5[12] and not temp5[29] and temp5[30], temp5
    assert re.search(r'^DCGM_FI_DEV_XID_ERRORS\{gpu="5",.*\} 13$', bodies[2], re.M)


def test_mig_example_exports_instances() -> None:
    body = _play(ROOT / "scenarios" / "mig-inference.yaml", 2)[-1]
    assert body.count('GPU_I_PROFILE="1g.10gb"') >= 7 and 'GPU_I_PROFILE="3g.40gb"' in body


def test_thermal_example_heats_and_throttles() -> None:
    bodies = _play(ROOT / "scenarios" / "thermal-runaway.yaml", 9, step_s=60.0)  # 4 scenario minutes per update
    temps = [int(re.search(r'^DCGM_FI_DEV_GPU_TEMP\{gpu="0",.*\} (\d+)$', b, re.M).group(1)) for b in bodies]  # type: ignore[union-attr]
    clocks = [int(re.search(r'^DCGM_FI_DEV_SM_CLOCK\{gpu="0",.*\} (\d+)$', b, re.M).group(1)) for b in bodies]  # type: ignore[union-attr]
    assert temps[-1] > temps[1] + 10 and temps[-1] > 87, temps  # past the H100's slowdown temperature
    assert clocks[-1] < clocks[1], clocks  # thermal slowdown


BAD = [
    ("colour: red\n", 1, "unknown key 'colour'"),
    ("seed: 1\ntime_scale: fast\n", 2, "time_scale"),
    ("gpus:\n  - {count: 2, model: h100-sxm}\nevents:\n  - {at: 1m, gpu: 2, xid: 79}\n", 4, "from 0 to 1"),
    ("gpus:\n  - {count: 2,\n     model: z100}\n", 3, "unknown GPU model 'z100'"),
    ("events:\n  - at: 1m\n    gpu: 0\n    meteor: 1\n", 4, "unknown event key 'meteor'"),
    ("events:\n  - {at: 1m, gpu: 0, fault: explode}\n", 2, "fall_off_bus"),
    ("events:\n  - {at: soon, gpu: 0, xid: 79}\n", 2, "not a duration"),
    ("events:\n  - {at: 1m, gpu: 0, xid: 79, ecc: {dbe: 1}}\n", 2, "exactly one"),
    ("events:\n  - {at: 1m, gpu: 0, ecc: {tbe: 1}}\n", 2, "unknown key 'tbe'"),
    ("events:\n  - {gpu: 0, xid: 79}\n", 2, "needs at, gpu"),
    ("seed: 1\nseed: 2\n", 2, "duplicate key 'seed'"),
    ("gpus: &g\n  - {count: 1}\nhosts: *g\n", 3, "aliases"),
    ("seed: [1\n", 2, "invalid YAML"),
    ("gpus:\n  - {count: 1, model: a100-80gb, mig: 9g.99gb}\n", 2, "9g.99gb"),
    ("gpus:\n  - {count: 1, model: a100-80gb, mig: 3g.40gb*3}\n", 2, "does not fit"),
    ("gpus:\n  - {count: 1, model: l4, mig: 1g.10gb}\n", 2, "does not support MIG"),
    ("workloads:\n  - {pod: a, gpus: [0], shape: sprint}\n", 2, "unknown shape 'sprint'"),
    ("workloads:\n  - {pod: a, gpus: [0], start: 2h, stop: 1h}\n", 2, "after start"),
    ("workloads:\n  - {pod: a, instances: [{gpu: 0, instance: 7}]}\n", 2, "no MIG instance 7"),
    ("workloads:\n  - {pod: a, gpus: [0]}\n  - {pod: a, gpus: [1]}\n", 1, "share namespace/pod/container"),
    ("gpus:\n  - {count: 0}\n", 2, "count"),
    ("seed: true\n", 1, "seed"),
    ("- 1\n- 2\n", 1, "expected a mapping"),
    ("events:\n  - {at: 1m, gpu: 0, load: 1.5}\n", 2, "load"),
    ("events:\n  - {at: 1m, gpu: 0, xid: !!python/object:os.system {}}\n", 2, "tags such as"),
    ("events:\n  - {at: 1m, gpu: 0, xid: !!python/name:os.system 1}\n", 2, "bad value"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD)
def test_bad_scenarios_name_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.yaml", 4)
    message = str(caught.value)
    assert message.startswith(f"bad.yaml:{line}: ") and reason in message and "\n" not in message, message


def test_unreadable_oversized_and_binary_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_BYTES + 1))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"seed: \xff\xfe\n")
    for path, reason in ((big, "larger than"), (binary, "not UTF-8"), (tmp_path / "missing.yaml", "cannot read")):
        with pytest.raises(ScenarioError, match=re.escape(f"{path}:1: ") + ".*" + reason):
            load_scenario(path, 4)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ScenarioError, match=r"deep\.yaml:1: nested too deeply"):
        parse_scenario("hosts: " + "[" * 50_000 + "]" * 50_000 + "\n", "deep.yaml", 4)


def test_empty_scenario_and_hosts_are_accepted() -> None:
    assert parse_scenario("", "e.yaml", 4).events == ()
    assert parse_scenario("hosts:\n  - {name: node-1}\n", "h.yaml", 4).hosts == ({"name": "node-1"},)


@pytest.mark.slow
def test_cli_rejects_a_bad_scenario_with_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nevents:\n  - {at: 1m, gpu: 7, xid: 79}\n")
    for args, env in (((f"--scenario={bad}",), {}), ((), {"OTEL_FAKEGPU_SCENARIO": str(bad)})):
        result = run_cli(*args, env=env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and f"{bad}:3: " in result.stderr, result.stderr


def test_the_exporter_plays_a_scenario(tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]) -> None:
    scenario = tmp_path / "live.yaml"
    scenario.write_text(
        "seed: 4\ntime_scale: 60\ngpus:\n  - {count: 3, model: h200}\n"
        "events:\n  - {at: 1m, gpu: 1, xid: 94}\n  - {at: 30m, gpu: 2, fault: fall_off_bus}\n"
    )
    exporter = exporter_factory("--scenario", str(scenario), "-c", "200", "--update-interval", "1")

    def xid_shown() -> str | None:
        body = exporter.get("/metrics")[1].decode()
        return body if re.search(r'^DCGM_FI_DEV_XID_ERRORS\{gpu="1",.*\} 94$', body, re.M) else None

    body = wait_until(xid_shown, 30, "the scenario's XID 94 on GPU 1 (at 1 min, 1 s at time scale 60)")
    assert 'modelName="NVIDIA H200"' in body and 'gpu="2"' in body
