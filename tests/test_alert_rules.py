"""The GPU alert rules (rules/): promtool check and unit tests with a test for every rule, and a real Prometheus
with the rules loaded firing the XID and GPU-missing alerts from a running exporter, faults sent through its
control API."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import start_exporter
from tests.control_client import control_event
from tests.polling import wait_until
from tests.prometheus_server import JOB, PROMTOOL, PrometheusServer, static_scrape

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules" / "gpu-alerts.yml"
RULE_TESTS = ROOT / "rules" / "gpu-alerts.test.yml"
COLLECTORS = ROOT / "deploy" / "collectors" / "dcgm-fleet.csv"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, check=False, timeout=120)


def alert_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"]}


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_promtool_unit_tests_pass_and_cover_every_rule() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    assert alert_names() - firing == set(), "rules no test makes fire"
    assert alert_names() - quiet == set(), "rules no test keeps quiet"


def test_promtool_unit_tests_pass_with_the_4_8_3_host_label(tmp_path: Path) -> None:
    """The same cases with dcgm-exporter 4.8.3's ``hostname`` in the input series and the expected alerts."""
    tests = yaml.safe_load(RULE_TESTS.read_text().replace("Hostname", "hostname"))
    tests["rule_files"] = [str(RULES)]
    assert "Hostname" not in yaml.safe_dump(tests)
    renamed = tmp_path / "gpu-alerts-hostname.test.yml"
    renamed.write_text(yaml.safe_dump(tests, allow_unicode=True))
    result = promtool("test", "rules", str(renamed))
    assert result.returncode == 0, result.stdout + result.stderr


def firing(prometheus: PrometheusServer, name: str) -> list[dict[str, Any]]:
    return [a for a in prometheus.alerts() if a["labels"]["alertname"] == name and a["state"] == "firing"]


def wait_firing(prometheus: PrometheusServer, name: str, timeout: float) -> list[dict[str, Any]]:
    return wait_until(lambda: firing(prometheus, name), timeout, f"{name} to fire", interval=0.5)


@pytest.mark.slow
@pytest.mark.parametrize(("release", "host_label"), [("4.8.2", "Hostname"), ("4.8.3", "hostname")])
def test_real_prometheus_fires_xid_and_gpu_missing(tmp_path: Path, release: str, host_label: str) -> None:
    """Faults sent through the control API while a real Prometheus with the rules loaded scrapes the exporter
    serving either release's host label."""
    sock = tmp_path / "metrics.sock"
    args = ["-f", str(COLLECTORS), "-c", "500", "--update-interval", "0.5", "--profile", "stable", "--uds", str(sock),
            "--dcgm-exporter-compat", release]  # fmt: skip
    exporter = start_exporter([*args, "--num-gpus", "4"], {"NODE_NAME": "alert-node", "FAKEGPU_SEED": "5"}, uds=sock)
    prometheus = PrometheusServer(tmp_path / "prometheus", static_scrape(JOB, exporter.port), (RULES,))
    try:
        prometheus.wait_for('count(DCGM_FI_DEV_GPU_TEMP{gpu="3"})')
        prometheus.wait_for('DCGM_FI_DEV_XID_ERRORS{gpu="1"} == 0')  # stored once as 0 at start, as DCGM does
        assert firing(prometheus, "GpuXidError") == [] and firing(prometheus, "GpuMissing") == []
        control_event(sock, 1, {"xid": 79})
        xid = wait_firing(prometheus, "GpuXidError", 90)
        assert [(a["labels"]["gpu"], a["labels"][host_label], a["value"]) for a in xid] == [
            ("1", "alert-node", "7.9e+01")
        ]
        window = wait_firing(prometheus, "GpuXidErrorsInWindow", 60)
        assert [(a["labels"]["gpu"], a["labels"]["xid"]) for a in window] == [("1", "79")]
        control_event(sock, 3, {"fault": "fall_off_bus"})
        missing = wait_firing(prometheus, "GpuMissing", 120)  # for: 1m
        assert [(a["labels"]["gpu"], a["labels"][host_label]) for a in missing] == [("3", "alert-node")]
        assert missing[0]["annotations"]["summary"].endswith("on alert-node is missing")
    finally:
        exporter.close()
        prometheus.stop()
