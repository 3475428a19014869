"""The drills' alert rules fire in a real Prometheus with rules/gpu-alerts.yml loaded, scraping a fleet found
through /sd: one node timing out, a rack without power, a node serving empty pages while up; each alert for its
own targets only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess
from tests.drill_client import applied, up_by_instance, wait_until
from tests.prometheus_server import JOB, PrometheusServer
from tests.test_alert_rules import RULES, firing

Factory = Callable[..., ExporterProcess]


@pytest.mark.slow
def test_node_unreachable_rack_down_and_empty_page_fire_for_their_targets(
    tmp_path: Path, exporter_factory: Factory, prometheus: Callable[..., PrometheusServer]
) -> None:
    sock = tmp_path / "ctl.sock"
    args = ("--uds", str(sock), "--hosts", "6", "--racks", "2", "--workers", "2", "--num-gpus", "1", "-c", "1000")
    exporter = exporter_factory(*args, env={"NODE_NAME": "node"}, uds=sock)
    scrape = (
        f"  - job_name: {JOB}\n    scrape_timeout: 1s\n"
        f"    http_sd_configs:\n      - url: {exporter.base}/sd\n        refresh_interval: 2s\n"
    )
    server = prometheus(scrape, (RULES,))
    server.wait_ready()
    wait_until(lambda: len(up_by_instance(server, JOB)) == 6 and min(up_by_instance(server, JOB).values()) == 1.0)
    applied(sock, "/control/v1/hosts/node-0/events", {"reachability": "timeout"})
    applied(sock, "/control/v1/hosts/node-1/events", {"reachability": "empty_page"})
    applied(sock, "/control/v1/events", {"hosts": {"rack": "r1"}, "event": {"power": "off"}})
    names = ("GpuNodeUnreachable", "GpuRackDown", "GpuExporterEmptyPage")
    wait_until(lambda: all(firing(server, name) for name in names), timeout=150, what="the three alerts firing")
    assert [a["labels"]["instance"] for a in firing(server, "GpuNodeUnreachable")] == ["node-0"]
    assert [a["labels"]["rack"] for a in firing(server, "GpuRackDown")] == ["r1"]
    assert [a["labels"]["instance"] for a in firing(server, "GpuExporterEmptyPage")] == ["node-1"]
