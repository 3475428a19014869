"""Backfill: a day of a scenario at 30 s steps, loaded by the real promtool into TSDB blocks, queried by a
real Prometheus, which finds the scripted XID at its timestamp."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_fakegpu.cli import main
from tests.conftest import run_cli
from tests.prometheus_server import PROMTOOL, PrometheusServer

DAY = 86400
STEP = 30
XID_AT = 5 * 3600 + 75  # 5h1m15s into the day: between two steps
SCENARIO = f"""
seed: 5
gpus:
  - {{count: 4, model: a100-80gb, profile: stable}}
events:
  - {{at: {XID_AT}s, gpu: 3, xid: 79}}
  - {{at: 6h, gpu: 1, ecc: {{dbe: 2}}}}
"""


@pytest.mark.slow
def test_backfilled_day_loads_into_prometheus_with_the_xid_at_its_time(
    tmp_path: Path, prometheus: Callable[..., PrometheusServer]
) -> None:
    assert PROMTOOL.exists(), f"{PROMTOOL} missing: run `make peers` (tools/install-peers.sh)"
    scenario = tmp_path / "day.yaml"
    scenario.write_text(SCENARIO)
    start = (int(time.time()) - DAY - 3600) // 3600 * 3600  # whole hours, inside the default retention
    out = tmp_path / "day.om"
    result = run_cli(
        "backfill", "--scenario", str(scenario), "--start", str(start), "--end", str(start + DAY),
        "--step", f"{STEP}s", "--out", str(out), env={"NODE_NAME": "backfill-host"}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.endswith("# EOF\n") and text.count("# TYPE DCGM_FI_DEV_XID_ERRORS gauge") == 1
    assert "otel_fakegpu_" not in text

    blocks = tmp_path / "tsdb"
    created = subprocess.run(
        [str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", str(out), str(blocks)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr[-2000:]

    server = prometheus(storage=blocks)
    server.wait_ready()
    xid_time = start + -(-XID_AT // STEP) * STEP  # the first step at or after the event
    before = server.query('DCGM_FI_DEV_XID_ERRORS{gpu="3"}', at=xid_time - STEP)
    at = server.query('DCGM_FI_DEV_XID_ERRORS{gpu="3"}', at=xid_time)
    assert [r["value"][1] for r in before] == ["0"]
    assert [r["value"][1] for r in at] == ["79"]
    series = at[0]["metric"]
    assert series["Hostname"] == "backfill-host" and series["modelName"] == "NVIDIA A100-SXM4-80GB"
    stamp = server.query('timestamp(DCGM_FI_DEV_XID_ERRORS{gpu="3"})', at=xid_time)
    assert float(stamp[0]["value"][1]) == xid_time  # a sample at that very second
    changes = server.query('changes(DCGM_FI_DEV_XID_ERRORS{gpu="3"}[1d])', at=start + DAY)
    assert [r["value"][1] for r in changes] == ["1"]
    dbe = server.query('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="1"}', at=start + DAY)
    count = server.query("count(DCGM_FI_DEV_GPU_TEMP)", at=start + 12 * 3600)
    assert [r["value"][1] for r in count] == ["4"]
    assert dbe == [] or dbe[0]["value"][1] == "2"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start", "yesterday"], "--start='yesterday'"),
        (["--step", "0s"], "--step"),
        (["--start", "now", "--end", "-1d"], "before --start"),
        (["--start", "0", "--step", "1ms"], "at most"),
    ],
)
def test_bad_backfill_arguments_are_one_line_exit_2(
    tmp_path: Path, args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("seed: 1\n")
    code = main(["backfill", "--scenario", str(scenario), "--out", str(tmp_path / "o.om"), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err


def test_bad_scenario_in_backfill_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("seed: 1\nevents:\n  - {at: 1m, gpu: 9, xid: 79}\n")
    code = main(["backfill", "--scenario", str(scenario), "--out", str(tmp_path / "o.om")])
    err = capsys.readouterr().err
    assert code == 2 and f"{scenario}:3: " in err and err.count("\n") == 1, err
