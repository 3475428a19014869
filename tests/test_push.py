"""Push to real receivers on loopback: VictoriaMetrics (OTLP/HTTP and Prometheus text) and an OTLP/gRPC
MetricsService; outages, overflow, a 4096-GPU cycle through a 4 MiB limit, and one collection per cycle."""

from __future__ import annotations

import http.server
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ExporterProcess, free_port
from tests.polling import wait_cycles, wait_until
from tests.receivers import OtlpGrpcReceiver, Point, VictoriaMetrics

Factory = Callable[..., ExporterProcess]
GPU_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION")


@pytest.fixture
def grpc_receiver() -> Iterator[OtlpGrpcReceiver]:
    receiver = OtlpGrpcReceiver().start()
    yield receiver
    receiver.stop()


def _scraped(exporter: ExporterProcess) -> dict[tuple[str, str], float]:
    """(metric, gpu) -> value from /metrics: the truth the pushes are compared with."""
    status, body, _ = exporter.get("/metrics")
    assert status == 200
    values = {}
    for line in body.decode().splitlines():
        match = re.match(r'(DCGM_\w+)\{gpu="(\d+)".* (\S+)$', line)
        if match:
            values[(match[1], match[2])] = float(match[3])
    return values


@pytest.mark.slow
def test_victoriametrics_receives_otlp_http_and_prometheus_text(
    victoria: VictoriaMetrics, exporter_factory: Factory
) -> None:
    exporter = exporter_factory(
        "--num-gpus", "4", "--seed", "5", "--gpu-profiles", "stable,wave", "-c", "600000",
        "--otlp-endpoint", f"{victoria.base}/opentelemetry/v1/metrics",
        "--push-prometheus-url", f"{victoria.base}/api/v1/import/prometheus",
        env={"NODE_NAME": "gpu-node-7"},
    )  # fmt: skip
    truth = _scraped(exporter)
    cycle_ms = None

    def both_arrived() -> bool:
        series = victoria.export('{__name__=~"DCGM_.*"}')
        return len(series) == 2 * len(truth)

    wait_until(both_arrived, timeout=30)
    for series in victoria.export('{__name__=~"DCGM_.*"}'):
        labels = series["metric"]
        via_otlp = "service.name" in labels
        assert all(label in labels for label in GPU_LABELS)
        assert labels["Hostname"] == "gpu-node-7"
        if via_otlp:
            assert labels["service.name"] == "otel-fakegpu" and labels["host.name"] == "gpu-node-7"
        assert len(series["values"]) == 1  # one cycle, delivered once
        assert series["values"][0] == pytest.approx(truth[(labels["__name__"], labels["gpu"])])
        cycle_ms = cycle_ms or series["timestamps"][0]
        assert series["timestamps"][0] == cycle_ms  # both carry the collection time
    per_gpu = victoria.query('count by (gpu) (DCGM_FI_DEV_GPU_TEMP{service_name=""})')
    assert sorted(r["metric"]["gpu"] for r in per_gpu) == ["0", "1", "2", "3"]


def test_grpc_push_carries_the_same_content(grpc_receiver: OtlpGrpcReceiver, exporter_factory: Factory) -> None:
    exporter = exporter_factory(
        "--num-gpus", "3", "--seed", "5", "-c", "600000", "--otlp-protocol", "grpc",
        "--otlp-endpoint", f"127.0.0.1:{grpc_receiver.port}", "--otlp-insecure",
        env={"NODE_NAME": "gpu-node-8", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"},
    )  # fmt: skip
    truth = _scraped(exporter)
    wait_until(lambda: len([p for p in grpc_receiver.snapshot() if p.metric.startswith("DCGM_")]) == len(truth))
    for point in grpc_receiver.snapshot():
        if not point.metric.startswith("DCGM_"):
            continue
        attrs = dict(point.attributes)
        assert tuple(k for k, _ in point.attributes) == GPU_LABELS  # dcgm-exporter's order, kept
        assert point.value == pytest.approx(truth[(point.metric, attrs["gpu"])])
    resource = grpc_receiver.resources[0]
    assert resource["host.name"] == "gpu-node-8" and resource["service.instance.id"] == "gpu-node-8"
    assert resource["deployment.environment"] == "test"


def _cycles_seen(points: list[Point]) -> list[int]:
    return sorted(int(p.value) for p in points if p.metric == "otel_fakegpu_cycles_total")


def test_outage_loses_nothing_and_sends_nothing_twice(exporter_factory: Factory) -> None:
    receiver = OtlpGrpcReceiver().start()
    exporter = exporter_factory(
        "--num-gpus", "2", "-c", "400", "--update-interval", "0.2", "--otlp-protocol", "grpc",
        "--otlp-endpoint", f"127.0.0.1:{receiver.port}", "--otlp-insecure", "--otlp-timeout", "1000",
    )  # fmt: skip
    try:
        wait_until(lambda: len(_cycles_seen(receiver.snapshot())) >= 2)
        receiver.stop()
        wait_cycles(exporter, 5)  # five cycles with nobody listening

        def buffered() -> list[str]:
            return [
                line
                for line in exporter.get("/metrics")[1].decode().splitlines()
                if line.startswith("otel_fakegpu_push_points_buffered") and float(line.split()[-1]) > 0
            ]

        wait_until(buffered, what="points buffered while the receiver is down")
        restarted = OtlpGrpcReceiver(receiver.port).start()
        wait_until(lambda: len(_cycles_seen(restarted.snapshot())) >= 8, timeout=40)
    finally:
        exporter.stop()
    points = receiver.snapshot() + restarted.snapshot()
    restarted.stop()
    cycles = _cycles_seen(points)
    assert cycles == list(range(cycles[0], cycles[-1] + 1)), "a cycle was lost or delivered twice"
    keys = [(p.metric, p.attributes, p.time_unix_nano) for p in points]
    assert len(keys) == len(set(keys)), "a point arrived twice"
    stamps = sorted({p.time_unix_nano for p in points if p.metric == "otel_fakegpu_cycles_total"})
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 1.5e9  # original collection times, 0.4 s apart, not the delivery times


def test_full_buffer_drops_the_oldest_and_counts_them(exporter_factory: Factory) -> None:
    receiver = OtlpGrpcReceiver()  # not started: every export fails
    exporter = exporter_factory(
        "--num-gpus", "2", "-c", "300", "--otlp-protocol", "grpc", "--otlp-endpoint", f"127.0.0.1:{receiver.port}",
        "--otlp-insecure", "--otlp-timeout", "500", "--push-buffer-points", "200",
    )  # fmt: skip

    def otlp_counts() -> dict[str, float]:
        return {
            s.name: s.value
            for f in text_string_to_metric_families(exporter.get("/metrics")[1].decode())
            for s in f.samples
            if s.labels.get("target") == "otlp" and "result" not in s.labels and s.labels.get("reason") != "rejected"
        }

    def dropping() -> dict[str, float] | None:
        counts = otlp_counts()
        return counts if counts.get("otel_fakegpu_push_points_dropped_total", 0) > 0 else None

    metrics = wait_until(dropping, what="the full buffer to drop points")
    assert metrics["otel_fakegpu_push_points_buffered"] <= 200 + 60  # the bound, plus the newest cycle kept whole
    receiver.start()
    try:
        wait_until(lambda: len(_cycles_seen(receiver.snapshot())) >= 2, timeout=40)
        assert min(_cycles_seen(receiver.snapshot())) > 1  # the oldest were the ones dropped
    finally:
        receiver.stop()


@pytest.mark.slow
def test_4096_gpu_cycle_arrives_whole_through_a_4_mib_receiver(
    grpc_receiver: OtlpGrpcReceiver, exporter_factory: Factory
) -> None:
    exporter = exporter_factory(
        "--num-gpus", "4096", "-c", "600000", "--otlp-protocol", "grpc",
        "--otlp-endpoint", f"127.0.0.1:{grpc_receiver.port}", "--otlp-insecure",
    )  # fmt: skip
    expected = 4096 * 25
    wait_until(lambda: sum(p.metric.startswith("DCGM_") for p in grpc_receiver.snapshot()) >= expected, timeout=120)
    dcgm = [p for p in grpc_receiver.snapshot() if p.metric.startswith("DCGM_")]
    assert len(dcgm) == expected
    assert len({(p.metric, dict(p.attributes)["gpu"]) for p in dcgm}) == expected
    assert grpc_receiver.requests >= 13  # split: one message could never carry it
    assert exporter.health()[1]["cycle_errors_total"] == 0


def test_push_and_scrape_share_one_read_and_one_collection(
    grpc_receiver: OtlpGrpcReceiver, exporter_factory: Factory
) -> None:
    exporter = exporter_factory(
        "--num-gpus", "2", "-c", "300", "--otlp-protocol", "grpc", "--naming", "both",
        "--otlp-endpoint", f"127.0.0.1:{grpc_receiver.port}", "--otlp-insecure",
    )  # fmt: skip
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert exporter.get("/metrics")[0] == 200
    health = exporter.health()[1]
    engine = health["engine"]
    assert isinstance(engine, dict)
    cycles, reads, collections = health["cycles_total"], engine["reads_total"], health["sdk_collections_total"]
    assert isinstance(cycles, int) and cycles >= 5
    assert reads in (cycles, cycles + 1) and collections in (cycles, cycles + 1)
    wait_until(lambda: len(_cycles_seen(grpc_receiver.snapshot())) >= 5)
    cycles_pushed = _cycles_seen(grpc_receiver.snapshot())
    assert len(cycles_pushed) == len(set(cycles_pushed))  # each cycle pushed once
    names = {p.metric for p in grpc_receiver.snapshot()}
    assert {"hw.gpu.utilization", "hw.power", "hw.energy", "hw.temperature", "DCGM_FI_DEV_GPU_UTIL"} <= names
    assert not any(line.startswith("hw.") for line in exporter.get("/metrics")[1].decode().splitlines())


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(507)
        self.end_headers()
        self.wfile.write(b"out of space\n")

    def log_message(self, format: str, *args: object) -> None:
        return None


def test_push_failures_are_one_line_warnings_not_tracebacks(exporter_factory: Factory) -> None:
    """A receiver that is down or answers an error is a normal event: one line naming it, then retries."""
    refused_port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        down = exporter_factory("--num-gpus", "1", "-c", "300", "--push-prometheus-url",
                                f"http://127.0.0.1:{refused_port}/import")  # fmt: skip
        full = exporter_factory("--num-gpus", "1", "-c", "300", "--push-prometheus-url",
                                f"http://127.0.0.1:{server.server_address[1]}/import")  # fmt: skip
        wait_until(lambda: "Connection refused" in down.stderr_text() and "HTTP 507" in full.stderr_text())
    finally:
        server.shutdown()
    assert f"prometheus push: POST http://127.0.0.1:{refused_port}/import: Connection refused" in down.stderr_text()
    assert "HTTP 507 out of space" in full.stderr_text()
    for exporter in (down, full):
        assert "Traceback" not in exporter.stderr_text()
        assert exporter.get("/metrics")[0] == 200
