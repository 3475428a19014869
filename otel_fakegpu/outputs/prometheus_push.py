"""Prometheus-text push for DigitalOcean-style endpoints: POST the exposition every cycle.

Samples carry their collection timestamp, so a body replayed after an outage lands at the time it was
measured, not at the time it was finally delivered. The body holds the GPU (and NVSwitch) series only, as
DigitalOcean's wrapper pushes them: the exporter's own ``otel_fakegpu_*`` series stay on /metrics.
"""

from __future__ import annotations

import gzip

from otel_fakegpu.outputs.otlp_outcome import http_answer, one_line
from otel_fakegpu.outputs.prometheus_text import PrometheusTextRenderer, join_prometheus
from otel_fakegpu.outputs.push import PushOutput
from otel_fakegpu.outputs.retry import DeliveryError, RejectedError
from otel_fakegpu.telemetry import CycleResult

PUSH_TIMEOUT_S = 5.0
SELF_METRIC_PREFIX = "otel_fakegpu_"
Body = tuple[bytes, int]  # (exposition with timestamps, series in it)


class PrometheusPushOutput(PushOutput[Body]):
    def __init__(self, url: str, buffer_points: int, timeout_s: float = PUSH_TIMEOUT_S) -> None:
        super().__init__("prometheus", lambda body: body[1], buffer_points, timeout_s)
        self.url = url
        self._renderer = PrometheusTextRenderer(with_timestamps=True, skip_prefix=SELF_METRIC_PREFIX)
        import requests  # noqa: PLC0415 - about 50 ms of start-up that only a push target needs

        self._session = requests.Session()

    def __call__(self, result: CycleResult) -> int:
        families = self._renderer.render_families(result.metrics)
        self.put((join_prometheus(families), sum(f.series for f in families)))
        return 0

    def can_keep_on_disk(self) -> bool:
        return True

    def _stored(self, body: Body) -> tuple[Body, bytes]:
        return body, gzip.compress(body[0], compresslevel=1)

    def _restored(self, payload: bytes, points: int) -> Body:
        return gzip.decompress(payload), points

    def _send(self, body: Body) -> int:
        import requests  # noqa: PLC0415 - imported by __init__ already: a dictionary lookup

        try:
            response = self._session.post(
                self.url,
                data=body[0],
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise DeliveryError(f"POST {self.url}: {root_cause(exc)}") from None
        status = response.status_code
        if 200 <= status < 300:
            return 0
        detail = one_line(response.content[:4096].decode("utf-8", errors="replace"))
        message = f"POST {self.url}: HTTP {status} {detail}".rstrip()
        permanent, retry_after = http_answer(status, response.headers.get("Retry-After"))
        if permanent:
            raise RejectedError(message)
        raise DeliveryError(message, retry_after)

    def _release(self) -> None:
        self._session.close()

    def __repr__(self) -> str:
        return f"PrometheusPushOutput({self.url})"


def root_cause(exc: BaseException) -> str:
    """The innermost OS-level reason (``Connection refused``) behind a library's layers of wrapping."""
    import requests  # noqa: PLC0415 - see PrometheusPushOutput.__init__

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if isinstance(current, requests.Timeout):
            return "timed out"
        current = current.__cause__ or current.__context__
    return type(exc).__name__
