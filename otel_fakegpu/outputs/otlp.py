"""OTLP push (gRPC or HTTP/protobuf) fed by the cycle's one collection: no engine read, no second SDK
collection. Each push is split into requests of bounded size and goes through the retry buffer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from otel_fakegpu.outputs.batching import DEFAULT_MAX_POINTS, count_points, select_scopes, split
from otel_fakegpu.outputs.otlp_exporters import EncodedRequest, grpc_exporter, http_exporter
from otel_fakegpu.outputs.otlp_outcome import ExportOutcome
from otel_fakegpu.outputs.push import PushOutput
from otel_fakegpu.outputs.retry import DeliveryError, RejectedError
from otel_fakegpu.telemetry import SCOPE_NAME, SEMCONV_SCOPE_NAME, CycleResult

log = logging.getLogger(__name__)

NAMINGS = {"dcgm": (SCOPE_NAME,), "otel": (SEMCONV_SCOPE_NAME,), "both": (SCOPE_NAME, SEMCONV_SCOPE_NAME)}


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
    naming: str = "dcgm"


def make_exporter(settings: OtlpSettings, outcome: ExportOutcome | None = None) -> MetricExporter:
    """The stock OpenTelemetry exporter for the protocol (with the caching encoder), configured from
    ``settings`` alone; ``outcome`` records what the receiver answers."""
    outcome = outcome or ExportOutcome()
    if settings.protocol == "grpc":
        from grpc import Compression as GrpcCompression  # noqa: PLC0415 - gRPC loads only when asked for

        return grpc_exporter(
            outcome,
            endpoint=settings.endpoint,
            insecure=settings.insecure,
            headers=settings.headers or None,
            timeout=settings.timeout_s,
            compression=GrpcCompression.Gzip if settings.compression == "gzip" else GrpcCompression.NoCompression,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression  # noqa: PLC0415

    return http_exporter(
        outcome,
        endpoint=settings.endpoint,
        headers=settings.headers or None,
        timeout=settings.timeout_s,
        compression=HttpCompression.Gzip if settings.compression == "gzip" else HttpCompression.NoCompression,
    )


Piece = MetricsData | EncodedRequest


def _points(piece: Piece) -> int:
    return piece.points if isinstance(piece, EncodedRequest) else count_points(piece)


class OtlpPushOutput(PushOutput[Piece]):
    """Queues each (due) cycle's points in requests of bounded size; the stock exporter sends them. While the
    receiver is away, waiting requests are held encoded and compressed (when the exporter can send those)."""

    def __init__(self, settings: OtlpSettings, buffer_points: int, exporter: MetricExporter | None = None) -> None:
        super().__init__("otlp", _points, buffer_points, settings.timeout_s)
        self._settings = settings
        self._outcome = ExportOutcome()  # stays empty with an exporter from outside: failures are then retried
        self._exporter = exporter if exporter is not None else make_exporter(settings, self._outcome)
        self._scopes = NAMINGS[settings.naming]
        self._encode: Callable[[MetricsData], EncodedRequest] | None = getattr(self._exporter, "encode_request", None)
        self._last_pushed_at: float | None = None

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
            self.put(piece)
        return 0

    def _compact(self, piece: Piece) -> Piece | None:
        if isinstance(piece, EncodedRequest) or self._encode is None:
            return None
        return self._encode(piece)

    def can_keep_on_disk(self) -> bool:
        """Whether requests can be kept as bytes: only an exporter with the encoding hook sends those."""
        return self._encode is not None

    def _stored(self, piece: Piece) -> tuple[Piece, bytes]:
        encoded = piece if isinstance(piece, EncodedRequest) or self._encode is None else self._encode(piece)
        if not isinstance(encoded, EncodedRequest):
            raise TypeError("this exporter cannot keep requests as bytes")
        return encoded, encoded.gz

    def _restored(self, payload: bytes, points: int) -> Piece:
        return EncodedRequest(payload, points)

    def _send(self, piece: Piece) -> int:
        outcome = self._outcome
        outcome.reset()
        # An EncodedRequest only exists when the exporter has encode_request, and then its export takes it.
        result = self._exporter.export(piece, timeout_millis=self._settings.timeout_s * 1000)  # type: ignore[arg-type]
        where = f"{self._settings.protocol} {self._settings.endpoint}"
        if result is MetricExportResult.SUCCESS:
            if outcome.rejected_points:
                log.warning(
                    "otlp push: %s took the request but refused %d of its points: %s",
                    where,
                    outcome.rejected_points,
                    outcome.message or "(no message)",
                )
            return outcome.rejected_points
        answer = f"{where}: {outcome.status or 'no answer'}{': ' + outcome.message if outcome.message else ''}"
        if outcome.permanent:
            raise RejectedError(answer)
        raise DeliveryError(answer, outcome.retry_after_s)

    def _release(self) -> None:
        self._exporter.shutdown()

    def __repr__(self) -> str:
        return f"OtlpPushOutput({self._settings.protocol} {self._settings.endpoint})"
