"""A receiver that refuses one request for good must not stop push: that request is dropped, counted
(reason="rejected") and logged with the receiver's message, and delivery goes on. Retry-After is honoured,
partial successes are counted, and both push targets' self-metrics make one valid page."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.outputs.otlp_outcome import http_answer, parse_retry_after
from otel_fakegpu.outputs.retry import DeliveryError, RejectedError, RetryQueue
from tests.conftest import ExporterProcess
from tests.pages import push_metrics
from tests.polling import wait_cycles, wait_until
from tests.prometheus_server import PROMTOOL
from tests.receivers import VictoriaMetrics

Factory = Callable[..., ExporterProcess]


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next scripted (status, headers, body); 200 once the script is used up."""

    server: _ScriptedServer

    def do_POST(self) -> None:
        received = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, headers, body = self.server.next_answer(received)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


class _ScriptedServer(http.server.ThreadingHTTPServer):
    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), _Scripted)
        self.script = list(script)
        self.answers: list[tuple[float, int]] = []  # (monotonic time, status)
        self.bodies: list[bytes] = []  # every request body, in arrival order
        self.lock = threading.Lock()

    def next_answer(self, received: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.bodies.append(received)
            answer = self.script.pop(0) if self.script else (200, {}, b"")
            self.answers.append((time.monotonic(), answer[0]))
            return answer

    def ok_count(self) -> int:
        with self.lock:
            return sum(1 for _, status in self.answers if status == 200)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[Callable[[list[tuple[int, dict[str, str], bytes]]], _ScriptedServer]]:
    servers: list[_ScriptedServer] = []

    def make(script: list[tuple[int, dict[str, str], bytes]]) -> _ScriptedServer:
        server = _ScriptedServer(script)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def _dropped(exporter: ExporterProcess, target: str, reason: str) -> float:
    key = ("otel_fakegpu_push_points_dropped_total", (("reason", reason), ("target", target)))
    return push_metrics(exporter.get("/metrics")[1]).get(key, -1.0)


def _otlp_status(message: str) -> bytes:
    return bytes(status_pb2.Status(code=3, message=message).SerializeToString())


def test_otlp_http_400_drops_that_request_and_delivery_goes_on(scripted: Any, exporter_factory: Factory) -> None:
    server = scripted([(400, {"Content-Type": "application/x-protobuf"}, _otlp_status("bad point: NaN in gpu 0"))])
    exporter = exporter_factory(
        "--num-gpus", "1", "-c", "300", "--otlp-endpoint", f"{server.url}/v1/metrics", "--otlp-timeout", "2000"
    )  # fmt: skip
    wait_until(lambda: server.ok_count() >= 3, timeout=30)
    assert _dropped(exporter, "otlp", "rejected") > 0
    assert _dropped(exporter, "otlp", "overflow") == 0
    log = exporter.stderr_text()
    assert log.count("refused") == 1 and "HTTP 400: bad point: NaN in gpu 0" in log
    assert "Traceback" not in log


def test_prometheus_push_400_drops_that_body_and_delivery_goes_on(scripted: Any, exporter_factory: Factory) -> None:
    server = scripted([(400, {}, b"cannot parse line 3: unexpected token\n")])
    exporter = exporter_factory("--num-gpus", "1", "-c", "300", "--push-prometheus-url", f"{server.url}/import")
    wait_until(lambda: server.ok_count() >= 3, timeout=30)
    assert _dropped(exporter, "prometheus", "rejected") > 0
    log = exporter.stderr_text()
    assert log.count("refused") == 1 and "HTTP 400 cannot parse line 3: unexpected token" in log


def test_retry_after_is_honoured(scripted: Any, exporter_factory: Factory) -> None:
    # The queue's own first backoff is 0.5 s; the receiver asks for 3.
    server = scripted([(503, {"Retry-After": "3"}, b"overloaded")])
    exporter_factory("--num-gpus", "1", "-c", "600000", "--push-prometheus-url", f"{server.url}/import")
    wait_until(lambda: server.ok_count() >= 1, timeout=30)
    (refused_at, _), (accepted_at, _) = server.answers[:2]
    assert accepted_at - refused_at >= 2.8


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    for garbage in (None, "", "soon", "-5", "1e9999", "Wed, 99 Foo 2015"):
        assert parse_retry_after(garbage) is None
    answers = {status: http_answer(status, "7") for status in (400, 404, 408, 429, 500, 503)}
    assert answers == {
        400: (True, None), 404: (True, None), 408: (False, None), 429: (False, 7.0), 500: (False, None), 503: (False, 7.0)
    }  # fmt: skip


class _PickyService(metrics_service_pb2_grpc.MetricsServiceServicer):
    """Refuses the first request (INVALID_ARGUMENT), answers later ones with a partial success of 2 points."""

    def __init__(self) -> None:
        self.calls = 0

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
        self.calls += 1
        if self.calls == 1:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tenant limit: too many series")
        response = metrics_service_pb2.ExportMetricsServiceResponse()
        response.partial_success.rejected_data_points = 2
        response.partial_success.error_message = "2 points out of bounds"
        return response


def test_otlp_grpc_refusal_and_partial_success_are_counted(exporter_factory: Factory) -> None:
    service = _PickyService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        exporter = exporter_factory(
            "--num-gpus", "1", "-c", "300", "--otlp-protocol", "grpc",
            "--otlp-endpoint", f"127.0.0.1:{port}", "--otlp-insecure",
        )  # fmt: skip
        wait_until(lambda: service.calls >= 4, timeout=30)
        wait_cycles(exporter, 2)  # a cycle for the counters to reach the page
        metrics = push_metrics(exporter.get("/metrics")[1])
        rejected = _dropped(exporter, "otlp", "rejected")
        ok = metrics[("otel_fakegpu_push_exports_total", (("result", "ok"), ("target", "otlp")))]
        first_request = rejected - 2 * ok
        assert first_request > 2  # the whole first request, and 2 per accepted one
        log = exporter.stderr_text()
        assert "INVALID_ARGUMENT: tenant limit: too many series" in log
        assert "refused 2 of its points: 2 points out of bounds" in log
    finally:
        server.stop(grace=None)


def test_queue_goes_on_after_a_refusal_and_retries_transient_errors() -> None:
    answers: list[str] = ["rejected", "transient", "ok", "ok"]
    delivered: list[int] = []

    def send(item: int) -> int:
        answer = answers.pop(0)
        if answer == "rejected":
            raise RejectedError("HTTP 400 bad")
        if answer == "transient":
            raise DeliveryError("HTTP 503", retry_after_s=0.0)
        delivered.append(item)
        return 0

    queue: RetryQueue[int] = RetryQueue("test", send, lambda item: 10, 1000, backoff_s=(0.01, 0.01))
    for item in (1, 2, 3):
        queue.put(item)
    stop = threading.Event()
    thread = threading.Thread(target=queue.run, args=(stop,))
    thread.start()
    wait_until(lambda: len(delivered) == 2, timeout=10)
    stop.set()
    thread.join()
    view = queue.view()
    assert delivered == [2, 3]  # 1 refused for good, 2 retried once, order kept
    assert dict(view.dropped_by_reason) == {"overflow": 0, "rejected": 10}
    assert (view.exports_ok, view.exports_failed, view.points_sent, view.points_buffered) == (2, 2, 20, 0)


def test_both_targets_make_one_family_each_and_promtool_accepts_the_page(
    scripted: Any, exporter_factory: Factory
) -> None:
    otlp, prom = scripted([]), scripted([])
    exporter = exporter_factory(
        "--num-gpus", "2", "-c", "300", "--otlp-endpoint", f"{otlp.url}/v1/metrics",
        "--push-prometheus-url", f"{prom.url}/import",
    )  # fmt: skip
    wait_until(lambda: otlp.ok_count() >= 2 and prom.ok_count() >= 2, timeout=30)
    page = exporter.get("/metrics")[1]
    helps = [line for line in page.decode().splitlines() if line.startswith("# HELP otel_fakegpu_push")]
    assert len(helps) == len(set(helps)) == 6
    sent = {
        s.labels["target"]
        for f in text_string_to_metric_families(page.decode())
        for s in f.samples
        if s.name == "otel_fakegpu_push_points_sent_total"
    }
    assert sent == {"otlp", "prometheus"}
    checked = subprocess.run([str(PROMTOOL), "check", "metrics"], input=page, capture_output=True, check=False)
    report = checked.stderr.decode() + checked.stdout.decode()
    # 3: lint remarks only, all about dcgm-exporter's own names (camelCase labels, counters without _total),
    # which are the contract; 1 would be a page Prometheus cannot parse ("second HELP line").
    assert checked.returncode in (0, 3) and "error while linting" not in report, report
    assert "otel_fakegpu" not in report, report


def test_victoriametrics_refusing_every_request_never_blocks_the_queue(
    tmp_path: Any, exporter_factory: Factory
) -> None:
    """A real receiver that answers 400 to everything (a malformed extra_label): each request is dropped once,
    counted and logged with VictoriaMetrics' own message; nothing piles up for retry."""
    victoria = VictoriaMetrics(tmp_path)
    try:
        exporter = exporter_factory(
            "--num-gpus", "1", "-c", "300",
            "--otlp-endpoint", f"{victoria.base}/opentelemetry/v1/metrics?extra_label=bad",
            "--push-prometheus-url", f"{victoria.base}/api/v1/import/prometheus?extra_label=bad",
        )  # fmt: skip
        wait_until(
            lambda: _dropped(exporter, "otlp", "rejected") > 0 and _dropped(exporter, "prometheus", "rejected") > 0
        )
        wait_cycles(exporter, 5)  # five more cycles
        metrics = push_metrics(exporter.get("/metrics")[1])
        for target in ("otlp", "prometheus"):
            buffered = metrics[("otel_fakegpu_push_points_buffered", (("target", target),))]
            assert buffered < 200, (target, buffered)  # at most the cycle in flight: no backlog of refusals
            assert metrics[("otel_fakegpu_push_exports_total", (("result", "failed"), ("target", target)))] >= 3
        assert "extra_label" in exporter.stderr_text() and "Traceback" not in exporter.stderr_text()
    finally:
        victoria.stop()
