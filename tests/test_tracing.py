"""Traces (OTEL_TRACES_EXPORTER=otlp) from a real exporter process into a real OTLP/gRPC trace receiver: a span
per cycle with its stages as children, and push requests as children of their cycle with retries as events."""

from __future__ import annotations

import threading

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_fakegpu.outputs.push import PushOutput
from otel_fakegpu.outputs.retry import DeliveryError, RejectedError
from otel_fakegpu.telemetry import CycleResult
from otel_fakegpu.telemetry.tracing import CycleTracing
from tests.conftest import ExporterProcess, free_port, run_cli
from tests.polling import wait_cycles, wait_until
from tests.receivers import OtlpGrpcReceiver
from tests.trace_receiver import OtlpHttpTraceReceiver, OtlpTraceReceiver, ReceivedSpan

CYCLE_CHILDREN = {"engine read", "sdk collection", "render exposition", "queue otlp push"}


def complete_cycles(spans: list[ReceivedSpan], stages: set[str] = CYCLE_CHILDREN) -> list[ReceivedSpan]:
    """Cycle spans whose stage spans arrived too, each a child of that cycle in its trace."""
    done = []
    for cycle in (s for s in spans if s.name == "collection cycle"):
        children = {s.name for s in spans if s.parent_span_id == cycle.span_id and s.trace_id == cycle.trace_id}
        if children >= stages:
            done.append(cycle)
    return done


def _failed_exports(exporter: ExporterProcess) -> float:
    """``otel_fakegpu_push_exports_total{result="failed",target="otlp"}`` on the page (0 before the first failure)."""
    for line in exporter.get("/metrics")[1].decode().splitlines():
        if line.startswith("otel_fakegpu_push_exports_total{") and 'result="failed"' in line and '"otlp"' in line:
            return float(line.split()[-1])
    return 0.0


def test_cycle_and_push_spans_with_retries_reach_a_real_receiver(exporter_factory) -> None:
    metrics_port = free_port()  # nothing listens yet: the first pushes fail and are retried
    receiver = OtlpGrpcReceiver(metrics_port)
    with OtlpTraceReceiver() as traces:
        exporter: ExporterProcess = exporter_factory(
            "--num-gpus", "2", "-c", "500", "--otlp-endpoint", f"127.0.0.1:{metrics_port}",
            "--otlp-protocol", "grpc", "--otlp-insecure", "--otlp-timeout", "300",
            env={
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{traces.port}",
                "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
                "NODE_NAME": "trace-node",
            },
        )  # fmt: skip
        try:
            wait_until(lambda: len(complete_cycles(traces.spans())) >= 2, timeout=90)
            wait_until(lambda: _failed_exports(exporter) >= 3, what="a few failed attempts against the closed port")
            receiver.start()
            wait_until(lambda: any(s.name == "push otlp" and s.attributes["otel_fakegpu.push.attempts"] > 1
                                 for s in traces.spans()), timeout=90)  # fmt: skip
            spans = traces.spans()
        finally:
            assert exporter.stop() == 0
            receiver.stop()

    cycles = complete_cycles(spans)
    assert cycles, [s.name for s in spans]
    cycle = cycles[0]
    assert cycle.parent_span_id == b""  # a root span per cycle
    assert isinstance(cycle.attributes["otel_fakegpu.cycle.number"], int)
    assert cycle.resource["service.name"] == "otel-fakegpu"
    assert cycle.resource["host.name"] == "trace-node"
    collection = next(s for s in spans if s.name == "sdk collection" and s.parent_span_id == cycle.span_id)
    assert collection.attributes["otel_fakegpu.gpus"] == 2

    # Each push request is a child of its cycle's "queue otlp push" stage, in the cycle's trace.
    queued = {(s.trace_id, s.span_id) for s in spans if s.name == "queue otlp push"}
    pushes = [s for s in spans if s.name == "push otlp"]
    assert all((p.trace_id, p.parent_span_id) in queued for p in pushes), "a push span outside its cycle's trace"
    retried = [p for p in pushes if p.attributes["otel_fakegpu.push.attempts"] > 1]
    assert retried, [p.attributes for p in pushes]
    first = retried[0]
    names = [name for name, _ in first.events]
    assert "attempt failed" in names and "retry" in names
    retry_attrs = next(attrs for name, attrs in first.events if name == "retry")
    assert retry_attrs["attempt"] >= 2 and retry_attrs["previous_error"]
    assert first.attributes["otel_fakegpu.push.target"] == "otlp"


def test_no_traces_unless_asked(exporter_factory) -> None:
    with OtlpTraceReceiver() as traces:
        exporter = exporter_factory(
            "--num-gpus", "1", "-c", "200",
            env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{traces.port}", "OTEL_BSP_SCHEDULE_DELAY": "100"},
        )  # fmt: skip
        wait_cycles(exporter, 10)  # ten cycles, each of which would have sent its spans within 0.1 s
        assert exporter.stop() == 0
        assert traces.spans() == []


def test_unknown_traces_exporter_is_a_usage_error() -> None:
    result = run_cli("--traces-exporter", "jaeger")
    assert result.returncode == 2
    assert "--traces-exporter='jaeger'" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(env={"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"})
    assert result.returncode == 2
    assert "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='thrift'" in result.stderr


def test_cycle_spans_over_otlp_http(exporter_factory) -> None:
    """The protocol compose.yaml uses towards Tempo: OTLP/HTTP protobuf to /v1/traces."""
    with OtlpHttpTraceReceiver() as traces:
        exporter = exporter_factory(
            "--num-gpus", "1", "-c", "300",
            env={
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{traces.port}/v1/traces",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
        )  # fmt: skip
        try:
            wait_until(
                lambda: (
                    len(complete_cycles(traces.spans(), {"engine read", "sdk collection", "render exposition"})) >= 2
                ),
                timeout=90,
            )
        finally:
            assert exporter.stop() == 0


class _ScriptedPush(PushOutput[str]):
    """A push target answering by item name: "refused" is rejected for good, "lost" fails once and again."""

    def __init__(self) -> None:
        super().__init__("scripted", lambda item: 10, 25, timeout_s=1.0)

    def __call__(self, result: CycleResult) -> int:
        return 0

    def _send(self, item: str) -> int:
        if item == "refused":
            raise RejectedError("HTTP 400 bad request")
        if item == "lost":
            raise DeliveryError("HTTP 503", retry_after_s=60.0)
        return 0


def test_refused_and_dropped_push_items_end_their_spans() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    output = _ScriptedPush()
    output.tracing = CycleTracing(provider)
    stop = threading.Event()
    output.start(stop)
    output.put("refused")
    output.put("lost")
    wait_until(lambda: output.queue.view().exports_failed == 2, timeout=30)  # "lost" waits 60 s for its retry
    output.put("sent-1")
    output.put("sent-2")  # 30 points over a 25-point buffer: "lost", the oldest, is dropped
    stop.set()
    output.close(drain_s=10)  # the last try delivers both
    ended = []
    for span in spans.get_finished_spans():
        attributes = dict(span.attributes or {})
        dropped = str(attributes.get("otel_fakegpu.push.dropped"))
        ended.append((dropped, span.status.status_code.name, attributes["otel_fakegpu.push.attempts"]))
    ended.sort()
    assert ended == [("None", "UNSET", 1), ("None", "UNSET", 1), ("overflow", "ERROR", 1), ("rejected", "ERROR", 1)]
    assert dict(output.queue.view().dropped_by_reason) == {"overflow": 10, "rejected": 10}
