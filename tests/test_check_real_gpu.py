"""tools/check-real-gpu.sh, run here against a fake nvidia-smi and the fake pynvml (tests/fakes; the real
ones need an NVIDIA GPU): the table, the tolerances and the exit codes. No real GPU has been checked here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

FAKES = ROOT / "tests" / "fakes"


def run_check(
    tmp_path: Path, extra: dict[str, str] | None = None, with_smi: bool = True
) -> subprocess.CompletedProcess[str]:
    path = f"{FAKES / 'bin'}:/usr/bin:/bin" if with_smi else "/usr/bin:/bin"
    env = {"PATH": path, "PYTHON": sys.executable, "PYTHONPATH": str(FAKES / "nvml"),
           "DCGM_PYTHON_BINDINGS": str(tmp_path), **(extra or {})}  # fmt: skip
    return subprocess.run(
        ["bash", str(ROOT / "tools" / "check-real-gpu.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_agreeing_readings_print_a_dated_table_and_exit_0(tmp_path: Path) -> None:
    result = run_check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("### 20") and "UTC on" in out
    assert "- dcgm engine not checked: --engine dcgm: pydcgm" in out
    assert "GPU 0: NVIDIA H100 80GB HBM3, driver 550.54.15" in out and "GPU 1:" in out
    assert "| DCGM_FI_DEV_GPU_TEMP (`temperature.gpu`) | 40 | 40 | ±3 °C | ok |" in out
    assert "| DCGM_FI_DEV_POWER_USAGE (`power.draw`) | 123.45 | 123.456 | ±max(15 W, 10%) | ok |" in out
    assert "| DCGM_FI_DEV_FAN_SPEED (`fan.speed`) | [Not Supported] | blank | ±5 points | ok (both blank) |" in out
    assert "| DCGM_FI_DEV_ENC_UTIL (`utilization.encoder`) | 5 | 5 | ±10 points | ok |" in out
    assert (
        "| DCGM_FI_DEV_DEC_UTIL (`utilization.decoder`) | not in this nvidia-smi | 6 | ±10 points | not compared |"
        in out
    )
    assert "| DCGM_FI_DEV_CLOCK_THROTTLE_REASONS (`clocks_event_reasons.active`) | 0x0000000000000004 | 4 |" in out
    assert "MISMATCH" not in out


def test_a_reading_out_of_tolerance_is_a_mismatch_and_exit_1(tmp_path: Path) -> None:
    result = run_check(tmp_path, {"FAKE_SMI_TEMP_OFFSET": "10"})
    assert result.returncode == 1
    assert "| DCGM_FI_DEV_GPU_TEMP (`temperature.gpu`) | 50 | 40 | ±3 °C | MISMATCH |" in result.stdout


def test_no_nvidia_smi_is_exit_2(tmp_path: Path) -> None:
    result = run_check(tmp_path, with_smi=False)
    assert result.returncode == 2 and "nvidia-smi not found" in result.stderr
