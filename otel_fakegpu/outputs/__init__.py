"""Floor 6: outputs that consume each cycle's collection (Prometheus text and OpenMetrics; OTLP push next)."""

from otel_fakegpu.outputs.disk_queue import PushQueueSettings
from otel_fakegpu.outputs.exposition import Exposition, ExpositionCache, Format, PrometheusOutput, Variant
from otel_fakegpu.outputs.otlp import NAMINGS, OtlpPushOutput, OtlpSettings, make_exporter
from otel_fakegpu.outputs.prometheus_push import PrometheusPushOutput
from otel_fakegpu.outputs.prometheus_text import FamilyText, PrometheusTextRenderer, format_value

__all__ = [
    "NAMINGS",
    "Exposition",
    "ExpositionCache",
    "FamilyText",
    "Format",
    "OtlpPushOutput",
    "OtlpSettings",
    "PrometheusOutput",
    "PrometheusPushOutput",
    "PrometheusTextRenderer",
    "PushQueueSettings",
    "Variant",
    "format_value",
    "make_exporter",
]
