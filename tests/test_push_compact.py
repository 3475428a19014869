"""While the receiver is away, waiting OTLP requests are held encoded and compressed, and arrive later exactly
as the objects would have: same points, same values, same collection times, in order."""

from __future__ import annotations

import threading

from otel_fakegpu.outputs import OtlpPushOutput, OtlpSettings
from otel_fakegpu.outputs.batching import count_points
from otel_fakegpu.outputs.otlp_exporters import EncodedRequest
from otel_fakegpu.telemetry import CycleResult
from tests.conftest import build_stack, free_port
from tests.polling import wait_until
from tests.receivers import OtlpGrpcReceiver


def test_backlog_is_held_compact_and_delivered_whole() -> None:
    stack = build_stack(4, ["wave", "spike"], seed=3)
    port = free_port()
    settings = OtlpSettings(f"127.0.0.1:{port}", "grpc", insecure=True, timeout_s=0.5, max_points_per_request=40)
    push = OtlpPushOutput(settings, buffer_points=100_000)
    stop = threading.Event()
    expected = []
    for number in range(1, 4):
        data = stack.pipeline.collect(stack.pipeline.read(stack.engine))
        push(CycleResult(number, stack.clock(), data))
        expected.append(count_points(data))
        stack.clock.advance(1.0)
        stack.simulator.step()
    push.start(stop)
    try:
        wait_until(lambda: push.queue.view().exports_failed >= 2, timeout=30)
        # Queued items are the requests wrapped with their trace context (telemetry/tracing.py).
        waiting = lambda: [traced.item for traced, _, _ in list(push.queue._items)]  # noqa: E731
        wait_until(lambda: all(isinstance(item, EncodedRequest) for item in waiting()), timeout=30)
        receiver = OtlpGrpcReceiver(port).start()
        try:
            wait_until(lambda: push.queue.view().points_buffered == 0, timeout=60)
            points = receiver.snapshot()
        finally:
            receiver.stop()
    finally:
        stop.set()
        push.close(drain_s=0.0)
    assert len(points) == sum(expected)
    keys = {(p.metric, p.attributes, p.time_unix_nano) for p in points}
    assert len(keys) == len(points)  # nothing twice
    assert len({p.time_unix_nano for p in points}) == 3  # three cycles, each at its collection time
    assert push.queue.view().points_sent == sum(expected)
