"""Reachability drills through a real Prometheus: each mode gives the up, scrape duration and error a real node in
that state would give, /health stays 200, and "ok" brings the host back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess, uds_get
from tests.drill_client import applied, control, targets, up_by_instance, wait_until
from tests.prometheus_server import PrometheusServer

Factory = Callable[..., ExporterProcess]
JOB = "drills"
MODES = {
    "node-0": {"reachability": "refused"},
    "node-1": {"reachability": "timeout"},
    "node-2": {"reachability": "http_500"},
    "node-3": {"reachability": "slow", "delay": "0.8s"},
    "node-4": {"reachability": "empty_page"},
    "node-5": {"reachability": "stale"},
    "node-6": {"reachability": "truncated"},
}


def _sd_scrape_with_timeout(sd_url: str) -> str:
    return (
        f"  - job_name: {JOB}\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
        f"    http_sd_configs:\n      - url: {sd_url}\n        refresh_interval: 2s\n"
    )


def _start(factory: Factory, tmp_path: Path, *extra: str) -> tuple[ExporterProcess, Path]:
    sock = tmp_path / "ctl.sock"
    args = ("--uds", str(sock), "--num-gpus", "2", "--seed", "5", "-c", "500")
    return factory(*args, *extra, env={"NODE_NAME": "node"}, uds=sock), sock


@pytest.mark.slow
def test_every_reachability_mode_looks_to_prometheus_like_a_real_node(
    tmp_path: Path, exporter_factory: Factory, prometheus: Callable[..., PrometheusServer]
) -> None:
    exporter, sock = _start(exporter_factory, tmp_path, "--hosts", "8", "--workers", "2")
    server = prometheus(_sd_scrape_with_timeout(f"{exporter.base}/sd"))
    server.wait_ready()
    wait_until(lambda: len(up_by_instance(server, JOB)) == 8 and set(up_by_instance(server, JOB).values()) == {1.0})
    for host, event in MODES.items():
        answer = applied(sock, f"/control/v1/hosts/{host}/events", event)
        assert answer["targets"] == [{"host": host, "gpus": []}] and answer["source"] == "api", answer

    def settled() -> dict[str, float] | None:
        up = up_by_instance(server, JOB)
        want = {"node-0": 0.0, "node-1": 0.0, "node-2": 0.0, "node-6": 0.0, "node-7": 1.0, "node-3": 1.0}
        return up if all(up.get(h) == v for h, v in want.items()) else None

    wait_until(settled, what="up of every mode")
    wait_until(lambda: server.scalar('scrape_samples_scraped{instance="node-4"}') == 0.0, what="empty page")
    wait_until(lambda: (server.scalar('scrape_duration_seconds{instance="node-3"}') or 0) >= 0.75, what="slow")
    seen = targets(server)
    assert "connection reset by peer" in seen["node-0"]["lastError"], seen["node-0"]
    assert "deadline exceeded" in seen["node-1"]["lastError"], seen["node-1"]
    assert seen["node-1"]["lastScrapeDuration"] >= 0.9
    assert "500" in seen["node-2"]["lastError"], seen["node-2"]
    assert 0.75 <= seen["node-3"]["lastScrapeDuration"] < 1.0, seen["node-3"]  # near the 1 s timeout, not over
    assert seen["node-4"]["health"] == "up"
    assert seen["node-6"]["lastError"], seen["node-6"]  # a parse error: the page ends inside a label value
    assert "expected" in seen["node-6"]["lastError"] or "invalid" in seen["node-6"]["lastError"], seen["node-6"]
    # A stale page repeats its last cycle: byte for byte, its cycle counter frozen.
    first = uds_get(sock, "/hosts/node-5/metrics")[1]
    assert re.search(rb"^otel_fakegpu_cycles_total \d+$", first, re.M), first[:300]
    wait_until(lambda: server.scalar('changes(otel_fakegpu_cycles_total{instance="node-7"}[3s])') not in (None, 0.0))
    wait_until(lambda: server.scalar('changes(otel_fakegpu_cycles_total{instance="node-5"}[3s])') == 0.0)
    assert uds_get(sock, "/hosts/node-5/metrics")[1] == first
    status, health = exporter.health()
    assert status == 200, health  # drills are the hosts' state, not the exporter's
    for host in MODES:
        applied(sock, f"/control/v1/hosts/{host}/events", {"reachability": "ok"})
    wait_until(lambda: set(up_by_instance(server, JOB).values()) == {1.0}, what="every host back")


def test_one_host_takes_events_on_the_host_less_path_and_rejects_bad_ones(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    exporter, sock = _start(exporter_factory, tmp_path)
    assert exporter.get("/metrics")[0] == 200
    answer = applied(sock, "/control/v1/events", {"reachability": "http_500"})
    assert answer["event"] == {"reachability": "http_500"}
    assert exporter.get("/metrics")[0] == 500
    applied(sock, "/control/v1/events", {"reachability": "empty_page"})
    status, body, _ = exporter.get("/metrics")
    assert (status, body) == (200, b"")
    assert exporter.health()[0] == 200
    for bad, says in [
        ({"reachability": "gone"}, "reachability: expected one of"),
        ({"reachability": "slow", "delay": "soon"}, "delay: not a duration"),
        ({"reachability": "ok", "delay": "1s"}, "delay: only with"),
        ({"power": "off", "xid": 3}, "unknown host event key 'xid'"),
        ([1], 'expected {"hosts"'),
    ]:
        status, answer = control(sock, "POST", "/control/v1/events", bad)
        assert status == 400 and says in answer["error"], (bad, answer)
        assert "\n" not in answer["error"]
    status, answer = control(sock, "POST", "/control/v1/hosts/elsewhere/events", {"reachability": "ok"})
    assert status == 404, answer
    status, _, _ = uds_get(sock, "/control/v1/events", {"Content-Type": "application/json"}, "POST", b"{nope")
    assert status == 400
    applied(sock, "/control/v1/events", {"reachability": "ok"})
    assert exporter.get("/metrics")[0] == 200
    assert json.loads(exporter.get("/sd")[1])[0]["labels"]["rack"] == "r0"
