"""Prometheus-text push for DigitalOcean-style endpoints: POST the exposition every cycle.

Samples carry their collection timestamp, so a body replayed after an outage lands at the time it was
measured, not at the time it was finally delivered.
"""

from __future__ import annotations

import threading

import requests

from otel_fakegpu.outputs.otlp import push_self_metrics
from otel_fakegpu.outputs.prometheus_text import PrometheusTextRenderer, join_prometheus
from otel_fakegpu.outputs.retry import RetryQueue
from otel_fakegpu.telemetry import CycleResult, SelfMetric

PUSH_TIMEOUT_S = 5.0
Body = tuple[bytes, int]  # (exposition with timestamps, series in it)


class PrometheusPushOutput:
    def __init__(self, url: str, buffer_points: int, timeout_s: float = PUSH_TIMEOUT_S) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._renderer = PrometheusTextRenderer(with_timestamps=True)
        self._session = requests.Session()
        self.queue: RetryQueue[Body] = RetryQueue("prometheus push", self._send, lambda b: b[1], buffer_points)
        self._thread: threading.Thread | None = None

    def __call__(self, result: CycleResult) -> int:
        families = self._renderer.render_families(result.metrics)
        self.queue.put((join_prometheus(families), sum(f.series for f in families)))
        return 0

    def _send(self, body: Body) -> bool:
        response = self._session.post(
            self.url,
            data=body[0],
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            timeout=self._timeout_s,
        )
        return 200 <= response.status_code < 300

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self.queue.run, args=(stop,), name="prometheus-push", daemon=True)
        self._thread.start()

    def close(self, drain_s: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_s + 5)
        self.queue.drain(drain_s)
        self._session.close()

    def self_metrics(self) -> list[SelfMetric]:
        return push_self_metrics("prometheus", self.queue)

    def __repr__(self) -> str:
        return f"PrometheusPushOutput({self.url})"
