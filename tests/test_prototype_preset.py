"""--preset dcgm-fake-gpu-exporter: the seed prototype's nine names and labels, so its users' alert rules (in
collector-config/prototype-alerts.yml) find series in a real Prometheus."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, ExporterProcess, http_get
from tests.polling import wait_until
from tests.prometheus_server import PROMTOOL, PrometheusServer, static_scrape

RULES = ROOT / "collector-config" / "prototype-alerts.yml"
PROTOTYPE_NAMES = {
    "dcgm_gpu_temp", "dcgm_power_usage", "dcgm_gpu_utilization", "dcgm_mem_copy_utilization", "dcgm_sm_clock",
    "dcgm_mem_clock", "dcgm_fb_total", "dcgm_fb_used", "dcgm_fb_free",
}  # fmt: skip
SELECTOR = re.compile(r"dcgm_[a-z_]+\{[^}]*\}")


def test_exposition_has_the_nine_names_with_gpu_and_device_from_1(
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    exporter = exporter_factory("--preset", "dcgm-fake-gpu-exporter", "--num-gpus", "4", "-c", "600000")
    status, body, _ = exporter.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert status == 200 and {n for n in families if not n.startswith("otel_fakegpu_")} == PROTOTYPE_NAMES
    for name in PROTOTYPE_NAMES:
        assert families[name].type == "gauge"
        labels = [s.labels for s in families[name].samples]
        assert labels == [{"gpu": str(n), "device": f"nvidia{n}"} for n in (1, 2, 3, 4)], name
    health = json.loads(exporter.get("/health")[1])
    assert health["status"] == "healthy"  # what the prototype's probes check


def test_prototype_alert_rules_find_series_in_prometheus(
    prometheus: Callable[..., PrometheusServer], exporter_factory: Callable[..., ExporterProcess]
) -> None:
    check = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    exporter = exporter_factory(
        "--preset", "dcgm-fake-gpu-exporter", "--num-gpus", "4", "-c", "1000", "--update-interval", "0.5",
        "--gpu-profiles", "stable,wave,spike,degrading",
    )  # fmt: skip
    _check_rules(prometheus(static_scrape("gpu", exporter.port), (RULES,)))


def _check_rules(server: PrometheusServer) -> None:
    exprs = [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    selectors = sorted({s for expr in exprs for s in SELECTOR.findall(expr)})
    assert {s.split("{")[0] for s in selectors} == PROTOTYPE_NAMES  # the rules use all nine names
    deadline = time.monotonic() + 90

    def missing() -> list[str]:
        return [s for s in selectors if len(server.query(s)) != 4]

    wait_until(lambda: not missing(), 90, "a series per GPU for every selector of the rules", interval=0.5)
    assert sorted(s["metric"]["gpu"] for s in server.query('dcgm_gpu_temp{gpu!="0"}')) == ["1", "2", "3", "4"]
    assert len(server.query('dcgm_gpu_temp{gpu="1"}')) == 1  # the dashboard's per-GPU panels

    def evaluated_rules() -> list[dict[str, object]]:
        status, body, _ = http_get(f"{server.base}/api/v1/rules")
        rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]] if status == 200 else []
        everyone = len(rules) == len(exprs) and all(str(r.get("lastEvaluation", "")).startswith("20") for r in rules)
        return rules if everyone else []

    rules = wait_until(evaluated_rules, deadline - time.monotonic(), "every rule evaluated", interval=0.5)
    assert len(rules) == len(exprs)
    assert all(r["health"] == "ok" and not r.get("lastError") for r in rules), rules
