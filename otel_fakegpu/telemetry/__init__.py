"""Floor 5: the OpenTelemetry SDK pipeline and the per-cycle collection that feeds every output."""

from typing import TYPE_CHECKING

from otel_fakegpu import lazy_exports

if TYPE_CHECKING:  # the names load with their module, on first use (lazy_exports)
    from otel_fakegpu.telemetry.cycle import Consumer, CycleResult, CycleRunner
    from otel_fakegpu.telemetry.label_sets import FixedAttributes
    from otel_fakegpu.telemetry.labels import LABEL_STYLES, Attributes, LabelScheme
    from otel_fakegpu.telemetry.liveness import Liveness
    from otel_fakegpu.telemetry.pipeline import (
        SCOPE_NAME,
        SEMCONV_SCOPE_NAME,
        TelemetryPipeline,
        sample_keep_age_s,
    )
    from otel_fakegpu.telemetry.reader import CARDINALITY_LIMIT
    from otel_fakegpu.telemetry.resource import default_resource
    from otel_fakegpu.telemetry.selfmetrics import Reading, ResultCounter, SelfMetric, single
    from otel_fakegpu.telemetry.stats import CycleStats, CycleStatsView
    from otel_fakegpu.telemetry.windows import DEFAULT_COUNT_WINDOW_MS, EventWindow

__all__ = [
    "CARDINALITY_LIMIT",
    "DEFAULT_COUNT_WINDOW_MS",
    "LABEL_STYLES",
    "SCOPE_NAME",
    "SEMCONV_SCOPE_NAME",
    "Attributes",
    "Consumer",
    "CycleResult",
    "CycleRunner",
    "CycleStats",
    "CycleStatsView",
    "EventWindow",
    "FixedAttributes",
    "LabelScheme",
    "Liveness",
    "Reading",
    "ResultCounter",
    "SelfMetric",
    "TelemetryPipeline",
    "default_resource",
    "sample_keep_age_s",
    "single",
]

if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ that would accept any name
    __getattr__ = lazy_exports(
        __name__,
        {
            "cycle": ("Consumer", "CycleResult", "CycleRunner"),
            "label_sets": ("FixedAttributes",),
            "labels": ("LABEL_STYLES", "Attributes", "LabelScheme"),
            "liveness": ("Liveness",),
            "pipeline": (
                "SCOPE_NAME",
                "SEMCONV_SCOPE_NAME",
                "TelemetryPipeline",
                "sample_keep_age_s",
            ),
            "reader": ("CARDINALITY_LIMIT",),
            "resource": ("default_resource",),
            "selfmetrics": ("Reading", "ResultCounter", "SelfMetric", "single"),
            "stats": ("CycleStats", "CycleStatsView"),
            "windows": ("DEFAULT_COUNT_WINDOW_MS", "EventWindow"),
        },
    )
