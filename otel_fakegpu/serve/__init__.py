"""Floor 5: serving the outputs over HTTP (TCP :9400; Unix socket next)."""

from otel_fakegpu.serve.health import HealthReport, evaluate
from otel_fakegpu.serve.http import build_app, start_tcp

__all__ = ["HealthReport", "build_app", "evaluate", "start_tcp"]
