"""The stock OTLP exporters (transport, TLS, headers, compression, retries), encoding through the caching
encoder at the hook each one encodes through, and an ExportOutcome recorder watching what the receiver
answers. Where an SDK release lacks a hook, the stock exporter is used as it is: slower or less precise
about refusals, never wrong."""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from otel_fakegpu.outputs.otlp_outcome import ExportOutcome, RecordingStub, RecordingTransport

if TYPE_CHECKING:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedRequest:
    """A request kept for retry as gzip-compressed OTLP bytes: one allocation of about a tenth of the size the
    SDK's objects take (some 200 bytes in four Python objects per point), handed back to the system when sent."""

    gz: bytes
    points: int

    def request(self) -> ExportMetricsServiceRequest:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: PLC0415
            ExportMetricsServiceRequest,
        )

        request = ExportMetricsServiceRequest()
        request.ParseFromString(gzip.decompress(self.gz))
        return request


def _encoded(request: ExportMetricsServiceRequest, points: int) -> EncodedRequest:
    return EncodedRequest(gzip.compress(request.SerializeToString(), compresslevel=1), points)


def _count(data: MetricsData) -> int:
    from otel_fakegpu.outputs.batching import count_points  # noqa: PLC0415

    return count_points(data)


def grpc_exporter(outcome: ExportOutcome, **settings: Any) -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415 - gRPC only when asked
        OTLPMetricExporter,
    )

    from otel_fakegpu.outputs.otlp_encode import CachingMetricsEncoder  # noqa: PLC0415 - protobuf only for push

    if not callable(getattr(OTLPMetricExporter, "_translate_data", None)):
        log.info("this OpenTelemetry release has no encoding hook in its gRPC exporter: stock encoding")
        return OTLPMetricExporter(**settings)

    encoder = CachingMetricsEncoder()  # one exporter per push target: the class and its cache go together

    class CachingGrpcExporter(OTLPMetricExporter):
        def _translate_data(self, data: MetricsData | EncodedRequest) -> ExportMetricsServiceRequest:
            return data.request() if isinstance(data, EncodedRequest) else encoder.encode(data)

        def _count_data(self, data: MetricsData | EncodedRequest) -> int:
            return data.points if isinstance(data, EncodedRequest) else _count(data)

        def encode_request(self, data: MetricsData) -> EncodedRequest:
            """``data`` as this exporter would send it, compact, for ``export`` to send later."""
            return _encoded(encoder.encode(data), _count(data))

        def _initialize_channel_and_stub(self) -> None:  # also called again to reconnect after UNAVAILABLE
            super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
            if getattr(self, "_client", None) is not None:
                self._client = RecordingStub(self._client, outcome)  # type: ignore[assignment]

    return CachingGrpcExporter(**settings)


def http_exporter(outcome: ExportOutcome, **settings: Any) -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415

    from otel_fakegpu.outputs.otlp_encode import CachingMetricsEncoder  # noqa: PLC0415 - protobuf only for push

    if not callable(getattr(OTLPMetricExporter, "_export_batch", None)):
        log.info("this OpenTelemetry release has no batch hook in its HTTP exporter: stock encoding")
        return OTLPMetricExporter(**settings)

    encoder = CachingMetricsEncoder()

    class CachingHttpExporter(OTLPMetricExporter):
        def export(
            self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            # Shut down, or splitting by itself: the stock path knows what to do.
            if getattr(self, "_shutdown", True):
                return MetricExportResult.FAILURE
            if isinstance(metrics_data, EncodedRequest):
                encoded: MetricExportResult = self._export_batch(metrics_data.request())
                return encoded
            if getattr(self, "_max_export_batch_size", None) is not None:
                return super().export(metrics_data, timeout_millis, **kwargs)
            result: MetricExportResult = self._export_batch(encoder.encode(metrics_data))
            return result

        def encode_request(self, data: MetricsData) -> EncodedRequest:
            """``data`` as this exporter would send it, compact, for ``export`` to send later."""
            return _encoded(encoder.encode(data), _count(data))

    exporter = CachingHttpExporter(**settings)
    client = getattr(exporter, "_client", None)
    if client is not None and hasattr(getattr(client, "_transport", None), "request"):
        client._transport = RecordingTransport(client._transport, outcome)
    else:
        log.info("this OpenTelemetry release keeps its HTTP transport elsewhere: refusals known by result only")
    return exporter
