"""The real exporter process over HTTP: /metrics, /health, errors, cached scrapes, clean shutdown."""

from __future__ import annotations

import http.client
import signal
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ExporterProcess

Factory = Callable[..., ExporterProcess]


def test_metrics_health_and_index(exporter_factory: Factory) -> None:
    exporter = exporter_factory("--num-gpus", "4", "--seed", "1", env={"NODE_NAME": "node-a"})
    status, body, headers = exporter.get("/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    temps = families["DCGM_FI_DEV_GPU_TEMP"].samples
    assert sorted(s.labels["gpu"] for s in temps) == ["0", "1", "2", "3"]
    assert {s.labels["Hostname"] for s in temps} == {"node-a"}
    assert families["otel_fakegpu_gpus"].samples[0].value == 4

    code, health = exporter.health()
    assert code == 200 and health["status"] == "healthy" and health["gpus"] == 4
    assert health["engine"] == {"kind": "embedded", "state": "ok", "detail": "4 GPU entities", "reads_total": 1}
    assert status == 200 and b"/metrics" in exporter.get("/")[1]
    assert health["front"]["answered_total"] == 0  # urllib asks Connection: close: aiohttp answers
    assert health["front"]["handed_over_total"] >= 2


def test_kept_alive_scrapes_are_answered_in_front_and_counted(exporter_factory: Factory) -> None:
    exporter = exporter_factory("--num-gpus", "2")
    before = exporter.health()[1]["front"]
    connection = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=10)
    for _ in range(3):
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200 and b"DCGM_FI_DEV_GPU_TEMP" in response.read()
    connection.close()
    after = exporter.health()[1]["front"]
    assert after["answered_total"] == before["answered_total"] + 3
    assert after["handed_over_total"] == before["handed_over_total"] + 1  # the /health request


def test_unknown_path_is_404_and_other_methods_405(exporter_factory: Factory) -> None:
    exporter = exporter_factory()
    assert exporter.get("/nope")[0] == 404
    request = urllib.request.Request(exporter.base + "/metrics", method="POST", data=b"x")
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("POST must be refused")
    except urllib.error.HTTPError as err:
        assert err.code == 405
    head = urllib.request.Request(exporter.base + "/metrics", method="HEAD")
    with urllib.request.urlopen(head, timeout=5) as resp:
        assert resp.status == 200 and resp.read() == b""


def test_100_concurrent_scrapes_cost_no_engine_read(exporter_factory: Factory) -> None:
    exporter = exporter_factory("-c", "600000")  # one cycle at start, no other for ten minutes
    with ThreadPoolExecutor(max_workers=100) as pool:
        bodies = list(pool.map(lambda _: exporter.get("/metrics"), range(100)))
    assert all(status == 200 for status, _, _ in bodies)
    assert len({body for _, body, _ in bodies}) == 1  # every scraper got the same cycle's bytes
    _, health = exporter.health()
    assert health["cycles_total"] == 1
    assert health["engine"]["reads_total"] == 1


def test_one_engine_read_per_cycle_under_continuous_scraping(exporter_factory: Factory) -> None:
    exporter = exporter_factory("-c", "200", "--update-interval", "0.1")
    deadline = time.monotonic() + 2.5

    def scrape_until_deadline(_: int) -> int:
        count = 0
        while time.monotonic() < deadline:
            assert exporter.get("/metrics")[0] == 200
            count += 1
        return count

    with ThreadPoolExecutor(max_workers=100) as pool:
        scrapes = sum(pool.map(scrape_until_deadline, range(100)))
    _, health = exporter.health()
    cycles = health["cycles_total"]
    reads = health["engine"]["reads_total"]
    assert isinstance(cycles, int) and cycles >= 5
    assert scrapes > cycles
    # A cycle may be between its read and its tally when /health is answered.
    assert reads in (cycles, cycles + 1)


def test_sigterm_and_sigint_exit_cleanly(exporter_factory: Factory) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        exporter = exporter_factory()
        exporter.proc.send_signal(sig)
        assert exporter.proc.wait(timeout=20) == 0
        stderr = exporter.stderr_text()
        assert "Traceback" not in stderr and "shutting down" in stderr
