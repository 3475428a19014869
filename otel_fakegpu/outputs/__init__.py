"""Floor 4: outputs that consume each cycle's collection (Prometheus text today; OTLP push next)."""

from otel_fakegpu.outputs.exposition import Exposition, ExpositionCache, PrometheusOutput
from otel_fakegpu.outputs.prometheus_text import CONTENT_TYPE, PrometheusTextRenderer, format_value

__all__ = [
    "CONTENT_TYPE",
    "Exposition",
    "ExpositionCache",
    "PrometheusOutput",
    "PrometheusTextRenderer",
    "format_value",
]
