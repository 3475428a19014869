"""Floor 4: outputs that consume each cycle's collection (Prometheus text and OpenMetrics; OTLP push next)."""

from otel_fakegpu.outputs.exposition import Exposition, ExpositionCache, Format, PrometheusOutput, Variant
from otel_fakegpu.outputs.prometheus_text import FamilyText, PrometheusTextRenderer, format_value

__all__ = [
    "Exposition",
    "ExpositionCache",
    "FamilyText",
    "Format",
    "PrometheusOutput",
    "PrometheusTextRenderer",
    "Variant",
    "format_value",
]
