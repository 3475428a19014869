"""Backfill: a day of a scenario at 30 s steps, loaded by the real promtool into TSDB blocks, queried by a
real Prometheus, which finds the scripted XID at its timestamp."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from otel_fakegpu.cli import main
from tests.conftest import PEERS, free_port, http_get, run_cli

PROMETHEUS = PEERS / "prometheus" / "usr" / "bin" / "prometheus"
PROMTOOL = PEERS / "prometheus" / "usr" / "bin" / "promtool"
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


def _query(base: str, promql: str, at: float) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(promql)}&time={at}"
    status, body, _ = http_get(url)
    assert status == 200, body
    result = json.loads(body)["data"]["result"]
    assert isinstance(result, list)
    return result


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if http_get(f"{base}/-/ready", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus not ready: {log.read_text()[-2000:]}")


def test_backfilled_day_loads_into_prometheus_with_the_xid_at_its_time(tmp_path: Path) -> None:
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

    port, log = free_port(), tmp_path / "prometheus.log"
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    proc = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={blocks}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, proc, log)
        xid_time = start + -(-XID_AT // STEP) * STEP  # the first step at or after the event
        before = _query(base, 'DCGM_FI_DEV_XID_ERRORS{gpu="3"}', xid_time - STEP)
        at = _query(base, 'DCGM_FI_DEV_XID_ERRORS{gpu="3"}', xid_time)
        assert [r["value"][1] for r in before] == ["0"]  # type: ignore[index]
        assert [r["value"][1] for r in at] == ["79"]  # type: ignore[index]
        series = at[0]["metric"]
        assert series["Hostname"] == "backfill-host" and series["modelName"] == "NVIDIA A100-SXM4-80GB"  # type: ignore[index]
        stamp = _query(base, 'timestamp(DCGM_FI_DEV_XID_ERRORS{gpu="3"})', xid_time)
        assert float(stamp[0]["value"][1]) == xid_time  # type: ignore[index]  # a sample at that very second
        changes = _query(base, 'changes(DCGM_FI_DEV_XID_ERRORS{gpu="3"}[1d])', start + DAY)
        assert [r["value"][1] for r in changes] == ["1"]  # type: ignore[index]
        dbe = _query(base, 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="1"}', start + DAY)
        count = _query(base, "count(DCGM_FI_DEV_GPU_TEMP)", start + 12 * 3600)
        assert [r["value"][1] for r in count] == ["4"]  # type: ignore[index]
        assert dbe == [] or dbe[0]["value"][1] == "2"  # type: ignore[index]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
