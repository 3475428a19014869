"""Real OTLP trace receivers on loopback, built on opentelemetry-proto: a gRPC TraceService and the OTLP/HTTP
`/v1/traces` endpoint (protobuf, optionally gzip). Both keep every span they are sent."""

from __future__ import annotations

import gzip
import threading
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.conftest import free_port


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    attributes: dict[str, Any]
    events: tuple[tuple[str, dict[str, Any]], ...]
    resource: dict[str, str]


def _values(attributes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


class _Service(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpTraceReceiver) -> None:
        self._sink = sink

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
        self._sink.record(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpTraceReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._server: grpc.Server | None = None

    def __enter__(self) -> OtlpTraceReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Service(self), server)
        server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()

    def record(self, request: Any) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                resource = {k: str(v) for k, v in _values(resource_spans.resource.attributes).items()}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        events = tuple((e.name, _values(e.attributes)) for e in span.events)
                        self._spans.append(
                            ReceivedSpan(
                                span.name,
                                span.trace_id,
                                span.span_id,
                                span.parent_span_id,
                                _values(span.attributes),
                                events,
                                resource,
                            )
                        )

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)


class OtlpHttpTraceReceiver(OtlpTraceReceiver):
    """POST /v1/traces with an ExportTraceServiceRequest body, as the OTLP/HTTP specification says."""

    def __enter__(self) -> OtlpHttpTraceReceiver:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                sink.record(request)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
