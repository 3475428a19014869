"""Floor 6: outputs that consume each cycle's collection (Prometheus text and OpenMetrics; OTLP push next)."""

from typing import TYPE_CHECKING

from otel_fakegpu import lazy_exports

if TYPE_CHECKING:  # the names load with their module, on first use (lazy_exports)
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

if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ that would accept any name
    __getattr__ = lazy_exports(
        __name__,
        {
            "disk_queue": ("PushQueueSettings",),
            "exposition": ("Exposition", "ExpositionCache", "Format", "PrometheusOutput", "Variant"),
            "otlp": ("NAMINGS", "OtlpPushOutput", "OtlpSettings", "make_exporter"),
            "prometheus_push": ("PrometheusPushOutput",),
            "prometheus_text": ("FamilyText", "PrometheusTextRenderer", "format_value"),
        },
    )
