"""The OTLP exporter hooks (otel_fakegpu/outputs/otlp_exporters.py) fail open: on the declared SDK both pass
their probe and push through the caching encoder; on a release whose internals differ, the probe fails, the stock
exporter is used with one warning, and pushes still arrive at a real receiver (an OTLP/gRPC MetricsService,
VictoriaMetrics over OTLP/HTTP)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc import exporter as grpc_mixin
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as StockGrpc
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as StockHttp
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics.export import MetricExportResult

from otel_fakegpu.outputs import OtlpPushOutput, OtlpSettings, make_exporter, otlp_exporters
from otel_fakegpu.telemetry import CycleResult
from tests.conftest import build_stack
from tests.polling import wait_until
from tests.receivers import OtlpGrpcReceiver, VictoriaMetrics


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget this process's probe results for the test, as a fresh process would have none."""
    monkeypatch.setattr(otlp_exporters, "_checked", {})


def _push_one_cycle(settings: OtlpSettings, arrived: Any) -> OtlpPushOutput:
    """One cycle of 2 GPUs pushed through ``settings``; waits until ``arrived(points)`` holds."""
    stack = build_stack(2, ["static"], seed=3)
    data = stack.pipeline.collect(stack.pipeline.read(stack.engine))
    points = sum(len(m.data.data_points) for sm in data.resource_metrics[0].scope_metrics for m in sm.metrics)
    push = OtlpPushOutput(settings, buffer_points=100_000)
    stop = threading.Event()
    push(CycleResult(1, stack.clock(), data))
    push.start(stop)
    try:
        wait_until(lambda: arrived(points), timeout=30)
    finally:
        stop.set()
        push.close(drain_s=1.0)
        stack.pipeline.shutdown()
    assert push.queue.view().exports_failed == 0
    return push


@pytest.mark.parametrize(
    ("protocol", "name"), [("grpc", "CachingGrpcExporter"), ("http/protobuf", "CachingHttpExporter")]
)
def test_the_hooks_pass_their_probe_on_the_declared_sdk(unchecked: None, protocol: str, name: str) -> None:
    endpoint = "127.0.0.1:4317" if protocol == "grpc" else "http://127.0.0.1:4318/v1/metrics"
    exporter = make_exporter(OtlpSettings(endpoint, protocol, insecure=True))
    try:
        assert type(exporter).__name__ == name and otlp_exporters.status(protocol) == "yes"
    finally:
        exporter.shutdown()


def _export_without_the_hook(self: Any, data: Any) -> MetricExportResult:
    """The mixin's ``_export`` as a release might write it that encodes in place instead of calling
    ``_translate_data`` (no retries: one call to the stub)."""
    self._client.Export(request=encode_metrics(data), metadata=self._headers, timeout=self._timeout)
    return MetricExportResult.SUCCESS


def test_grpc_falls_back_to_the_stock_exporter_and_still_pushes(
    unchecked: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(grpc_mixin.OTLPExporterMixin, "_export", _export_without_the_hook)
    receiver = OtlpGrpcReceiver().start()
    try:
        settings = OtlpSettings(f"127.0.0.1:{receiver.port}", "grpc", insecure=True, timeout_s=2.0)
        push = _push_one_cycle(settings, lambda points: len(receiver.snapshot()) == points)
    finally:
        receiver.stop()
    assert type(push._exporter) is StockGrpc
    assert str(otlp_exporters.status("grpc")).startswith("AttributeError")  # an EncodedRequest reached encode_metrics
    OtlpPushOutput(settings, buffer_points=10)._release()  # a second exporter: no second warning
    assert caplog.text.count("OTLP grpc push uses the stock exporter") == 1


@pytest.mark.peer
@pytest.mark.slow
def test_http_falls_back_to_the_stock_exporter_and_still_pushes(
    unchecked: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, victoria: VictoriaMetrics
) -> None:
    """A release whose ``_export_batch`` takes the serialised bytes: the hook's request object no longer fits."""
    stock_batch = StockHttp._export_batch

    def export_batch_of_bytes(self: Any, serialized: bytes) -> MetricExportResult:
        return stock_batch(self, ExportMetricsServiceRequest.FromString(serialized))

    def export(self: Any, metrics_data: Any, timeout_millis: float | None = 10_000, **kwargs: Any) -> Any:
        return self._export_batch(encode_metrics(metrics_data).SerializeToString())

    monkeypatch.setattr(StockHttp, "_export_batch", export_batch_of_bytes)
    monkeypatch.setattr(StockHttp, "export", export)
    settings = OtlpSettings(f"{victoria.base}/opentelemetry/v1/metrics", "http/protobuf", timeout_s=5.0)
    push = _push_one_cycle(settings, lambda points: len(victoria.export('{__name__=~"DCGM_.*|otel_fakegpu_.*"}')) > 0)
    assert type(push._exporter) is StockHttp
    assert str(otlp_exporters.status("http/protobuf")).startswith("TypeError")
    assert caplog.text.count("OTLP http/protobuf push uses the stock exporter") == 1
