"""Files swapped for a FIFO or a device: at start (``--check-config`` and a real start) every file the exporter and
backfill read is refused at once with one line and exit 2; at reload a FIFO web config, scenario or collectors file
is one failed reload while serving goes on, and the next good SIGHUP is taken."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess, run_cli
from tests.pages import reloads
from tests.receivers import wait_for

Factory = Callable[..., ExporterProcess]
SCENARIO = "gpus:\n  - {count: 2, model: h100-sxm, profile: static}\n"
COLLECTORS = "DCGM_FI_DEV_GPU_TEMP, gauge, temp.\n"
WEB = "http_server_config:\n  headers:\n    X-Test: one\n"
EXIT_LIMIT_S = 20  # before the reader these never returned


def _fifo(path: Path) -> Path:
    if path.exists():
        path.unlink()
    os.mkfifo(path)
    return path


def _dev_zero(path: Path) -> Path:
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to("/dev/zero")
    return path


START_FLAGS = {
    "collectors": ["-f"],
    "web-config": ["--web-config-file"],
    "scenario": ["--scenario"],
    "backfill-scenario": ["backfill", "--out", "-", "--scenario"],
    "backfill-collectors": ["backfill", "--out", "-", "--scenario", "SCENARIO", "-f"],
}


@pytest.mark.parametrize("make", [_fifo, _dev_zero], ids=["fifo", "dev-zero"])
@pytest.mark.parametrize("target", sorted(START_FLAGS))
def test_a_fifo_or_device_at_start_is_one_line_and_exit_2(
    tmp_path: Path, target: str, make: Callable[[Path], Path]
) -> None:
    scenario = tmp_path / "good.yaml"
    scenario.write_text(SCENARIO)
    bad = make(tmp_path / "bad")
    flags = [str(scenario) if flag == "SCENARIO" else flag for flag in START_FLAGS[target]]
    check = [] if flags[0] == "backfill" else ["--check-config"]
    result = run_cli(*check, *flags, str(bad), timeout=EXIT_LIMIT_S)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "not a regular file" in lines[0], lines


@pytest.mark.parametrize("swapped", ["web", "scenario", "collectors"])
def test_a_fifo_at_reload_fails_that_reload_and_serving_goes_on(
    tmp_path: Path, exporter_factory: Factory, swapped: str
) -> None:
    files = {"web": tmp_path / "web.yml", "scenario": tmp_path / "s.yaml", "collectors": tmp_path / "c.csv"}
    good = {"web": WEB, "scenario": SCENARIO, "collectors": COLLECTORS}
    for name, path in files.items():
        path.write_text(good[name])
    exporter = exporter_factory(
        "--web-config-file", str(files["web"]), "--scenario", str(files["scenario"]), "-f", str(files["collectors"]),
        "-c", "200",
    )  # fmt: skip
    _fifo(files[swapped])
    exporter.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # serving never stops, whatever the reload meets
        status = exporter.get("/metrics", timeout=3)[0]
        assert status == 200
        if swapped == "web" and "reload of the web config failed" in exporter.stderr_text():
            break
        if swapped != "web" and reloads(exporter.get("/metrics")[1].decode()).get("failed") == 1:
            break
        time.sleep(0.1)  # the poll's interval: each round checks that serving never stopped
    else:
        raise AssertionError(f"the FIFO reload was not reported: {exporter.stderr_text()[-2000:]}")
    assert exporter.get("/health", timeout=3)[0] == 200
    files[swapped].unlink()
    files[swapped].write_text(good[swapped].replace("one", "two"))
    exporter.proc.send_signal(signal.SIGHUP)  # a later good SIGHUP is taken, not ignored
    wait_for(lambda: reloads(exporter.get("/metrics")[1].decode()).get("ok") == 1)
    if swapped == "web":
        assert exporter.get("/metrics")[2].get("X-Test") == "two"
    assert "Traceback" not in exporter.stderr_text()
