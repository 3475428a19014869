"""OTLP push (gRPC or HTTP/protobuf) fed by the cycle's one collection: no engine read, no second SDK
collection. Each push is split into requests of bounded size and goes through the retry buffer."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from otel_fakegpu.outputs.batching import DEFAULT_MAX_POINTS, count_points, select_scopes, split
from otel_fakegpu.outputs.retry import RetryQueue
from otel_fakegpu.telemetry import SCOPE_NAME, SEMCONV_SCOPE_NAME, CycleResult, SelfMetric

log = logging.getLogger(__name__)

NAMINGS = {"dcgm": (SCOPE_NAME,), "otel": (SEMCONV_SCOPE_NAME,), "both": (SCOPE_NAME, SEMCONV_SCOPE_NAME)}
DEFAULT_BUFFER_POINTS = 2_000_000


@dataclass(frozen=True)
class OtlpSettings:
    """Where and how to push; ``endpoint`` is final (HTTP: the full /v1/metrics URL)."""

    endpoint: str
    protocol: str = "grpc"  # or "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict)
    compression: str = "gzip"  # or "none"
    timeout_s: float = 10.0
    insecure: bool | None = None
    export_interval_s: float | None = None  # None: every cycle
    max_points_per_request: int = DEFAULT_MAX_POINTS
    buffer_points: int = DEFAULT_BUFFER_POINTS
    naming: str = "dcgm"


def make_exporter(settings: OtlpSettings) -> MetricExporter:
    """The stock OpenTelemetry exporter for the protocol, configured from ``settings`` alone."""
    if settings.protocol == "grpc":
        from grpc import Compression as GrpcCompression  # noqa: PLC0415 - gRPC loads only when asked for
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter as GrpcExporter,
        )

        return GrpcExporter(
            endpoint=settings.endpoint,
            insecure=settings.insecure,
            headers=settings.headers or None,
            timeout=settings.timeout_s,
            compression=GrpcCompression.Gzip if settings.compression == "gzip" else GrpcCompression.NoCompression,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression  # noqa: PLC0415
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter as HttpExporter,
    )

    return HttpExporter(
        endpoint=settings.endpoint,
        headers=settings.headers or None,
        timeout=settings.timeout_s,
        compression=HttpCompression.Gzip if settings.compression == "gzip" else HttpCompression.NoCompression,
    )


class OtlpPushOutput:
    """A cycle consumer queueing each (due) cycle's points; a sender thread exports them in order."""

    def __init__(self, settings: OtlpSettings, exporter: MetricExporter | None = None) -> None:
        self._settings = settings
        self._exporter = exporter if exporter is not None else make_exporter(settings)
        self._scopes = NAMINGS[settings.naming]
        self.queue: RetryQueue[MetricsData] = RetryQueue("otlp push", self._send, count_points, settings.buffer_points)
        self._last_pushed_at: float | None = None
        self._thread: threading.Thread | None = None

    def __call__(self, result: CycleResult) -> int:
        interval = self._settings.export_interval_s
        if (
            interval
            and self._last_pushed_at is not None
            and result.started_at - self._last_pushed_at < interval * 0.999
        ):
            return 0
        self._last_pushed_at = result.started_at
        data = select_scopes(result.metrics, self._scopes)
        for piece in split(data, self._settings.max_points_per_request):
            self.queue.put(piece)
        return 0

    def _send(self, piece: MetricsData) -> bool:
        result = self._exporter.export(piece, timeout_millis=self._settings.timeout_s * 1000)
        return result is MetricExportResult.SUCCESS

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self.queue.run, args=(stop,), name="otlp-push", daemon=True)
        self._thread.start()

    def close(self, drain_s: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout=self._settings.timeout_s + 5)
        self.queue.drain(drain_s)
        self._exporter.shutdown()

    def self_metrics(self) -> list[SelfMetric]:
        return push_self_metrics("otlp", self.queue)

    def __repr__(self) -> str:
        return f"OtlpPushOutput({self._settings.protocol} {self._settings.endpoint})"


def push_self_metrics(target: str, queue: RetryQueue[Any]) -> list[SelfMetric]:
    """Self-metrics of one push target, labelled ``target``."""
    labels = {"target": target}

    def read(attr: str) -> list[tuple[float | int, dict[str, str]]]:
        value = getattr(queue.view(), attr)
        return [] if value is None else [(value, labels)]

    def exports() -> list[tuple[float | int, dict[str, str]]]:
        view = queue.view()
        return [(view.exports_ok, {**labels, "result": "ok"}), (view.exports_failed, {**labels, "result": "failed"})]

    return [
        SelfMetric("otel_fakegpu_push_exports_total", True, "{request}", "Push requests by result.", exports),
        SelfMetric("otel_fakegpu_push_points_sent_total", True, "{point}", "Points delivered.",
                   lambda: read("points_sent")),
        SelfMetric("otel_fakegpu_push_points_buffered", False, "{point}", "Points waiting for (re)delivery.",
                   lambda: read("points_buffered")),
        SelfMetric("otel_fakegpu_push_points_dropped_total", True, "{point}",
                   "Points dropped because the retry buffer was full.", lambda: read("points_dropped")),
        SelfMetric("otel_fakegpu_push_last_export_seconds", False, "s", "Duration of the last push request.",
                   lambda: read("last_export_seconds")),
        SelfMetric("otel_fakegpu_push_last_delivery_seconds", False, "s",
                   "From queueing to delivery of the last request delivered (a cycle's last piece: its push time).",
                   lambda: read("last_delivery_seconds")),
    ]  # fmt: skip
