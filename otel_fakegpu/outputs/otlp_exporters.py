"""The stock OTLP exporters (transport, TLS, headers, compression, retries), encoding through the caching
encoder at the hook each one encodes through, and an ExportOutcome recorder watching what the receiver answers.

The hooks override private methods of the 1.45 exporters. Before the first exporter of a protocol is made, a
probe exporter sends a small collection, and the same one held encoded, through the hooked path to a capture (gRPC:
the stub the exporter calls; HTTP: a loopback server, through the stock transport) and compares what arrives with
the stock encoding. When anything differs or fails (another release), the plain stock exporter is used, with one
warning: slower and less precise about refusals, never failing a push that the stock exporter would send."""

from __future__ import annotations

import functools
import gzip
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_fakegpu.outputs.otlp_outcome import ExportOutcome, RecordingStub, RecordingTransport

if TYPE_CHECKING:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

log = logging.getLogger(__name__)

_checked: dict[str, str] = {}  # protocol -> "yes" or why its hooks are not used, once per process


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


def status(protocol: str) -> str | None:
    """``"yes"`` once ``protocol``'s hooks passed their probe, the reason when the stock exporter is used instead,
    None before its first exporter was asked for."""
    return _checked.get(protocol)


def check(protocol: str) -> bool:
    """Whether ``protocol``'s ("grpc" or "http/protobuf") hooks fit this SDK: probed once per process, with one
    warning when they do not."""
    if protocol not in _checked:
        try:
            why = probe_grpc(_grpc_class()) if protocol == "grpc" else probe_http(_http_class())
        except Exception as exc:  # any surprise in the exporter's internals: the stock exporter, as it is
            why = f"{type(exc).__name__}: {exc}"
        _checked[protocol] = why or "yes"
        if why:
            log.warning(
                "OTLP %s push uses the stock exporter (%s): no encoding cache, refusals known by result", protocol, why
            )
    return _checked[protocol] == "yes"


@functools.cache  # one class per process: the one probed is the one used
def _grpc_class() -> Callable[..., MetricExporter]:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415 - gRPC only when asked
        OTLPMetricExporter,
    )

    from otel_fakegpu.outputs.otlp_encode import CachingMetricsEncoder  # noqa: PLC0415 - protobuf only for push

    class CachingGrpcExporter(OTLPMetricExporter):
        def __init__(self, outcome: ExportOutcome, **settings: Any) -> None:
            self._outcome = outcome  # before the stock constructor, which makes the stub
            self._encoder = CachingMetricsEncoder()  # one per push target: the exporter and its cache go together
            super().__init__(**settings)

        def _translate_data(self, data: MetricsData | EncodedRequest) -> ExportMetricsServiceRequest:
            return data.request() if isinstance(data, EncodedRequest) else self._encoder.encode(data)

        def _count_data(self, data: MetricsData | EncodedRequest) -> int:
            return data.points if isinstance(data, EncodedRequest) else _count(data)

        def encode_request(self, data: MetricsData) -> EncodedRequest:
            """``data`` as this exporter would send it, compact, for ``export`` to send later."""
            return _encoded(self._encoder.encode(data), _count(data))

        def _initialize_channel_and_stub(self) -> None:  # also called again to reconnect after UNAVAILABLE
            super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
            self._client = RecordingStub(self._client, self._outcome)  # type: ignore[assignment]

    return CachingGrpcExporter


def grpc_exporter(outcome: ExportOutcome, **settings: Any) -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter  # noqa: PLC0415

    if not check("grpc"):
        return OTLPMetricExporter(**settings)
    return _grpc_class()(outcome, **settings)


@functools.cache
def _http_class() -> Callable[..., MetricExporter]:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415

    from otel_fakegpu.outputs.otlp_encode import CachingMetricsEncoder  # noqa: PLC0415 - protobuf only for push

    class CachingHttpExporter(OTLPMetricExporter):
        def __init__(self, outcome: ExportOutcome, **settings: Any) -> None:
            self._encoder = CachingMetricsEncoder()
            super().__init__(**settings)
            self._client._transport = RecordingTransport(self._client._transport, outcome)  # type: ignore[assignment]

        def export(
            self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            # Shut down, or splitting by itself: the stock path knows what to do.
            if self._shutdown or self._max_export_batch_size is not None:
                return super().export(metrics_data, timeout_millis, **kwargs)
            if isinstance(metrics_data, EncodedRequest):
                encoded: MetricExportResult = self._export_batch(metrics_data.request())
                return encoded
            result: MetricExportResult = self._export_batch(self._encoder.encode(metrics_data))
            return result

        def encode_request(self, data: MetricsData) -> EncodedRequest:
            """``data`` as this exporter would send it, compact, for ``export`` to send later."""
            return _encoded(self._encoder.encode(data), _count(data))

    return CachingHttpExporter


def http_exporter(outcome: ExportOutcome, **settings: Any) -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415

    if not check("http/protobuf"):
        return OTLPMetricExporter(**settings)
    return _http_class()(outcome, **settings)


def _probe_data() -> MetricsData:
    """A small collection: a gauge and a counter of one attribute set."""
    attributes = {"gpu": "0", "UUID": "GPU-probe"}
    gauge = Gauge(data_points=[NumberDataPoint(attributes, 0, 2_000, 61.5)])
    counter = Sum([NumberDataPoint(attributes, 1_000, 2_000, 7)], AggregationTemporality.CUMULATIVE, is_monotonic=True)
    metrics = [Metric("probe_gauge", "", "", gauge), Metric("probe_total", "", "", counter)]
    scope = ScopeMetrics(InstrumentationScope("otel_fakegpu.selfcheck"), metrics, "")
    return MetricsData([ResourceMetrics(Resource({"service.name": "probe"}), [scope], "")])


def _compare(exporter: Any, sent: list[bytes], outcome: ExportOutcome, answered: str) -> str | None:
    """Exports the probe collection and the same held encoded; None when both arrive as the stock encoding."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics  # noqa: PLC0415

    data = _probe_data()
    results = [exporter.export(data), exporter.export(exporter.encode_request(data))]
    if results != [MetricExportResult.SUCCESS] * 2:
        return f"a probe export returned {[r.name for r in results]}"
    if sent != [encode_metrics(data).SerializeToString()] * 2:
        return "a probe request differed from the stock encoding"
    if outcome.status != answered:
        return f"the receiver's answer was not seen ({outcome.status or 'nothing'} recorded)"
    return None


class _CapturingStub:
    """Stands in for the gRPC MetricsService stub: keeps each request, answers success."""

    def __init__(self, sent: list[bytes]) -> None:
        self._sent = sent

    def Export(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the gRPC method name
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: PLC0415
            ExportMetricsServiceResponse,
        )

        self._sent.append(request.SerializeToString())
        return ExportMetricsServiceResponse()


def probe_grpc(caching: Callable[..., MetricExporter]) -> str | None:
    """None when the gRPC hooks send what the stock exporter would, else why not."""
    outcome, sent = ExportOutcome(), list[bytes]()
    exporter: Any = caching(outcome, endpoint="127.0.0.1:9", insecure=True, timeout=2)
    try:
        if not isinstance(getattr(exporter, "_client", None), RecordingStub):
            return "the exporter keeps its stub elsewhere"
        exporter._client._inner = _CapturingStub(sent)
        return _compare(exporter, sent, outcome, "OK")
    finally:
        exporter.shutdown()


def probe_http(caching: Callable[..., MetricExporter]) -> str | None:
    """None when the HTTP hooks send what the stock exporter would, through its own transport, else why not."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415 - the probe's receiver only

    sent: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            sent.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet: the probe is not a server anyone uses
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, args=(0.02,), name="otlp-http-probe", daemon=True).start()
    outcome = ExportOutcome()
    try:
        import requests  # noqa: PLC0415 - HTTP push only
        from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: PLC0415

        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/metrics"
        session = requests.Session()
        session.trust_env = False  # the loopback probe goes direct, whatever proxy the environment names
        exporter: Any = caching(
            outcome, endpoint=endpoint, timeout=5, compression=Compression.NoCompression, session=session
        )
        try:
            return _compare(exporter, sent, outcome, "HTTP 200")
        finally:
            exporter.shutdown()
    finally:
        server.shutdown()
        server.server_close()
