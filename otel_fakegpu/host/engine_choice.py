"""Choosing the engine from the configuration: the embedded simulator store, DCGM (pydcgm) or NVML.

The libraries of the real engines are imported only here, and only for the engine asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from otel_fakegpu.config.model import Config
from otel_fakegpu.engine import EmbeddedEngine, Engine
from otel_fakegpu.telemetry import SelfMetric
from otel_fakegpu.telemetry.selfmetrics import single


def make_engine(config: Config, env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time) -> Engine:
    """The engine ``config`` asks for; raises EngineUnavailable (one line, exit 2) when its library is missing.
    ``clock`` stamps the embedded engine's reads (the simulator's clock, so both agree on "now")."""
    settings = config.engine
    if settings.kind == "dcgm":
        from otel_fakegpu.engine.dcgm import DcgmEngine  # noqa: PLC0415 - only when asked for
        from otel_fakegpu.engine.dcgm_loader import load_dcgm  # noqa: PLC0415

        modules = load_dcgm(os.environ if env is None else env, settings.inject)
        return DcgmEngine(modules, settings, config.collect_interval_s)
    if settings.kind == "nvml":
        from otel_fakegpu.engine.nvml import NvmlEngine, load_pynvml  # noqa: PLC0415

        return NvmlEngine(load_pynvml(), settings)
    return EmbeddedEngine(clock)


def engine_self_metrics(engine: Engine) -> list[SelfMetric]:
    """The engine's own error count, on /metrics beside the cycle counters."""
    return [
        SelfMetric(
            "otel_fakegpu_engine_errors_total", True, "{error}",
            "Engine library calls that failed (hostengine gone, NVML error); each fails its cycle.",
            single(lambda: engine.errors_total),
        )
    ]  # fmt: skip
