"""What the OTLP receiver answered to the last request. The stock exporters only return success or failure;
push needs to know a permanent refusal (drop it, go on) from a transient one (retry, as late as Retry-After
says) and the points a partial success refused. Recorders sit between the stock exporter and its transport
(HTTP) or stub (gRPC) and only watch: every byte sent is the stock exporter's."""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

# gRPC codes that mean the request itself is wrong or not allowed (HTTP's 4xx): no retry changes the answer.
PERMANENT_GRPC_CODES = frozenset(
    {"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "UNAUTHENTICATED", "FAILED_PRECONDITION"}
)
_MESSAGE_CHARS = 300


def http_answer(status: int, retry_after: str | None) -> tuple[bool, float | None]:
    """What an HTTP status means to push, for every HTTP target: whether it refuses the request for good (a 4xx
    other than 408 timeout and 429 too many requests), and the Retry-After wait a 429 or 503 asks for."""
    permanent = 400 <= status < 500 and status not in (408, 429)
    return permanent, parse_retry_after(retry_after) if status in (429, 503) else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110); None if absent
    or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def one_line(text: str) -> str:
    """A receiver's message fit for one log line."""
    return " ".join(text.split())[:_MESSAGE_CHARS]


class ExportOutcome:
    """The last answer: ``status`` (``HTTP 400``, ``INVALID_ARGUMENT``; None: no answer), whether it is
    permanent, the receiver's message, its Retry-After and the points a partial success refused."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.status: str | None = None
        self.permanent = False
        self.message = ""
        self.retry_after_s: float | None = None
        self.rejected_points = 0

    def record_http(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = f"HTTP {status}"
        self.permanent, self.retry_after_s = http_answer(status, headers.get("retry-after"))
        content_type = headers.get("content-type", "")
        if 200 <= status < 300:
            self._record_partial(body if "protobuf" in content_type else b"")
        else:
            self.message = _http_error_message(body, content_type)

    def record_grpc_error(self, code: str, details: str, retry_after_s: float | None) -> None:
        self.status, self.permanent = code, code in PERMANENT_GRPC_CODES
        self.message, self.retry_after_s = one_line(details or ""), retry_after_s

    def record_grpc_response(self, response: Any) -> None:
        self.status, self.permanent = "OK", False
        self._record_partial(response.SerializeToString() if response is not None else b"")

    def _record_partial(self, body: bytes) -> None:
        if not body:
            return
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: PLC0415 - push only
            ExportMetricsServiceResponse,
        )

        response = ExportMetricsServiceResponse()
        try:
            response.ParseFromString(body)
        except Exception:  # a receiver's garbage answer to an accepted request is not our error
            log.debug("unreadable OTLP response body (%d bytes) ignored", len(body))
            return
        partial = response.partial_success
        self.rejected_points = max(0, partial.rejected_data_points)
        self.message = one_line(partial.error_message)


def _http_error_message(body: bytes, content_type: str) -> str:
    """OTLP/HTTP errors carry a google.rpc.Status (protobuf); other receivers send text."""
    if "protobuf" in content_type:
        from google.rpc import status_pb2  # type: ignore[import-untyped]  # noqa: PLC0415

        status = status_pb2.Status()
        try:
            status.ParseFromString(body)
            return one_line(status.message)
        except Exception:  # fall back to the raw text
            pass
    return one_line(body[:4096].decode("utf-8", errors="replace"))


class RecordingTransport:
    """Wraps the stock HTTP exporter's transport: passes every call through, records each response."""

    def __init__(self, inner: Any, outcome: ExportOutcome) -> None:
        self._inner = inner
        self._outcome = outcome

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        result = self._inner.request(method, url, **kwargs)
        if result.status_code is not None:
            try:
                headers, body = result.headers(), result.content()
            except Exception:  # a broken response still has its status
                headers, body = {}, b""
            self._outcome.record_http(result.status_code, headers, body)
        return result

    def is_connection_error(self, exception: Exception | None) -> bool:
        return bool(self._inner.is_connection_error(exception))

    def close(self) -> None:
        self._inner.close()


class RecordingStub:
    """Wraps the stock gRPC exporter's MetricsService stub: records the response or the error status."""

    def __init__(self, inner: Any, outcome: ExportOutcome) -> None:
        self._inner = inner
        self._outcome = outcome

    def Export(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the gRPC method name
        import grpc  # noqa: PLC0415

        try:
            response = self._inner.Export(*args, **kwargs)
        except grpc.RpcError as error:
            code = error.code()
            details = error.details()
            self._outcome.record_grpc_error(code.name if code else "UNKNOWN", details or "", _retry_info(error))
            raise
        self._outcome.record_grpc_response(response)
        return response


def _retry_info(error: Any) -> float | None:
    """The delay a RESOURCE_EXHAUSTED/UNAVAILABLE answer asks for (google.rpc.RetryInfo), if any."""
    try:
        raw = dict(error.trailing_metadata() or ()).get("google.rpc.retryinfo-bin")
    except Exception:
        return None
    if raw is None:
        return None
    from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]  # noqa: PLC0415

    info = RetryInfo()
    info.ParseFromString(raw)
    return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
