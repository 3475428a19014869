"""The real exporter process with a real-GPU engine whose library is faked (tests/fakes: DCGM and NVML need
an NVIDIA GPU): a hostengine that goes away is visible on /health and survived; missing libraries exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ExporterProcess, http_get, run_cli
from tests.polling import wait_until

FAKES = Path(__file__).parent / "fakes"
CYCLE_MS = 300


def _wait_health(exporter: ExporterProcess, code: int, timeout: float = 60.0, served: bool = True) -> dict[str, object]:
    def answered() -> dict[str, object] | None:
        status, body = exporter.health()
        if served:
            _assert_metrics_served(exporter)
        return body if status == code else None

    return wait_until(answered, timeout, f"/health to answer {code}", interval=0.05)


def _assert_metrics_served(exporter: ExporterProcess) -> None:
    status, body, headers = exporter.get("/metrics")
    assert status == 200 and b"DCGM_FI_DEV_GPU_TEMP{" in body, body[:200]
    assert int(headers["Age"]) >= 0


def test_hostengine_gone_for_three_cycles_then_back(
    exporter_factory: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    control = tmp_path / "hostengine"
    control.write_text("up")
    env = {"DCGM_PYTHON_BINDINGS": str(FAKES / "dcgm"), "FAKE_DCGM_CONTROL": str(control), "FAKE_DCGM_GPUS": "2"}
    exporter = exporter_factory("--engine", "dcgm", "-r", "localhost:5555", "-c", str(CYCLE_MS), env=env)
    healthy = _wait_health(exporter, 200)
    engine: Any = healthy["engine"]
    assert (engine["kind"], engine["state"], engine["detail"]) == ("dcgm", "ok", "2 GPUs on localhost:5555")
    before = exporter.get("/metrics")[1]
    assert b'DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-fake-1"' in before

    control.write_text("down")
    failed = _wait_health(exporter, 503, timeout=10 * CYCLE_MS / 1000)  # within a cycle or so, even on a busy box
    assert failed["status"] == "engine_failed" and "ConnectionNotValid" in str(failed["engine"])
    errors_at_failure = int(failed["cycle_errors_total"])  # type: ignore[call-overload]

    def three_failed_cycles() -> bool:
        if int(exporter.health()[1]["cycle_errors_total"]) >= errors_at_failure + 3:
            return True
        _assert_metrics_served(exporter)  # the last good exposition, ageing, never an empty page
        assert exporter.get("/health")[0] == 503
        return False

    wait_until(three_failed_cycles, 60, "three failed cycles", interval=0.05)

    control.write_text("up")
    recovered = _wait_health(exporter, 200, timeout=60)  # the backoff is at most a few seconds by now
    assert recovered["status"] == "healthy" and recovered["engine"]["state"] == "ok"  # type: ignore[index]
    body = exporter.get("/metrics")[1].decode()
    errors = next(line for line in body.splitlines() if line.startswith("otel_fakegpu_engine_errors_total "))
    assert int(float(errors.split()[1])) >= 1
    assert "reconnecting in" in exporter.stderr_text() and "Traceback" not in exporter.stderr_text()


def test_hostengine_absent_at_start_then_arriving(
    exporter_factory: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    control = tmp_path / "hostengine"
    control.write_text("down")
    env = {"DCGM_PYTHON_BINDINGS": str(FAKES / "dcgm"), "FAKE_DCGM_CONTROL": str(control)}
    # The port opens after a first (failed) cycle; /health answers then, whatever its status.
    exporter = exporter_factory(
        "--engine", "dcgm", "-r", "localhost:5555", "-c", str(CYCLE_MS), env=env, ready=lambda e: e.health()[0] > 0
    )
    try:
        status, body = exporter.health()
        assert status == 503 and body["status"] == "engine_failed"
        assert http_get(exporter.base + "/metrics")[0] == 503  # nothing good to serve yet
        control.write_text("up")
        _wait_health(exporter, 200, served=False)
        _assert_metrics_served(exporter)
    finally:
        assert exporter.stop() == 0


def test_injected_gpus_served_from_the_hostengine(exporter_factory: Callable[..., ExporterProcess]) -> None:
    env = {"DCGM_PYTHON_BINDINGS": str(FAKES / "dcgm"), "FAKE_DCGM_GPUS": "1"}
    exporter = exporter_factory("--engine", "dcgm", "--inject", "--num-gpus", "3", "--seed", "5", env=env)
    body = exporter.get("/metrics")[1].decode()
    temps = [line for line in body.splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP{")]
    assert [line.split('gpu="')[1].split('"')[0] for line in temps] == ["0", "1", "2"]
    assert exporter.health()[1]["engine"]["detail"] == "3 fake (injected) GPUs on embedded hostengine"


def test_nvml_engine_serves_real_gpu_readings(exporter_factory: Callable[..., ExporterProcess]) -> None:
    exporter = exporter_factory("--engine", "nvml", env={"PYTHONPATH": str(FAKES / "nvml")})
    body = exporter.get("/metrics")[1].decode()
    power = [line for line in body.splitlines() if line.startswith("DCGM_FI_DEV_POWER_USAGE{")]
    assert len(power) == 2 and power[0].endswith(" 123.456000") and 'UUID="GPU-nvml-0"' in power[0]
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE{" not in body  # profiling fields are blank with NVML: no series
    assert exporter.health()[1]["engine"]["detail"] == "2 GPUs through NVML"


@pytest.mark.slow
def test_missing_libraries_and_bad_engine_options_exit_2(tmp_path: Path) -> None:
    cases = [
        (["--engine", "dcgm"], {"DCGM_PYTHON_BINDINGS": str(tmp_path)}, "pydcgm"),
        (["--engine", "nvml"], {}, "nvidia-ml-py"),
        (["--engine", "rocm"], {}, "--engine='rocm'"),
        (["--inject"], {}, "--inject: injection needs --engine dcgm"),
        (["--engine", "dcgm", "--inject", "--num-gpus", "33"], {}, "at most 32"),
        (["--devices", "g:1:2"], {}, "--devices='g:1:2'"),
        (["--engine", "nvml", "--devices", "i:0"], {}, "MIG GPU instances"),
        (["--engine", "dcgm", "--inject", "--devices", "i"], {}, "MIG GPU instances on their own needs"),
        (["--engine", "dcgm", "-r", "nohost"], {}, "HOST:PORT or a Unix socket"),
    ]
    for args, env, expected in cases:
        result = run_cli("-a", "127.0.0.1:0", *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], (args, result.stderr)
        assert "Traceback" not in result.stderr
    nvml_env = {"PYTHONPATH": str(FAKES / "nvml"), "FAKE_NVML_NO_LIBRARY": "1"}
    result = run_cli("-a", "127.0.0.1:0", "--engine", "nvml", env=nvml_env)
    assert result.returncode == 2 and "libnvidia-ml.so" in result.stderr, result.stderr
